"""`python -m bot ...` is the same as `relaybot ...`."""

from bot.cli import main

main()

"""`python -m bot ...` is the same as `relaybot ...`."""

from bot.cli.main import main

main()

"""Alembic migrations of the bot's database (run by `relaybot db upgrade` and at every start)."""

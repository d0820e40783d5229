"""Chat transports. Only wechaty.py and wechaty_compat.py import wechaty."""

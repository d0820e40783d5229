"""Message handlers. ROUTERS is the priority order: group settings, liaison confirmations, an admin's 确认导入 of a
roster sent in chat, office commands."""

from handlers import groups, liaison, office, roster_chat

ROUTERS = [groups.router, liaison.router, roster_chat.router, office.router]

"""Message handlers. ROUTERS is the priority order: group settings, the city admins' city commands, liaison confirmations, an admin's 确认导入 of a
roster sent in chat, office commands."""

from handlers import city, groups, liaison, office, roster_chat

ROUTERS = [groups.router, city.router, liaison.router, roster_chat.router, office.router]

"""Message handlers. ROUTERS is the priority order: group settings, liaison confirmations, office commands."""

from handlers import groups, liaison, office

ROUTERS = [groups.router, liaison.router, office.router]

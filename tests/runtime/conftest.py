"""The runtime tests count what the bot sends and when; their roster has every liaison's 微信ID filled in, so
nobody is recognised by name at start and the office's 已认出 line (issue 12 item 7) is not among those messages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.roster import import_roster, read_roster_file
from bot.storage.db import session
from tests.conftest import EXAMPLE_ROSTER, WU, ZHAO, ZHOU

_IDS = {"赵磊": ZHAO.contact_id, "周敏": ZHOU.contact_id, "吴刚": WU.contact_id}


@pytest.fixture
def roster(engine):
    rows = [replace(r, contact_id=r.contact_id or _IDS[r.name]) for r in read_roster_file(EXAMPLE_ROSTER)]
    with session(engine) as s:
        import_roster(s, rows)
        s.commit()

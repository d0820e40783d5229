"""The console's 警情 page with 同比: last year's upload is stored without an old 通报, the ranking shows 环比 and
同比 beside each town, and the June page names the towns that owe a 书面说明."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import Group, GroupKind, Outbox
from tests.conftest import OFFICE_ROOM
from tests.web.test_admin_incidents import table, upload

THIS_YEAR = "镇街,周期,案件类型,警情数\n城关镇,2026-05,,9\n东城街道,2026-05,,2\n城关镇,2026-06,,8\n东城街道,2026-06,,3\n新区街道,2026-06,,1\n"
LAST_YEAR = "镇街,周期,案件类型,警情数\n城关镇,2025-06,,10\n东城街道,2025-06,,4\n"


def test_last_years_upload_and_the_june_page(served):
    with session(served.engine) as s:
        s.add(Group(room_id=OFFICE_ROOM, name="反诈办工作群", kind=GroupKind.OFFICE.value))
        s.commit()
    c = served.sign_in()
    assert upload(c, THIS_YEAR, "今年.csv").status_code == 200
    r = upload(c, LAST_YEAR, "去年.csv")
    assert r.status_code == 200, r.text
    assert "这些是往期数据（比已有的最新一期早），已保存用于同比，不另发通报。" in r.text
    assert "警情通报已排入发送队列" not in r.text and "还没有反诈办工作群" not in r.text
    with session(served.engine) as s:
        texts = [t for t in s.exec(select(Outbox.text).where(Outbox.chat_id == OFFICE_ROOM)) if t]
    assert len([t for t in texts if t.startswith("📈")]) == 1  # only this year's June

    page = c.get("/incidents", params={"period": "2026-06"}).text
    ranking = table(page, "ranking")
    assert "环比 去年同期 同比" in ranking
    assert re.search(r"1 城关镇 8 9 -1 10 -20% ", ranking), ranking
    assert re.search(r"2 东城街道 3 2 \+1 4 -25% ", ranking), ranking
    assert re.search(r"3 新区街道 1 — 无上期数据 — 无去年数据 ", ranking), ranking
    assert "同比：去年同期 14 起（-14.3%）" in page
    block = re.search(r'<div class="card" id="checkpoint">(.*?)</div>', page, re.S).group(1)
    assert "6月30日节点（目标：发案数环比、同比下降）未达到，需书面说明：东城街道" in block
    assert "无法判断：新区街道" in block
    assert 'id="checkpoint"' not in c.get("/incidents", params={"period": "2026-05"}).text

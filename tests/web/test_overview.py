"""总览 (issue 14): open pushes with progress, the units on the escalation ladder, and the bot's health as the
running bot recorded it (the same as `relaybot status`)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.domain.escalation import close_push
from bot.runtime.health import LINK_DOWN
from bot.storage.db import session
from bot.storage.models import BotState, Confirmation, Push, Unit
from tests.web.conftest import VIEWER_ID
from tests.web.test_access import make_push


def test_the_overview_shows_the_ladder_and_what_the_bot_recorded_about_its_health(served):
    pushes = [make_push(served, title=f"预警{i}") for i in range(3)]
    with session(served.engine) as s:
        units = list(s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712
        for push_id in pushes:  # everyone but the last unit relays every push on time
            for unit in units[:-1]:
                s.add(
                    Confirmation(
                        push_id=push_id, unit_id=unit.id, at=served.clock() + timedelta(minutes=5), method="text"
                    )
                )
        s.commit()
    served.clock.advance(hours=9)  # past the deadlines
    with session(served.engine) as s:
        for push_id in pushes:
            close_push(s, s.get_one(Push, push_id), now=served.clock())
        s.add(
            BotState(
                key=LINK_DOWN, value=(served.clock() - timedelta(minutes=7)).isoformat(), updated_at=served.clock()
            )
        )
        s.commit()
    page = served.sign_in(VIEWER_ID).get("/").text
    ladder = page.split('id="ladder"')[1].split("</table>")[0]
    assert units[-1].name in ladder and "3 次" in ladder and units[0].name not in ladder
    assert "⚠ 微信连接断开，自" in page
    assert "待发送" in page and "最近一次收到消息：还没有" in page

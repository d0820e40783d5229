"""bot/operations/office.py: the office's actions on a push (截止, 撤回, 提醒, 补登, 免转), one code path for the chat
commands and the web console. The last tests run each action once through the chat (the running bot) and once
through the console (a real HTTP server over the same database) and compare the rows they leave."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

import pytest
import uvicorn
from sqlmodel import col, select

from bot.clock import show
from bot.content import load_texts
from bot.domain.relay import create_push
from bot.operations import office
from bot.storage.db import session
from bot.storage.models import (
    Alert,
    AuditLog,
    Confirmation,
    ConfirmMethod,
    Correction,
    Exemption,
    Group,
    GroupKind,
    Miss,
    Outbox,
    Push,
    PushState,
    Unit,
)
from bot.transport.base import ChatKind
from bot.web.app import create_app
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG
from tests.gateway_harness import wait_until
from tests.web.conftest import WAIT, Served, _free_port, csrf_of

TEXTS = load_texts()
ACTOR = office.Actor(ADMIN.contact_id, ADMIN.name, "（来自测试）")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)


@pytest.fixture
def world(engine, roster):
    """Two liaison groups and one push of 刷单, due at 17:00 today."""
    with session(engine) as s:
        s.add(Group(room_id=LIAISON_ROOM, name="全区反诈联络员群", kind=GroupKind.LIAISON.value))
        s.add(Group(room_id="second@chatroom", name="第二联络员群", kind=GroupKind.LIAISON.value))
        alert = Alert(case_type="刷单返利", title="刷单返利", text="【反诈预警】刷单", created_at=NOW)
        push = create_push(s, alert, now=NOW, by=ADMIN.contact_id, deadline=NOW.replace(hour=17))
        s.commit()
        return int(push.id or 0)


def units(s) -> list[Unit]:
    return list(s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712


def test_change_deadline_reopens_drops_misses_recounts_lateness_tells_every_group_and_audits(engine, world, settings):
    push_id = world
    with session(engine) as s:
        first, second, third = units(s)[:3]
        push = s.get_one(Push, push_id)
        push.state, push.closed_at = PushState.CLOSED.value, NOW.replace(hour=17)
        late_at = NOW.replace(hour=18)
        s.add(Confirmation(push_id=push_id, unit_id=first.id, at=late_at, method="text", late=True))
        # a 补登 counted late by the office's word stays late whatever the deadline
        s.add(Confirmation(push_id=push_id, unit_id=second.id, at=NOW, method=ConfirmMethod.OFFICE.value, late=True))
        s.add(Miss(push_id=push_id, unit_id=third.id, deadline=push.deadline))
        s.commit()
    new = datetime(2026, 12, 1, 12, 0, tzinfo=TZ)
    with session(engine) as s:
        push = s.get_one(Push, push_id)
        answer = office.change_deadline(s, push, new, now=NOW, tz=TZ, texts=TEXTS, actor=ACTOR)
        s.commit()
    assert answer == TEXTS.t("push.deadline_set", n=push_id, deadline=show(new, TZ))
    with session(engine) as s:
        push = s.get_one(Push, push_id)
        assert push.state == PushState.OPEN.value and push.closed_at is None
        assert push.deadline.astimezone(TZ) == new
        assert not s.exec(select(Miss)).all()
        late = {c.unit_id: c.late for c in s.exec(select(Confirmation))}
        assert late == {first.id: False, second.id: True}
        rooms = s.exec(select(Outbox).where(Outbox.chat_kind == ChatKind.ROOM.value).order_by(col(Outbox.id))).all()
        assert [r.chat_id for r in rooms] == [LIAISON_ROOM, "second@chatroom"]
        assert {r.text for r in rooms} == {TEXTS.t("push.deadline_changed", n=push_id, deadline=show(new, TZ))}
        assert all(r.push_id == push_id for r in rooms)
        [row] = s.exec(select(AuditLog).where(AuditLog.action == "deadline")).all()
        assert row.actor_id == ADMIN.contact_id and row.detail == f"#{push_id} -> {new.isoformat()}（来自测试）"


def test_read_deadline_and_the_refusals(engine, world, settings):
    deadline, why = office.read_deadline("明天12:00", now=NOW, settings=settings, texts=TEXTS, n=7)
    assert deadline == datetime(2026, 12, 1, 12, 0, tzinfo=TZ) and why == ""
    deadline, why = office.read_deadline("今天8:00", now=NOW, settings=settings, texts=TEXTS, n=7)
    assert deadline is None and "#7" in why
    deadline, why = office.read_deadline("随便", now=NOW, settings=settings, texts=TEXTS, n=7)
    assert deadline is None and why == TEXTS.t("push.deadline_bad", text="随便")
    assert office.deadline_refused(None, 9, TEXTS) == TEXTS.t("push.not_found", n=9)
    assert office.withdraw_refused(None, 9, TEXTS) == TEXTS.t("push.not_found", n=9)
    with session(engine) as s:
        push = s.get_one(Push, world)
        assert office.deadline_refused(push, world, TEXTS) == "" == office.withdraw_refused(push, world, TEXTS)
        office.withdraw(s, push, now=NOW, texts=TEXTS, actor=ACTOR)
        assert office.deadline_refused(push, world, TEXTS) == TEXTS.t("push_withdrawn.deadline", n=world)
        assert office.withdraw_refused(push, world, TEXTS) == TEXTS.t("push.already_withdrawn", n=world)


def test_withdraw_tells_every_group_and_audits(engine, world):
    with session(engine) as s:
        answer = office.withdraw(s, s.get_one(Push, world), now=NOW, texts=TEXTS, actor=ACTOR)
        s.commit()
    assert answer == TEXTS.t("push.withdrawn", n=world, groups=2)
    with session(engine) as s:
        assert s.get_one(Push, world).state == PushState.WITHDRAWN.value
        texts = [r.text for r in s.exec(select(Outbox).where(Outbox.chat_kind == ChatKind.ROOM.value))]
        assert texts == [TEXTS.t("push.withdrawn_group", n=world, title="刷单返利")] * 2
        [row] = s.exec(select(AuditLog).where(AuditLog.action == "withdraw")).all()
        assert row.detail == f"#{world}（来自测试）"


def test_remind_audits_only_when_someone_was_reminded(engine, world, settings):
    with session(engine) as s:
        result = office.remind(s, s.get_one(Push, world), now=NOW, settings=settings, texts=TEXTS, actor=ACTOR)
        s.commit()
        assert result.units == len(units(s)) and result.groups == 2
        [row] = s.exec(select(AuditLog).where(AuditLog.action == "remind")).all()
        assert row.detail.startswith(f"#{world}: {result.units} units") and row.detail.endswith("（来自测试）")
        for unit in units(s):
            s.add(Confirmation(push_id=world, unit_id=unit.id, at=NOW, method="text"))
        s.commit()
        again = office.remind(s, s.get_one(Push, world), now=NOW, settings=settings, texts=TEXTS, actor=ACTOR)
        s.commit()
        assert again.units == 0
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "remind")).all()) == 1


def test_correct_answers_as_the_chat_did_and_notes_where_from(engine, world):
    with session(engine) as s:
        push, (first, second) = s.get_one(Push, world), units(s)[:2]
        added = office.correct(s, push, first, "电话确认已转发", adding=True, now=NOW, tz=TZ, texts=TEXTS, actor=ACTOR)
        total = len(units(s))
        assert added == office.Answer(
            True, TEXTS.t("corrections.added", unit=first.name, n=world, reason="电话确认已转发", done=1, total=total)
        )
        again = office.correct(s, push, first, "再来", adding=False, now=NOW, tz=TZ, texts=TEXTS, actor=ACTOR)
        assert not again.done and first.name in again.message
        exempted = office.correct(s, push, second, "停业", adding=False, now=NOW, tz=TZ, texts=TEXTS, actor=ACTOR)
        assert exempted.done and exempted.message == TEXTS.t(
            "corrections.exempted", unit=second.name, n=world, reason="停业", done=1, total=total - 1
        )
        refused = office.correct(s, push, second, "补", adding=True, now=NOW, tz=TZ, texts=TEXTS, actor=ACTOR)
        assert refused == office.Answer(False, TEXTS.t("corrections.add_exempted", unit=second.name, n=world))
        s.commit()
        details = [r.detail for r in s.exec(select(AuditLog).order_by(col(AuditLog.id)))]
        assert details == [
            f"#{world} {first.name} 补登: 电话确认已转发（来自测试）",
            f"#{world} {second.name} 免转: 停业（来自测试）",
        ]


# ---- the same action through the chat and through the console leaves the same rows ------------------------


@pytest.fixture
async def both(bot, transport, settings, engine, clock):
    """The running bot (which has learned its groups) and the console on a real HTTP server over its database;
    two pushes of the same alert, #1 for the chat to act on, #2 for the console."""
    app = create_app(settings, engine, clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="web-console", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), bool, 30, "the web console to start")
    for text in ("推送 刷单", "推送 刷单 确认"):
        await transport.say(ADMIN, text, room_id=OFFICE_ROOM)
        await bot.send_pending()
    yield Served(f"http://127.0.0.1:{port}", engine, settings, clock)
    server.should_exit = True
    thread.join(WAIT)


async def chat(bot, transport, text: str) -> str:
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=OFFICE_ROOM)
    await bot.send_pending()
    [answer] = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    return answer


_signed_in: dict[str, object] = {}


def web(served: Served, push_id: int, action: str, **data: str) -> str:
    """The console's button on push #push_id's page, pressed by the admin (signed in once per console)."""
    c = _signed_in.get(served.base) or _signed_in.setdefault(served.base, served.sign_in())
    r = c.post(f"/pushes/{push_id}/{action}", data={"csrf": csrf_of(c.get(f"/pushes/{push_id}").text), **data})
    assert r.status_code == 303, r.text
    return c.get(r.headers["location"]).text


def marks(engine) -> tuple[int, int]:
    """The newest outbox and audit rows before the actions compared."""
    with session(engine) as s:
        newest_out = s.exec(select(Outbox.id).order_by(col(Outbox.id).desc())).first() or 0
        newest_audit = s.exec(select(AuditLog.id).order_by(col(AuditLog.id).desc())).first() or 0
        return newest_out, newest_audit


def rows_of(engine, push_id: int, since: tuple[int, int]) -> dict:
    """What an action on a push leaves (the messages and audit rows after `since`), with the push's number and the
    console's "from <address>" taken out."""
    other = re.compile(rf"#{push_id}\b")

    def plain(text: str) -> str:
        return re.sub(r"（网页，来自.*?）$", "", other.sub("#N", text))

    with session(engine) as s:
        push = s.get_one(Push, push_id)
        return {
            "push": (push.state, push.deadline, push.closed_at),
            "misses": sorted(m.unit_id for m in s.exec(select(Miss).where(Miss.push_id == push_id))),
            "confirmations": sorted(
                (c.unit_id, c.method, c.late, plain(c.evidence_text), c.recorded_by)
                for c in s.exec(select(Confirmation).where(Confirmation.push_id == push_id))
            ),
            "exemptions": sorted(
                (e.unit_id, e.reason, e.by_id) for e in s.exec(select(Exemption).where(Exemption.push_id == push_id))
            ),
            "corrections": sorted(
                (c.unit_id, c.kind, c.reason, c.by_id)
                for c in s.exec(select(Correction).where(Correction.push_id == push_id))
            ),
            "sent to groups": [
                (o.chat_id, plain(o.text))
                for o in s.exec(
                    select(Outbox)
                    .where(
                        Outbox.push_id == push_id,
                        col(Outbox.id) > since[0],
                        Outbox.chat_kind == ChatKind.ROOM.value,
                        Outbox.chat_id != OFFICE_ROOM,
                    )
                    .order_by(col(Outbox.id))
                )
            ],
            "audit": [
                (a.action, a.actor_id, plain(a.detail))
                for a in s.exec(select(AuditLog).where(col(AuditLog.id) > since[1]).order_by(col(AuditLog.id)))
                if other.search(a.detail)
            ],
        }


async def test_a_deadline_moved_in_chat_and_on_the_console_leaves_the_same_rows(bot, transport, clock, both):
    clock.now = clock.now + timedelta(days=1)  # past both deadlines: closed, every unit missed them
    await bot.run_schedule()
    await bot.send_pending()
    for n in (1, 2):  # 城关镇 confirms both pushes, late
        await transport.say(WANG, f"#{n} 已转发", room_id=LIAISON_ROOM)
        await bot.send_pending()
    with session(both.engine) as s:
        assert s.get_one(Push, 1).state == PushState.CLOSED.value and s.exec(select(Miss)).all()
        assert {c.push_id for c in s.exec(select(Confirmation).where(Confirmation.late == True))} == {1, 2}  # noqa: E712
    since = marks(both.engine)
    answer = await chat(bot, transport, "截止 #1 明天12:00")
    page = web(both, 2, "deadline", when="明天12:00")
    assert answer.replace("#1", "#2") in page
    chat_rows = rows_of(both.engine, 1, since)
    assert chat_rows == rows_of(both.engine, 2, since)
    assert chat_rows["push"][0] == PushState.OPEN.value and chat_rows["misses"] == []
    assert [late for _, _, late, _, _ in chat_rows["confirmations"]] == [False]
    assert len(chat_rows["sent to groups"]) == 1 and [a[0] for a in chat_rows["audit"]] == ["deadline"]


async def test_a_withdrawal_in_chat_and_on_the_console_leaves_the_same_rows(bot, transport, both):
    since = marks(both.engine)
    answer = await chat(bot, transport, "撤回 #1")
    page = web(both, 2, "withdraw", sure="1")
    assert answer.replace("#1", "#2") in page
    chat_rows = rows_of(both.engine, 1, since)
    assert chat_rows == rows_of(both.engine, 2, since)
    assert chat_rows["push"][0] == PushState.WITHDRAWN.value and len(chat_rows["sent to groups"]) == 1
    assert [a[0] for a in chat_rows["audit"]] == ["withdraw"]


async def test_corrections_in_chat_and_on_the_console_leave_the_same_rows(bot, transport, both):
    with session(both.engine) as s:
        first, second = units(s)[:2]
    since = marks(both.engine)
    await chat(bot, transport, f"补登 {first.name} #1 电话确认已转发")
    await chat(bot, transport, f"免转 {second.name} #1 停业整顿")
    web(both, 2, "add", unit=str(first.id), reason="电话确认已转发")
    web(both, 2, "exempt", unit=str(second.id), reason="停业整顿")
    chat_rows = rows_of(both.engine, 1, since)
    assert chat_rows == rows_of(both.engine, 2, since)
    assert [a[0] for a in chat_rows["audit"]] == ["correction_add", "correction_exempt"]
    assert chat_rows["confirmations"] and chat_rows["exemptions"] and len(chat_rows["corrections"]) == 2

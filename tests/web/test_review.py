"""截图核验 and the push page's buttons (改截止, 撤回, 补登, 免转, .xlsx export) over a real HTTP server (issue 14)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select

from bot.chat import compose
from bot.content import load_texts
from bot.domain.relay import progress
from bot.operations.agenda import ladder_of
from bot.reports.build import build_report
from bot.storage.db import session
from bot.storage.models import (
    AuditLog,
    Confirmation,
    ConfirmMethod,
    Exemption,
    Liaison,
    Outbox,
    Push,
    PushState,
    Unit,
)
from bot.transport.base import ChatKind
from tests.conftest import LIAISON_ROOM
from tests.web.conftest import VIEWER_ID, csrf_of
from tests.web.test_access import make_push

HASH = "f0f0f0f0f0f0f0f0"


def units_of(served) -> list[Unit]:
    with session(served.engine) as s:
        return list(s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712


def add_shot(served, push_id: int, unit: Unit, *, verdict: str, reason: str, words: str = "已转发", **extra) -> int:
    with session(served.engine) as s:
        liaison = s.exec(select(Liaison).where(Liaison.unit_id == unit.id)).first()
        conf = Confirmation(
            push_id=push_id,
            unit_id=unit.id,
            liaison_id=liaison.id if liaison else None,
            at=served.clock(),
            method=ConfirmMethod.IMAGE.value,
            evidence_text=words,
            evidence_file=extra.pop("evidence_file", f"{unit.id:032x}.png"),
            evidence_at=served.clock(),
            verdict=verdict,
            verdict_reason=reason,
            **extra,
        )
        s.add(conf)
        s.commit()
        return int(conf.id or 0)


def conf_of(served, conf_id: int) -> Confirmation | None:
    with session(served.engine) as s:
        return s.get(Confirmation, conf_id)


def audits(served, action: str) -> list[AuditLog]:
    with session(served.engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))))


def room_messages(served) -> list[Outbox]:
    with session(served.engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.chat_kind == ChatKind.ROOM.value).order_by(col(Outbox.id))))


def shown_name(c) -> str:
    """The signed-in person as the console names them (their roster name, or else their WeChat ID)."""
    found = re.search(r'<span id="who">([^<（]+)（', c.get("/").text)
    assert found
    return found.group(1)


def progress_in_chat(served, push_id: int) -> str:
    with session(served.engine) as s:
        p = progress(s, s.get_one(Push, push_id))
        return compose.progress_text(load_texts(), p, now=served.clock(), tz=served.settings.tz)


# ---- 截图核验 ----------------------------------------------------------------------------------------------------


def test_the_review_page_lists_doubtful_and_unchecked_screenshots_with_what_the_check_matched(served):
    first = make_push(served, title="冒充客服退款")
    push_id = make_push(served)
    units = units_of(served)
    earlier = add_shot(served, first, units[2], verdict="已核验", reason="在截图中找到推送标题", evidence_hash=HASH)
    reused = add_shot(
        served,
        push_id,
        units[0],
        verdict="存疑",
        reason=f"与{units[2].name}的截图相同",
        evidence_hash="f0f0f0f0f0f0f0f1",
    )
    unchecked = add_shot(served, push_id, units[1], verdict="未核验", reason="文字识别超时，截图已保存未核验")
    fine = add_shot(served, push_id, units[3], verdict="已核验", reason="在截图中找到推送标题")
    page = served.sign_in().get("/review")
    assert page.status_code == 200
    html = page.text
    assert f'id="conf-{reused}"' in html and f'id="conf-{unchecked}"' in html
    assert f'id="conf-{fine}"' not in html and f'id="conf-{earlier}"' not in html
    assert f'src="/evidence/{reused}"' in html and f'src="/evidence/{unchecked}"' in html
    assert f"与{units[2].name}的截图相同" in html and "文字识别超时" in html
    # what the reuse check matched: the earlier push and unit
    assert f'重复的截图：<a href="/pushes/{first}">#{first}</a> 冒充客服退款 · {units[2].name}' in html
    assert f"#{push_id}</a> 刷单返利" in html
    with session(served.engine) as s:
        liaison = s.exec(select(Liaison).where(Liaison.unit_id == units[0].id)).first()
    assert liaison is not None and liaison.name in html
    assert 'id="approve-' in html and "不删除转发记录" in html
    # a viewer sees the list, no buttons
    viewer = served.sign_in(VIEWER_ID).get("/review").text
    assert f'id="conf-{reused}"' in viewer and 'id="approve-' not in viewer


def test_approving_replaces_the_machines_verdict_everywhere(served):
    push_id = make_push(served)
    unit = units_of(served)[0]
    conf_id = add_shot(served, push_id, unit, verdict="存疑", reason="截图里没有找到推送标题")
    assert "存疑 1" in progress_in_chat(served, push_id)
    c = served.sign_in()
    me = shown_name(c)
    r = c.post(f"/review/{conf_id}/approve", data={"csrf": csrf_of(c.get("/review").text)})
    assert r.status_code == 303 and r.headers["location"] == f"/review?done=ok-{conf_id}"
    page = c.get(r.headers["location"]).text
    assert f"已认可 {unit.name} #{push_id} 的截图" in page and f'id="conf-{conf_id}"' not in page
    conf = conf_of(served, conf_id)
    assert conf is not None and conf.verdict == "已核验" and conf.verdict_reason == f"人工认可：{me}"
    assert f"已核验：人工认可：{me}" in c.get(f"/pushes/{push_id}").text
    chat = progress_in_chat(served, push_id)
    assert "已核验 1" in chat and "存疑 0" in chat
    [entry] = audits(served, "evidence_approve")
    assert entry.actor_id == "admin-chen" and unit.name in entry.detail and "截图里没有找到推送标题" in entry.detail
    assert entry.detail.endswith("（网页，来自 127.0.0.1）")
    # decided once: a second click changes nothing
    r = c.post(f"/review/{conf_id}/reject", data={"csrf": csrf_of(c.get("/review").text)})
    assert r.status_code == 409
    assert conf_of(served, conf_id).verdict == "已核验"  # type: ignore[union-attr]


def test_rejecting_keeps_the_confirmation_and_shows_the_offices_word_everywhere(served):
    push_id = make_push(served)
    unit = units_of(served)[0]
    conf_id = add_shot(served, push_id, unit, verdict="未核验", reason="没有安装文字识别，截图已保存未核验")
    c = served.sign_in()
    me = shown_name(c)
    r = c.post(f"/review/{conf_id}/reject", data={"csrf": csrf_of(c.get("/review").text)})
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert "已驳回" in page and "转发记录没有删除" in page and f'id="conf-{conf_id}"' not in page
    conf = conf_of(served, conf_id)
    assert conf is not None and conf.verdict == "存疑" and conf.verdict_reason == f"办公室驳回：{me}"
    assert f"存疑：办公室驳回：{me}" in c.get(f"/pushes/{push_id}").text
    assert f"{unit.name}（办公室驳回：{me}）" in progress_in_chat(served, push_id)
    with session(served.engine) as s:
        push = s.get_one(Push, push_id)
        day = push.deadline.astimezone(served.settings.tz).date()
        report = build_report(
            s,
            kind="day",
            start=day,
            end=day,
            now=served.clock(),
            tz=served.settings.tz,
            ladder=ladder_of(served.settings),
        )
    assert [(e.unit, e.verdict, e.reason) for e in report.evidence] == [(unit.name, "存疑", f"办公室驳回：{me}")]
    [entry] = audits(served, "evidence_reject")
    assert entry.detail.endswith("（网页，来自 127.0.0.1）")


@pytest.mark.parametrize("who", ["viewer", "no-csrf", "forged"])
def test_review_actions_are_refused_without_an_admin_and_a_token(served, who):
    push_id = make_push(served)
    conf_id = add_shot(served, push_id, units_of(served)[0], verdict="存疑", reason="截图里没有找到推送标题")
    c = served.sign_in(VIEWER_ID if who == "viewer" else "admin-chen")
    token = csrf_of(c.get("/review").text)
    data = {"csrf": token} if who == "viewer" else ({} if who == "no-csrf" else {"csrf": "forged"})
    for action in ("approve", "reject"):
        assert c.post(f"/review/{conf_id}/{action}", data=data).status_code == 403
    conf = conf_of(served, conf_id)
    assert conf is not None and conf.verdict == "存疑" and conf.verdict_reason == "截图里没有找到推送标题"
    assert not audits(served, "evidence_approve") and not audits(served, "evidence_reject")


def test_html_on_the_review_page_is_shown_as_text(served):
    push_id = make_push(served, title="<b>标题</b>")
    with session(served.engine) as s:
        unit = s.exec(select(Unit).order_by(col(Unit.id))).first()
        assert unit is not None
        unit.name = "<script>alert(1)</script>城关镇"
        s.add(unit)
        s.commit()
        s.refresh(unit)
    add_shot(served, push_id, unit, verdict="存疑", reason="<img src=x>", words="<svg onload=alert(2)>")
    html = served.sign_in().get("/review").text
    for raw in ("<script>alert", "<img src=x", "<svg", "<b>标题"):
        assert raw not in html
    for shown in ("&lt;script&gt;alert(1)&lt;/script&gt;城关镇", "&lt;img src=x&gt;", "&lt;svg onload=alert(2)&gt;"):
        assert shown in html


# ---- the push page's buttons ---------------------------------------------------------------------------------


def post_action(c, push_id: int, action: str, **data: str):
    token = csrf_of(c.get(f"/pushes/{push_id}").text)
    r = c.post(f"/pushes/{push_id}/{action}", data={"csrf": token, **data})
    if r.status_code == 303:  # done: the push's page says what was done
        assert r.headers["location"] == f"/pushes/{push_id}"
        r = c.get(r.headers["location"])
        assert 'id="notice"' in r.text
    return r


def test_the_push_page_shows_the_buttons_to_admins_only(served):
    push_id = make_push(served)
    html = served.sign_in().get(f"/pushes/{push_id}").text
    for button in ('id="deadline"', 'id="withdraw"', 'id="add"', 'id="exempt"', 'id="export"'):
        assert button in html
    viewer = served.sign_in(VIEWER_ID).get(f"/pushes/{push_id}").text
    assert 'id="deadline"' not in viewer and 'id="withdraw"' not in viewer and 'id="export"' in viewer


def test_an_admin_moves_the_deadline_as_the_chat_command_does(served):
    push_id = make_push(served)
    c = served.sign_in()
    r = post_action(c, push_id, "deadline", when="明天12:00")
    assert r.status_code == 200 and f"已将 #{push_id} 截止时间改为" in r.text and "12:00" in r.text
    with session(served.engine) as s:
        deadline = s.get_one(Push, push_id).deadline.astimezone(served.settings.tz)
    now = served.clock().astimezone(served.settings.tz)
    assert deadline.date() == now.date() + timedelta(days=1) and (deadline.hour, deadline.minute) == (12, 0)
    [sent] = room_messages(served)
    assert sent.chat_id == LIAISON_ROOM and sent.push_id == push_id and f"#{push_id} 截止时间调整为" in sent.text
    [entry] = audits(served, "deadline")
    assert entry.actor_id == "admin-chen" and entry.detail.startswith(f"#{push_id} -> ")
    assert entry.detail.endswith("（网页，来自 127.0.0.1）")
    # a browser's date-time picker value is understood too
    later = (now + timedelta(days=3)).strftime("%Y-%m-%dT09:30")
    assert post_action(c, push_id, "deadline", when=later).status_code == 200
    with session(served.engine) as s:
        assert s.get_one(Push, push_id).deadline.astimezone(served.settings.tz).strftime("%Y-%m-%dT%H:%M") == later


@pytest.mark.parametrize(
    ("when", "said"), [("后天晚上吃饭", "没看懂截止时间"), ("昨天18:00", "这个时间已经过了"), ("", "请填写")]
)
def test_a_bad_deadline_changes_nothing(served, when, said):
    push_id = make_push(served)
    with session(served.engine) as s:
        before = s.get_one(Push, push_id).deadline
    r = post_action(served.sign_in(), push_id, "deadline", when=when)
    assert r.status_code == 400 and said in r.text
    with session(served.engine) as s:
        assert s.get_one(Push, push_id).deadline == before
    assert not room_messages(served) and not audits(served, "deadline")


def test_an_admin_withdraws_a_push_as_the_chat_command_does(served):
    push_id = make_push(served)
    c = served.sign_in()
    r = post_action(c, push_id, "withdraw")  # without ticking 确认撤回
    assert r.status_code == 400 and "确认撤回" in r.text
    with session(served.engine) as s:
        assert s.get_one(Push, push_id).state == PushState.OPEN.value
    assert not room_messages(served)
    r = post_action(c, push_id, "withdraw", sure="1")
    assert r.status_code == 200 and f"已撤回 #{push_id}，已通知 1 个联络员群" in r.text
    with session(served.engine) as s:
        assert s.get_one(Push, push_id).state == PushState.WITHDRAWN.value
    [sent] = room_messages(served)
    assert sent.chat_id == LIAISON_ROOM and f"#{push_id}「刷单返利」已撤回，无需转发" in sent.text
    [entry] = audits(served, "withdraw")
    assert entry.detail == f"#{push_id}（网页，来自 127.0.0.1）"
    page = c.get(f"/pushes/{push_id}").text
    assert "已撤回" in page and 'id="withdraw"' not in page
    assert post_action(c, push_id, "withdraw", sure="1").status_code == 400  # the page was open elsewhere
    assert len(room_messages(served)) == 1


def test_an_admin_records_a_unit_as_relayed_from_the_push_page(served):
    push_id = make_push(served)
    unit = units_of(served)[0]
    c = served.sign_in()
    r = post_action(c, push_id, "add", unit=str(unit.id), reason="电话确认")
    assert r.status_code == 200 and f"已补登：{unit.name} #{push_id}（电话确认），记为按时" in r.text
    with session(served.engine) as s:
        [conf] = s.exec(select(Confirmation).where(Confirmation.push_id == push_id)).all()
    assert conf.unit_id == unit.id and conf.method == ConfirmMethod.OFFICE.value and conf.recorded_by == "admin-chen"
    assert not conf.late and conf.evidence_text == "电话确认"
    [entry] = audits(served, "correction_add")
    assert entry.actor_id == "admin-chen" and entry.detail.endswith("电话确认（网页，来自 127.0.0.1）")
    page = c.get(f"/pushes/{push_id}?state=补登").text
    assert unit.name in page
    # again: the chat command's answer, nothing changed
    r = post_action(c, push_id, "add", unit=str(unit.id), reason="再来一次")
    assert r.status_code == 400 and "未作改动" in r.text
    assert len(audits(served, "correction_add")) == 1


def test_an_admin_exempts_a_unit_from_the_push_page(served):
    push_id = make_push(served)
    unit = units_of(served)[1]
    c = served.sign_in()
    r = post_action(c, push_id, "exempt", unit=str(unit.id), reason="不涉及")
    assert r.status_code == 200 and f"已免转：{unit.name} #{push_id}（不涉及）" in r.text
    with session(served.engine) as s:
        [ex] = s.exec(select(Exemption).where(Exemption.push_id == push_id)).all()
    assert ex.unit_id == unit.id and ex.by_id == "admin-chen" and ex.reason == "不涉及"
    [entry] = audits(served, "correction_exempt")
    assert entry.detail.endswith("（网页，来自 127.0.0.1）")
    # 补登 of an exempted unit: the chat command's answer
    r = post_action(c, push_id, "add", unit=str(unit.id), reason="电话确认")
    assert r.status_code == 400 and "已免转，未作改动" in r.text


@pytest.mark.parametrize(
    ("unit", "reason", "said"),
    [
        ("", "不涉及", "请从列表中选择"),
        ("999999", "x", "请从列表中选择"),
        ("../1", "x", "请从列表中选择"),
        (None, "", "请写明理由"),
    ],
)
def test_bad_corrections_change_nothing(served, unit, reason, said):
    push_id = make_push(served)
    unit = str(units_of(served)[0].id) if unit is None else unit
    c = served.sign_in()
    for action in ("add", "exempt"):
        r = post_action(c, push_id, action, unit=unit, reason=reason)
        assert r.status_code == 400 and said in r.text
    with session(served.engine) as s:
        assert not s.exec(select(Confirmation)).all() and not s.exec(select(Exemption)).all()
    assert not audits(served, "correction_add") and not audits(served, "correction_exempt")


@pytest.mark.parametrize("who", ["viewer", "no-csrf", "forged"])
def test_push_actions_are_refused_without_an_admin_and_a_token(served, who):
    push_id = make_push(served)
    unit = units_of(served)[0]
    c = served.sign_in(VIEWER_ID if who == "viewer" else "admin-chen")
    token = csrf_of(c.get(f"/pushes/{push_id}").text)
    csrf = {"csrf": token} if who == "viewer" else ({} if who == "no-csrf" else {"csrf": "forged"})
    for action, data in (
        ("deadline", {"when": "明天12:00"}),
        ("withdraw", {"sure": "1"}),
        ("add", {"unit": str(unit.id), "reason": "电话确认"}),
        ("exempt", {"unit": str(unit.id), "reason": "不涉及"}),
    ):
        assert c.post(f"/pushes/{push_id}/{action}", data={**csrf, **data}).status_code == 403, action
    with session(served.engine) as s:
        push = s.get_one(Push, push_id)
        assert push.state == PushState.OPEN.value
        assert not s.exec(select(Confirmation)).all() and not s.exec(select(Exemption)).all()
        assert not s.exec(select(AuditLog).where(col(AuditLog.action).in_(["deadline", "withdraw"]))).all()
    assert not room_messages(served)


def test_the_unit_table_exports_as_xlsx_for_anyone_signed_in(served):
    push_id = make_push(served)
    units = units_of(served)
    with session(served.engine) as s:
        unit = s.get_one(Unit, units[0].id)
        unit.name = '=HYPERLINK("http://x","点我")'
        s.add(unit)
        s.commit()
    add_shot(served, push_id, units[1], verdict="存疑", reason="截图里没有找到推送标题", words="已转发本单位群")
    r = served.sign_in(VIEWER_ID).get(f"/pushes/{push_id}/export.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = [[cell.value for cell in row] for row in ws.iter_rows()]
    assert rows[0][:3] == ["单位", "状态", "方式"]
    by_unit = {row[0]: row for row in rows[1:]}
    assert by_unit[units[1].name][1] == "已转发" and by_unit[units[1].name][5] == "已转发本单位群"
    assert by_unit[units[1].name][6:8] == ["存疑", "截图里没有找到推送标题"]
    assert len(rows) - 1 == len([u for u in units if u.active])
    hostile = [cell for row in ws.iter_rows() for cell in row if str(cell.value or "").lstrip("'").startswith("=HYP")]
    assert hostile and all(cell.data_type == "s" for cell in hostile)
    assert served.client().get(f"/pushes/{push_id}/export.xlsx").status_code == 303  # not signed in
    assert served.sign_in().get("/pushes/99999/export.xlsx").status_code == 404

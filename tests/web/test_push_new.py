"""新推送 over a real HTTP server (issue 14): a library alert or a link, its preview as the liaison group will see
it, the deadline, 发送 through push_alert and the outbox, the same-day repeat rule with its second button."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

from sqlmodel import col, select

from bot.chat import compose
from bot.clock import show
from bot.content import load_library, load_texts
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Outbox, Push
from bot.transport.base import ChatKind
from bot.web.pages_push import picker_value
from tests.conftest import ADMIN, LIAISON_ROOM
from tests.web.conftest import VIEWER_ID, csrf_of

FROM = "（网页，来自 127.0.0.1）"


def first_alert():
    return load_library().alerts[0]


def pushes(served) -> list[Push]:
    with session(served.engine) as s:
        return list(s.exec(select(Push).order_by(col(Push.id))))


def room_rows(served) -> list[Outbox]:
    with session(served.engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.chat_kind == ChatKind.ROOM.value).order_by(col(Outbox.id))))


def audits(served, action: str) -> list[AuditLog]:
    with session(served.engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))))


def alert_of(served, push: Push) -> Alert:
    with session(served.engine) as s:
        return s.get_one(Alert, push.alert_id)


def shown_message(html: str) -> str:
    found = re.search(r'<pre class="message" id="message">(.*?)</pre>', html, re.S)
    assert found, html
    return htmllib.unescape(found.group(1))


def default_deadline_of(served):
    """The default deadline for the tests' clock (Thursday 09:00): today at deadline_time."""
    st = served.settings
    return (
        served.clock()
        .astimezone(st.tz)
        .replace(hour=st.deadline_time.hour, minute=st.deadline_time.minute, second=0, microsecond=0)
    )


def test_the_library_preview_is_exactly_the_message_the_group_will_get(served):
    item = first_alert()
    c = served.sign_in()
    page = c.get("/pushes/new")
    assert page.status_code == 200
    assert all(a.case_type in page.text for a in load_library().alerts)
    page = c.get("/pushes/new", params={"case": item.case_type})
    assert page.status_code == 200
    alert = Alert(case_type=item.case_type, title=item.title, text=item.body)
    deadline = default_deadline_of(served)
    expected = compose.push_text(load_texts(), n=1, alert=alert, deadline=deadline, tz=served.settings.tz)
    assert shown_message(page.text) == expected
    assert f'value="{picker_value(deadline, served.settings.tz)}"' in page.text
    assert 'id="send"' in page.text
    # a case type not in the library is refused with a plain sentence
    page = c.get("/pushes/new", params={"case": "没有这种"})
    assert "没有找到案件类型" in page.text and 'id="message"' not in page.text


def test_sending_a_library_alert_pushes_it_through_the_outbox_and_audits_it(served):
    item = first_alert()
    c = served.sign_in()
    csrf = csrf_of(c.get("/pushes/new", params={"case": item.case_type}).text)
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": ""})
    assert r.status_code == 303, r.text
    [push] = pushes(served)
    assert r.headers["location"] == f"/pushes/{push.id}"
    assert push.created_by == ADMIN.contact_id
    assert push.deadline == default_deadline_of(served)
    alert = alert_of(served, push)
    assert (alert.case_type, alert.title, alert.text) == (item.case_type, item.title, item.body)
    [row] = room_rows(served)
    assert row.chat_id == LIAISON_ROOM and row.push_id == push.id
    assert row.text == compose.push_text(
        load_texts(), n=push.id, alert=alert, deadline=push.deadline, tz=served.settings.tz
    )
    [entry] = audits(served, "push")
    assert entry.actor_id == ADMIN.contact_id and entry.detail.startswith(f"#{push.id} {item.case_type}")
    assert entry.detail.endswith(FROM)
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and f"#{push.id}" in page.text
    assert 'id="notice"' in page.text and "已推送" in page.text  # the chat's reply, on the push's page


def test_a_chosen_deadline_goes_into_the_push_and_its_message(served):
    item = first_alert()
    tz = served.settings.tz
    wanted = (served.clock() + timedelta(days=2)).astimezone(tz).replace(hour=10, minute=30, second=0, microsecond=0)
    c = served.sign_in()
    page = c.get("/pushes/new", params={"case": item.case_type, "deadline": picker_value(wanted, tz)})
    assert show(wanted, tz) in shown_message(page.text)
    csrf = csrf_of(page.text)
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": picker_value(wanted, tz)})
    assert r.status_code == 303, r.text
    [push] = pushes(served)
    assert push.deadline == wanted
    [row] = room_rows(served)
    assert row.text == compose.push_text(load_texts(), n=push.id, alert=alert_of(served, push), deadline=wanted, tz=tz)
    [entry] = audits(served, "push")
    assert entry.detail.endswith(FROM) and not audits(served, "deadline")  # pushed with it, not moved after


def test_a_past_deadline_is_refused_with_the_chats_sentence_and_nothing_is_pushed(served):
    item = first_alert()
    tz = served.settings.tz
    past = served.clock() - timedelta(hours=2)
    c = served.sign_in()
    page = c.get("/pushes/new", params={"case": item.case_type, "deadline": picker_value(past, tz)})
    assert "这个时间已经过了" in page.text and 'id="send"' not in page.text
    csrf = csrf_of(page.text)
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": picker_value(past, tz)})
    assert r.status_code == 400
    assert "这个时间已经过了" in r.text
    assert pushes(served) == [] and room_rows(served) == []


def test_the_same_alert_again_today_shows_the_earlier_push_and_needs_a_second_button(served):
    item = first_alert()
    c = served.sign_in()
    csrf = csrf_of(c.get("/pushes/new").text)
    assert c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type}).status_code == 303
    [first] = pushes(served)
    page = c.get("/pushes/new", params={"case": item.case_type})
    assert f'href="/pushes/{first.id}"' in page.text and 'id="earlier"' in page.text
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type})
    assert r.status_code == 409
    assert f"#{first.id}「{item.title}」今天" in htmllib.unescape(r.text)
    assert 'id="again"' in r.text and 'name="again" value="1"' in r.text
    assert len(pushes(served)) == 1 and len(room_rows(served)) == 1
    assert audits(served, "push_repeat")[0].detail.endswith(FROM)
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": "", "again": "1"})
    assert r.status_code == 303
    assert len(pushes(served)) == 2 and len(room_rows(served)) == 2


def test_a_viewer_sees_the_form_but_cannot_send(served):
    item = first_alert()
    viewer = served.sign_in(VIEWER_ID)
    page = viewer.get("/pushes/new", params={"case": item.case_type})
    assert page.status_code == 200 and 'id="message"' in page.text and 'id="send"' not in page.text
    r = viewer.post("/pushes/new", data={"csrf": csrf_of(page.text), "case": item.case_type})
    assert r.status_code == 403
    assert pushes(served) == [] and room_rows(served) == [] and audits(served, "push") == []


def test_sending_without_the_csrf_token_is_refused(served):
    item = first_alert()
    c = served.sign_in()
    r = c.post("/pushes/new", data={"case": item.case_type})
    assert r.status_code == 403
    r = c.post("/pushes/new", data={"csrf": "wrong", "case": item.case_type})
    assert r.status_code == 403
    assert pushes(served) == [] and room_rows(served) == []


def test_nothing_chosen_or_a_bad_link_changes_nothing(served):
    c = served.sign_in()
    csrf = csrf_of(c.get("/pushes/new").text)
    for data in ({}, {"link": "javascript:alert(1)"}, {"link": "file:///etc/passwd"}, {"case": "没有这种"}):
        r = c.post("/pushes/new", data={"csrf": csrf, **data})
        assert r.status_code == 400, data
    page = c.get("/pushes/new", params={"link": "file:///etc/passwd"})
    assert "链接要以 http:// 或 https:// 开头" in page.text
    assert pushes(served) == [] and room_rows(served) == []


# ---- links ------------------------------------------------------------------------------------------------


PAGE = (
    "<html><head><meta charset='utf-8'><meta property='og:title' content='&lt;b&gt;警惕&lt;/b&gt;刷单骗局'>"
    "<meta property='og:description' content='兼职刷单&lt;script&gt;x&lt;/script&gt;都是诈骗'></head><body></body></html>"
)


def test_a_link_is_previewed_through_the_guarded_client_and_pushed_as_a_card(served, server):
    server.expect_request("/article").respond_with_data(PAGE, content_type="text/html; charset=utf-8")
    url = server.url_for("/article")
    c = served.sign_in()
    page = c.get("/pushes/new", params={"link": url})
    assert page.status_code == 200
    # HTML in the page's title and description is shown as text
    assert "&lt;b&gt;警惕&lt;/b&gt;刷单骗局" in page.text and "<b>警惕" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>x" not in page.text
    alert = Alert(link_url=url, title="<b>警惕</b>刷单骗局")
    deadline = default_deadline_of(served)
    assert shown_message(page.text) == compose.push_text(
        load_texts(), n=1, alert=alert, deadline=deadline, tz=served.settings.tz
    )
    r = c.post("/pushes/new", data={"csrf": csrf_of(page.text), "link": url, "title": ""})
    assert r.status_code == 303, r.text
    [push] = pushes(served)
    pushed = alert_of(served, push)
    assert (pushed.link_url, pushed.title) == (url, "<b>警惕</b>刷单骗局")
    assert pushed.link_description == "兼职刷单<script>x</script>都是诈骗"
    [row] = room_rows(served)
    assert row.attachment == "link" and row.alert_id == pushed.id
    assert audits(served, "push")[0].detail.endswith(FROM)
    # the push page shows the title as text too
    assert "&lt;b&gt;警惕&lt;/b&gt;" in c.get(f"/pushes/{push.id}").text


def test_an_untitled_link_needs_a_title_typed(served, server):
    server.expect_request("/plain").respond_with_data(
        "<html><head></head><body>hi</body></html>", content_type="text/html"
    )
    url = server.url_for("/plain")
    c = served.sign_in()
    page = c.get("/pushes/new", params={"link": url})
    assert 'id="untitled"' in page.text and "网页打不开，或网页里没有标题" in page.text
    assert 'id="send"' not in page.text
    csrf = csrf_of(page.text)
    r = c.post("/pushes/new", data={"csrf": csrf, "link": url})
    assert r.status_code == 400 and "请在“标题”一栏填写标题" in r.text
    assert pushes(served) == [] and room_rows(served) == []
    assert audits(served, "push_untitled")[0].detail.endswith(FROM)
    page = c.get("/pushes/new", params={"link": url, "title": "防范<i>电信</i>诈骗"})
    assert "防范&lt;i&gt;电信&lt;/i&gt;诈骗" in page.text and 'id="send"' in page.text
    r = c.post("/pushes/new", data={"csrf": csrf, "link": url, "title": "防范<i>电信</i>诈骗"})
    assert r.status_code == 303
    [push] = pushes(served)
    assert alert_of(served, push).title == "防范<i>电信</i>诈骗"


def test_the_target_field_aims_the_push_and_an_unknown_target_sends_nothing(served):
    from bot.domain.roster import import_roster, read_roster
    from bot.storage.models import PushTarget, Unit
    from tests.handlers.test_targets import TAGGED

    read = read_roster("名单.csv", TAGGED.encode())
    with session(served.engine) as s:
        import_roster(s, read.rows, columns=read.columns)
        s.commit()
    item = first_alert()
    c = served.sign_in()
    page = c.get("/pushes/new", params={"case": item.case_type, "to": "火星"})
    assert "没有找到推送对象：火星" in page.text and 'id="send"' not in page.text
    csrf = csrf_of(page.text)
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": "", "to": "火星"})
    assert r.status_code == 400 and "没有找到推送对象：火星" in r.text
    assert pushes(served) == [] and room_rows(served) == []
    page = c.get("/pushes/new", params={"case": item.case_type, "to": "银行"})
    assert "本条请以下单位转发：银行（金融行业）" in shown_message(page.text)
    assert 'name="to" value="银行"' in page.text  # carried into the send form
    r = c.post("/pushes/new", data={"csrf": csrf, "case": item.case_type, "deadline": "", "to": "银行"})
    assert r.status_code == 303, r.text
    [push] = pushes(served)
    assert push.target == "银行"
    with session(served.engine) as s:
        assert [s.get_one(Unit, t.unit_id).name for t in s.exec(select(PushTarget))] == ["金融行业"]
    [row] = room_rows(served)
    assert "本条请以下单位转发：银行（金融行业）" in row.text
    page = c.get(r.headers["location"])
    assert "对象：银行" in page.text

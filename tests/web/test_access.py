"""The web console's access rules over a real HTTP server (issue 14): no page without a session, codes valid once
and for five minutes, five wrong codes lock the id, CSRF on every form, viewers only look, names and messages
shown as text, screenshots only by confirmation number."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import col, select
from starlette.routing import Mount, Route

from bot.domain.relay import create_push
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Confirmation, Liaison, Outbox, Push, Unit, WebSession
from bot.transport.base import ChatKind
from bot.web.app import create_app
from tests.conftest import ADMIN
from tests.web.conftest import VIEWER_ID, csrf_of, pre_token

PUBLIC = {"/login", "/login/code", "/login/verify", "/login/link/{token}", "/login/link"}


def make_push(served, text: str = "【反诈预警】刷单返利又出新花样", title: str = "刷单返利") -> int:
    with session(served.engine) as s:
        alert = Alert(case_type="刷单返利", title=title, text=text, created_at=served.clock())
        s.add(alert)
        s.flush()
        push = create_push(
            s, alert, now=served.clock(), by=ADMIN.contact_id, deadline=served.clock() + timedelta(hours=8)
        )
        s.commit()
        return int(push.id or 0)


def outbox_rows(served) -> list[Outbox]:
    with session(served.engine) as s:
        return list(s.exec(select(Outbox).order_by(col(Outbox.id))))


def test_every_route_but_sign_in_refuses_a_request_without_a_session(served):
    push_id = make_push(served)
    app = create_app(served.settings, served.engine, served.clock)
    c = served.client()
    checked = 0
    for route in app.routes:
        if isinstance(route, Mount) or route.path in PUBLIC:
            continue
        assert isinstance(route, Route)
        path = route.path.replace("{push_id:int}", str(push_id)).replace("{confirmation_id:int}", "1")
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            r = c.request(method, path, data={"csrf": "x"})
            checked += 1
            if method == "GET" and not path.startswith("/evidence/"):
                assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            assert "未转发" not in r.text and "刷单返利" not in r.text
    assert checked >= 6
    assert not [r for r in outbox_rows(served) if r.chat_kind == ChatKind.ROOM.value and "提醒" in r.text]


def test_a_code_goes_to_the_persons_private_chat_and_signs_in_once(served):
    c = served.client()
    pre = pre_token(c)
    r = c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id, "next": "/pushes"})
    assert r.status_code == 200 and "验证码已交给机器人发送" in r.text
    [row] = outbox_rows(served)
    assert row.chat_kind == ChatKind.PRIVATE.value and row.chat_id == ADMIN.contact_id
    assert "5 分钟内有效" in row.text
    code = served.last_code(ADMIN.contact_id)
    r = c.post("/login/verify", data={"pre": pre, "contact_id": ADMIN.contact_id, "code": code, "next": "/pushes"})
    assert r.status_code == 303 and r.headers["location"] == "/pushes"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert c.get("/pushes").status_code == 200
    # The same code again, from another browser: used up.
    other = served.client()
    pre2 = pre_token(other)
    r = other.post("/login/verify", data={"pre": pre2, "contact_id": ADMIN.contact_id, "code": code})
    assert r.status_code == 400 and "验证码不对" in r.text
    assert other.get("/").status_code == 303
    with session(served.engine) as s:
        logins = s.exec(select(AuditLog).where(AuditLog.action == "web_login")).all()
    assert [a.allowed for a in logins] == [True, False]
    assert "127.0.0.1" in logins[0].detail


def test_a_code_expires_after_five_minutes(served):
    c = served.client()
    pre = pre_token(c)
    c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    code = served.last_code(ADMIN.contact_id)
    served.clock.advance(minutes=5, seconds=1)
    r = c.post("/login/verify", data={"pre": pre, "contact_id": ADMIN.contact_id, "code": code})
    assert r.status_code == 400
    assert c.get("/").status_code == 303


def test_five_wrong_codes_lock_sign_in_for_that_id_for_a_while(served):
    c = served.client()
    pre = pre_token(c)
    c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    code = served.last_code(ADMIN.contact_id)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        r = c.post("/login/verify", data={"pre": pre, "contact_id": ADMIN.contact_id, "code": wrong})
        assert r.status_code == 400
    r = c.post("/login/verify", data={"pre": pre, "contact_id": ADMIN.contact_id, "code": code})
    assert r.status_code == 400 and "锁定" in r.text  # the right code is refused while locked
    assert c.get("/").status_code == 303
    sent = len(outbox_rows(served))
    served.clock.advance(minutes=2)
    r = c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    assert "锁定" in r.text and len(outbox_rows(served)) == sent  # no new code while locked
    # Another id is not locked.
    assert served.sign_in(VIEWER_ID).get("/").status_code == 200
    served.clock.advance(minutes=16)
    assert served.sign_in().get("/").status_code == 200


def test_codes_cannot_be_asked_for_faster_than_one_a_minute(served):
    c = served.client()
    pre = pre_token(c)
    c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    r = c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    assert "1 分钟后" in r.text
    assert len(outbox_rows(served)) == 1


def test_only_admins_and_viewers_can_ask_for_a_code(served):
    c = served.client()
    pre = pre_token(c)
    r = c.post("/login/code", data={"pre": pre, "typed": "wxid_wangfang"})
    assert r.status_code == 400 and "不能登录" in r.text
    assert outbox_rows(served) == []


def test_sign_in_forms_without_their_token_are_refused(served):
    c = served.client()
    pre_token(c)
    r = c.post("/login/code", data={"typed": ADMIN.contact_id})
    assert r.status_code == 403
    r = c.post("/login/code", data={"pre": "forged", "typed": ADMIN.contact_id})
    assert r.status_code == 403
    assert outbox_rows(served) == []


def test_a_form_without_its_csrf_token_changes_nothing(served):
    push_id = make_push(served)
    c = served.sign_in()
    before = len(outbox_rows(served))
    for data in ({}, {"csrf": "forged"}):
        r = c.post(f"/pushes/{push_id}/remind", data=data)
        assert r.status_code == 403 and "页面已过期" in r.text
    assert len(outbox_rows(served)) == before
    # With the page's token, the same button works.
    token = csrf_of(c.get(f"/pushes/{push_id}").text)
    r = c.post(f"/pushes/{push_id}/remind", data={"csrf": token})
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert f"已在 1 个联络员群提醒 #{push_id}" in page
    reminders = [o for o in outbox_rows(served)[before:] if o.chat_kind == ChatKind.ROOM.value]
    assert reminders and f"#{push_id}" in reminders[0].text
    with session(served.engine) as s:
        [entry] = s.exec(select(AuditLog).where(AuditLog.action == "remind")).all()
    assert entry.actor_id == ADMIN.contact_id and "网页" in entry.detail and "127.0.0.1" in entry.detail


def test_a_viewer_can_look_but_not_change_anything(served):
    push_id = make_push(served)
    c = served.sign_in(VIEWER_ID)
    page = c.get(f"/pushes/{push_id}").text
    assert "只能查看" in page and 'id="remind"' not in page
    before = len(outbox_rows(served))
    r = c.post(f"/pushes/{push_id}/remind", data={"csrf": csrf_of(page)})
    assert r.status_code == 403 and "只能查看" in r.text
    assert len(outbox_rows(served)) == before
    with session(served.engine) as s:
        assert not s.exec(select(AuditLog).where(AuditLog.action == "remind")).all()


def test_html_in_names_and_messages_is_shown_as_text(served):
    evil_unit, evil_person = "<script>alert(1)</script>城关镇", "<b onmouseover=alert(2)>王芳</b>"
    evil_text = '已转发<img src=x onerror="alert(3)">'
    push_id = make_push(served, text="<iframe src=//evil.example></iframe>预警", title="<svg onload=alert(4)>")
    with session(served.engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == "城关镇")).one()
        unit.name = evil_unit
        liaison = s.exec(select(Liaison).where(Liaison.unit_id == unit.id)).first()
        assert liaison is not None
        liaison.name = evil_person
        s.add(Confirmation(push_id=push_id, unit_id=unit.id, at=served.clock(), method="text", evidence_text=evil_text))
        s.commit()
    c = served.sign_in()
    pages = c.get(f"/pushes/{push_id}").text + c.get("/pushes").text + c.get("/").text
    for raw in ("<script>", "<b onmouseover", "<img src=x", "<iframe", "<svg"):
        assert raw not in pages
    for shown in (
        "&lt;script&gt;alert(1)&lt;/script&gt;城关镇",
        "&lt;b onmouseover=alert(2)&gt;王芳",
        "&lt;svg onload=alert(4)&gt;",
    ):
        assert shown in pages


def test_screenshots_only_by_confirmation_number_and_only_when_signed_in(served, tmp_path):
    push_id = make_push(served)
    folder = tmp_path / "evidence"
    folder.mkdir(exist_ok=True)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    (folder / "a1b2c3.png").write_bytes(png)
    (tmp_path / "secret.txt").write_text("not for the web")
    with session(served.engine) as s:
        units = s.exec(select(Unit).order_by(col(Unit.id))).all()
        good = Confirmation(
            push_id=push_id, unit_id=units[0].id, at=served.clock(), method="image", evidence_file="a1b2c3.png"
        )
        bad = Confirmation(
            push_id=push_id, unit_id=units[1].id, at=served.clock(), method="image", evidence_file="../secret.txt"
        )
        s.add(good)
        s.add(bad)
        s.commit()
        good_id, bad_id = good.id, bad.id
    assert served.client().get(f"/evidence/{good_id}").status_code == 401
    c = served.sign_in()
    r = c.get(f"/evidence/{good_id}")
    assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
    assert c.get(f"/evidence/{bad_id}").status_code == 404
    assert "not for the web" not in c.get(f"/evidence/{bad_id}").text
    assert c.get("/evidence/..%2Fsecret.txt").status_code == 404
    assert f'src="/evidence/{good_id}"' in c.get(f"/pushes/{push_id}").text


def test_a_sign_in_link_works_once_and_opening_it_does_not_use_it(served):
    from bot.cli.web_cmd import login_link

    text = login_link(served.settings, served.engine, served.clock, who="", host="127.0.0.1", port=8080)
    token = text.rsplit("/login/link/", 1)[1].strip()
    c = served.client()
    page = c.get(f"/login/link/{token}")
    assert page.status_code == 200 and c.get(f"/login/link/{token}").status_code == 200  # looking uses nothing
    pre = c.cookies["relaybot_pre"]
    r = c.post("/login/link", data={"pre": pre, "token": token})
    assert r.status_code == 303 and c.get("/").status_code == 200
    other = served.client()
    other.get(f"/login/link/{token}")
    r = other.post("/login/link", data={"pre": other.cookies["relaybot_pre"], "token": token})
    assert r.status_code == 403 and "无效" in r.text


def test_sessions_expire_and_sign_out_ends_them(served):
    c = served.sign_in()
    assert c.get("/").status_code == 200
    served.clock.advance(hours=served.settings.web_session_hours, seconds=1)
    assert c.get("/").status_code == 303
    c = served.sign_in()
    token = csrf_of(c.get("/").text)
    assert c.post("/logout", data={"csrf": token}).status_code == 303
    assert c.get("/").status_code == 303
    with session(served.engine) as s:
        assert all(row.ended_at or row.expires_at <= served.clock() for row in s.exec(select(WebSession)))


def test_after_sign_in_only_paths_on_this_site_are_followed(served):
    c = served.client()
    pre = pre_token(c)
    c.post("/login/code", data={"pre": pre, "typed": ADMIN.contact_id})
    code = served.last_code(ADMIN.contact_id)
    r = c.post(
        "/login/verify", data={"pre": pre, "contact_id": ADMIN.contact_id, "code": code, "next": "//evil.example/x"}
    )
    assert r.headers["location"] == "/"


def test_the_push_page_shows_every_units_state(served):
    push_id = make_push(served)
    with session(served.engine) as s:
        units = s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))).all()  # noqa: E712
        s.add(
            Confirmation(push_id=push_id, unit_id=units[0].id, at=served.clock(), method="text", evidence_text="已转发")
        )
        late = served.clock() + timedelta(hours=9)
        s.add(Confirmation(push_id=push_id, unit_id=units[1].id, at=late, method="note", late=True))
        s.commit()
        push = s.get(Push, push_id)
        assert push is not None
    c = served.sign_in(VIEWER_ID)
    page = c.get(f"/pushes/{push_id}").text
    assert f"已转发 2/{len(units)}" in page
    assert page.count('class="state-未转发"') == len(units) - 2
    assert page.count('class="state-迟报"') == 1 and "群接龙" in page
    only_missing = c.get(f"/pushes/{push_id}", params={"state": "未转发"}).text
    assert units[0].name not in only_missing and units[2].name in only_missing


def _post_routes(served, push_id: int) -> list[str]:
    app = create_app(served.settings, served.engine, served.clock)
    paths = []
    for route in app.routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()) and route.path not in PUBLIC:
            paths.append(re.sub(r"\{[a-z_]+(:int)?\}", lambda m: str(push_id) if m.group(1) else "x", route.path))
    assert len(paths) >= 5
    return paths


def test_every_form_of_every_page_refuses_a_missing_or_forged_csrf_token(served):
    push_id = make_push(served)
    c = served.sign_in()
    before = (len(outbox_rows(served)), _audit_count(served))
    for path in _post_routes(served, push_id):
        if path == "/logout":
            continue
        for data in ({}, {"csrf": "forged"}):
            r = c.post(path, data=data, files=_file_for(path))
            assert r.status_code == 403, (path, r.status_code)
    assert (len(outbox_rows(served)), _audit_count(served)) == before


def test_a_viewer_is_refused_by_every_form_that_changes_something(served):
    push_id = make_push(served)
    c = served.sign_in(VIEWER_ID)
    token = csrf_of(c.get("/").text)
    before = (len(outbox_rows(served)), _audit_count(served))
    for path in _post_routes(served, push_id):
        if path == "/logout":
            continue
        r = c.post(path, data={"csrf": token}, files=_file_for(path))
        assert r.status_code == 403 and "只能查看" in r.text, (path, r.status_code)
    assert (len(outbox_rows(served)), _audit_count(served)) == before


def _file_for(path: str) -> dict | None:
    """An upload route takes only a multipart form (as its page's form sends it): a file goes with the post."""
    return {"file": ("x.csv", b"a,b\n", "text/csv")} if path.endswith("/upload") else None


def _audit_count(served) -> int:
    with session(served.engine) as s:
        return len(s.exec(select(AuditLog)).all())


def test_the_sign_in_page_names_people_without_showing_their_wechat_ids(served):
    c = served.client()
    page = c.get("/login").text
    assert ADMIN.contact_id not in page and VIEWER_ID not in page
    assert "admi…en（管理员）" in page  # the bot knows no name for it yet: a shortened id
    r = c.post("/login/code", data={"pre": c.cookies["relaybot_pre"], "picked": "0"})
    assert r.status_code == 200 and served.last_code(ADMIN.contact_id)
    r = c.post("/login/code", data={"pre": c.cookies["relaybot_pre"], "picked": "7"})
    assert r.status_code == 400

"""The web console's 名单 and 单位 pages over a real HTTP server (issue 14): a roster upload shows the import's own
diff and changes nothing until 应用, a broken file changes nothing, one liaison is edited inline, units show their
record and level; viewers only look, forms need their CSRF token, names are shown as text."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import col, select

from bot.domain.relay import create_push
from bot.storage.db import session
from bot.storage.models import (
    Alert,
    AuditLog,
    BotState,
    Confirmation,
    Correction,
    Leave,
    Liaison,
    Membership,
    Miss,
    Push,
    PushState,
    Unit,
)
from bot.web import app as web_app
from bot.web import pages_roster
from tests.conftest import ADMIN, EXAMPLE_ROSTER, LIAISON_ROOM
from tests.web.conftest import VIEWER_ID, csrf_of

HEADER = "单位,类别,联络员,微信ID,微信昵称,手机,角色\n"
# The example roster with 区卫健局 gone, 孙丽's phone changed and 区公安分局 new.
NEW_ROSTER = HEADER + (
    "城关镇,镇街,王芳,wxid_wangfang,王芳-城关镇,13800000001,主\n"
    "城关镇,镇街,赵磊,,赵磊,13800000002,备\n"
    "东城街道,镇街,李强,wxid_liqiang,李强,13800000003,主\n"
    "西湖镇,镇街,周敏,,周敏（西湖镇）,13800000004,主\n"
    "区教育局,区直单位,孙丽,wxid_sunli,孙丽,13900000005,主\n"
    "金融行业,行业,郑洁,wxid_zhengjie,郑洁,13800000007,主\n"
    "区公安分局,区直单位,钱多,wxid_qianduo,钱多,13800000008,主\n"
)


def snapshot(served) -> list[tuple]:
    """Every unit and liaison as stored: what must not change when nothing may."""
    with session(served.engine) as s:
        units = [(u.id, u.name, u.kind, u.active) for u in s.exec(select(Unit).order_by(col(Unit.id)))]
        people = [
            (li.id, li.unit_id, li.name, li.role, li.contact_id, li.wechat_name, li.phone, li.active)
            for li in s.exec(select(Liaison).order_by(col(Liaison.id)))
        ]
    return units + people


def held_tokens(served) -> list[str]:
    with session(served.engine) as s:
        keys = s.exec(select(BotState.key).where(col(BotState.key).startswith(pages_roster.HELD_PREFIX))).all()
    return [k.removeprefix(pages_roster.HELD_PREFIX) for k in keys]


def audits(served, action: str) -> list[AuditLog]:
    with session(served.engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))))


def upload(c, text: str | bytes, name: str = "名单.csv", csrf: str | None = None):
    token = csrf if csrf is not None else csrf_of(c.get("/roster").text)
    data = text.encode() if isinstance(text, str) else text
    return c.post("/roster/upload", data={"csrf": token}, files={"file": (name, data, "text/csv")})


def token_of(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def unit_active(served, name: str) -> bool | None:
    with session(served.engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == name)).first()
        return None if unit is None else unit.active


def test_an_upload_shows_the_imports_diff_and_changes_nothing(served):
    c = served.sign_in()
    before = snapshot(served)
    r = upload(c, NEW_ROSTER)
    assert r.status_code == 200, r.text
    page = r.text
    assert "新增单位（1）" in page and "区公安分局" in page
    assert "新增联络员（1）" in page and "区公安分局-钱多" in page
    assert "更新（1）" in page and "区教育局-孙丽（手机）" in page
    assert "停用单位（不在新名单中）（1）" in page and "应用后会停用 1 个单位" in page and "区卫健局" in page
    assert "移除联络员（不在新名单中）（1）" in page and "区卫健局-吴刚" in page
    assert "CSV 按 UTF-8 编码读取" in page  # how the file was read, as the CLI says
    assert 'id="apply"' in page
    assert snapshot(served) == before
    assert held_tokens(served) == [token_of(page)]


def test_apply_imports_the_same_file_and_audits_it(served):
    c = served.sign_in()
    page = upload(c, NEW_ROSTER).text
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token_of(page)})
    assert r.status_code == 200, r.text
    assert "已应用：7 行" in r.text and "停用单位（不在新名单中） 1：区卫健局" in r.text
    assert unit_active(served, "区公安分局") is True and unit_active(served, "区卫健局") is False
    with session(served.engine) as s:
        sun = s.exec(select(Liaison).where(Liaison.name == "孙丽")).one()
        assert sun.phone == "13900000005"
    [entry] = audits(served, "roster_import")
    assert entry.actor_id == ADMIN.contact_id and "名单.csv：7 行" in entry.detail
    assert "网页" in entry.detail and "127.0.0.1" in entry.detail
    assert held_tokens(served) == []
    # Applied once: the same button again finds nothing waiting.
    again = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token_of(page)})
    assert again.status_code == 410 and "重新上传" in again.text
    assert len(audits(served, "roster_import")) == 1
    units = c.get("/units").text
    assert "区公安分局" in units and "区卫健局" not in units


def test_a_roster_changed_in_between_shows_the_new_diff_instead_of_applying(served):
    c = served.sign_in()
    page = upload(c, NEW_ROSTER).text
    token = token_of(page)
    with session(served.engine) as s:  # meanwhile someone adds 区卫健局 a second liaison in chat
        unit = s.exec(select(Unit).where(Unit.name == "区卫健局")).one()
        s.add(Liaison(unit_id=unit.id or 0, name="冯涛"))
        s.commit()
    before = snapshot(served)
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token})
    assert r.status_code == 409 and "名单在这期间有了变化" in r.text
    assert "区卫健局-冯涛" in r.text and token_of(r.text) == token
    assert snapshot(served) == before and audits(served, "roster_import") == []
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token})  # the new diff, confirmed
    assert r.status_code == 200 and "已应用" in r.text
    assert unit_active(served, "区卫健局") is False


def test_an_upload_waits_thirty_minutes_and_only_for_the_admin_who_sent_it(served):
    c = served.sign_in()
    page = upload(c, NEW_ROSTER).text
    before = snapshot(served)
    served.clock.advance(minutes=31)
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token_of(page)})
    assert r.status_code == 410 and "已过期" in r.text
    assert snapshot(served) == before and held_tokens(served) == []
    # A made-up token finds nothing either.
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": "../../etc/passwd"})
    assert r.status_code == 410 and snapshot(served) == before


def test_an_upload_held_for_another_admin_is_not_applied(served):
    c = served.sign_in()
    page = upload(c, NEW_ROSTER).text
    token = token_of(page)
    with session(served.engine) as s:  # the upload was another admin's
        state = s.get(BotState, pages_roster.HELD_PREFIX + token)
        assert state is not None
        state.value = state.value.replace(ADMIN.contact_id, "admin-other")
        s.add(state)
        s.commit()
    before = snapshot(served)
    r = c.post("/roster/apply", data={"csrf": csrf_of(page), "token": token})
    assert r.status_code == 403 and "只有" in r.text
    assert snapshot(served) == before


def test_a_broken_file_shows_the_readers_errors_and_changes_nothing(served):
    c = served.sign_in()
    before = snapshot(served)
    bad = HEADER + "城关镇,镇街,王芳,wxid_wangfang,王芳,13800000001,组长\n东城街道,镇街,,,,,主\n"
    r = upload(c, bad)
    assert r.status_code == 400
    assert "导入失败，名单没有改动" in r.text
    assert "第 2 行“角色”为“组长”，应为“主”或“备”" in r.text
    assert "第 3 行“联络员”为空" in r.text
    assert 'id="apply"' not in r.text
    r = upload(c, b"\xd0\xcf\x11\xe0 old excel", name="名单.xls")
    assert r.status_code == 400 and "不支持旧版 .xls 文件" in r.text
    r = upload(c, b"PK\x03\x04 not really a zip", name="名单.xlsx")
    assert r.status_code == 400 and "无法打开这个 Excel 文件" in r.text
    r = upload(c, "", name="")
    assert r.status_code == 400 and "请先选择名单文件" in r.text
    refused = audits(served, "roster_import_refused")
    assert [a.detail.split("（")[0] for a in refused] == [
        "名单.csv：2 处问题，没有导入",
        "名单.xls：1 处问题，没有导入",
        "名单.xlsx：1 处问题，没有导入",
    ]
    assert all(a.actor_id == ADMIN.contact_id and "127.0.0.1" in a.detail for a in refused)
    assert snapshot(served) == before and held_tokens(served) == []


def test_a_file_past_the_size_cap_is_refused(served, monkeypatch):
    c = served.sign_in()
    before = snapshot(served)
    monkeypatch.setattr(pages_roster.tables, "MAX_BYTES", 2000)  # the reader's cap, checked on the bytes read
    r = upload(c, NEW_ROSTER + "\n" * 2000)
    assert r.status_code == 413 and "文件太大" in r.text
    monkeypatch.undo()
    # The body's cap (Console.capped), checked before the body is read: the same file the reader accepts is refused,
    # and refused before anything is read or written (the reader's refusal writes an audit row, this one does not).
    monkeypatch.setattr(web_app, "MAX_BODY", len(NEW_ROSTER.encode()))
    r = upload(c, NEW_ROSTER + "\n" * 2000)
    assert r.status_code == 413 and "文件太大（超过 20 MB），没有读取" in r.text
    assert audits(served, "roster_import_refused") == []
    monkeypatch.undo()
    assert upload(c, NEW_ROSTER + "\n" * 2000).status_code == 200  # (the same file under the cap is read)
    held = held_tokens(served)
    assert len(held) == 1
    assert snapshot(served) == before


def test_a_viewer_sees_the_roster_but_cannot_upload_apply_or_edit(served):
    admin = served.sign_in()
    page = upload(admin, NEW_ROSTER).text
    viewer = served.sign_in(VIEWER_ID)
    listing = viewer.get("/roster").text
    assert "王芳" in listing and 'id="upload"' not in listing and "/roster/liaisons/" not in listing
    token = csrf_of(listing)
    before = snapshot(served)
    r = upload(viewer, NEW_ROSTER, csrf=token)
    assert r.status_code == 403 and "只能查看" in r.text
    r = viewer.post("/roster/apply", data={"csrf": token, "token": token_of(page)})
    assert r.status_code == 403
    wang = liaison_id(served, "王芳")
    r = viewer.post(f"/roster/liaisons/{wang}", data={"csrf": token, "name": "王芳", "phone": "110", "role": "主"})
    assert r.status_code == 403
    assert snapshot(served) == before and len(held_tokens(served)) == 1
    assert audits(served, "roster_import") == [] and audits(served, "roster_edit") == []
    assert viewer.get("/units").status_code == 200


def test_forms_without_their_csrf_token_change_nothing(served):
    c = served.sign_in()
    page = upload(c, NEW_ROSTER).text
    before = snapshot(served)
    wang = liaison_id(served, "王芳")
    for token in ("", "forged"):
        assert upload(c, NEW_ROSTER, csrf=token).status_code == 403
        assert c.post("/roster/apply", data={"csrf": token, "token": token_of(page)}).status_code == 403
        r = c.post(f"/roster/liaisons/{wang}", data={"csrf": token, "name": "王芳", "phone": "110", "role": "主"})
        assert r.status_code == 403 and "页面已过期" in r.text
    assert snapshot(served) == before and len(held_tokens(served)) == 1


def liaison_id(served, name: str) -> int:
    with session(served.engine) as s:
        return int(s.exec(select(Liaison.id).where(Liaison.name == name)).one() or 0)


def edit(c, liaison: int, **values: str):
    form = {"name": "", "contact_id": "", "wechat_name": "", "phone": "", "role": "主"} | values
    return c.post(f"/roster/liaisons/{liaison}", data={"csrf": csrf_of(c.get("/roster").text), **form})


def test_an_admin_edits_one_liaison_inline(served):
    c = served.sign_in()
    zhao = liaison_id(served, "赵磊")
    page = c.get("/roster").text
    assert f'action="/roster/liaisons/{zhao}"' in page
    r = edit(
        c, zhao, name="赵 磊", contact_id="wxid_zhaolei", wechat_name="赵磊-城关", phone="139 0000 0002", role="主"
    )
    assert r.status_code == 200 and "已保存：城关镇-赵磊" in r.text
    with session(served.engine) as s:
        row = s.get(Liaison, zhao)
        assert row is not None
        assert (row.name, row.contact_id, row.wechat_name, row.phone, row.role) == (
            "赵磊",
            "wxid_zhaolei",
            "赵磊-城关",
            "139 0000 0002",
            "主",
        )
    [entry] = audits(served, "roster_edit")
    assert (
        entry.actor_id == ADMIN.contact_id and "角色 备→主" in entry.detail and "微信ID 空→wxid_zhaolei" in entry.detail
    )
    assert "127.0.0.1" in entry.detail
    # The same values again: nothing to change, nothing audited.
    r = edit(c, zhao, name="赵磊", contact_id="wxid_zhaolei", wechat_name="赵磊-城关", phone="139 0000 0002")
    assert "没有改动" in r.text and len(audits(served, "roster_edit")) == 1


def test_an_edit_is_checked_like_an_import_and_a_bad_one_changes_nothing(served):
    c = served.sign_in()
    zhao = liaison_id(served, "赵磊")
    before = snapshot(served)
    r = edit(c, zhao, name="赵磊", phone="打电话给我", role="组长")
    assert r.status_code == 400
    assert "不是有效的电话号码" in r.text and "应为“主”或“备”" in r.text
    assert 'value="打电话给我"' in r.text  # the form keeps what was typed
    r = edit(c, zhao, name="王芳")  # a second 王芳 in 城关镇
    assert r.status_code == 400 and "已经有一位联络员叫 王芳" in r.text
    r = edit(c, zhao, name="赵磊", contact_id="wxid_wangfang")  # 王芳's 微信ID
    assert r.status_code == 400 and "已是联络员 王芳 的" in r.text
    r = edit(c, zhao, name="  ")
    assert r.status_code == 400 and "姓名不能为空" in r.text
    r = edit(c, zhao, name="赵磊", wechat_name="长" * 101)
    assert r.status_code == 400 and "太长" in r.text
    r = edit(c, 99999, name="赵磊")
    assert r.status_code == 400 and "没有这个联络员" in r.text
    assert snapshot(served) == before and audits(served, "roster_edit") == []


def test_the_roster_shows_who_the_bot_has_not_recognised_yet(served):
    with session(served.engine) as s:  # 王芳 seen in the liaison group; 李强 has an id but was not seen
        s.add(Membership(room_id=LIAISON_ROOM, contact_id="wxid_wangfang", name="王芳", seen_at=served.clock()))
        s.commit()
    c = served.sign_in(VIEWER_ID)
    everyone = c.get("/roster").text
    for name in ("王芳", "赵磊", "李强", "13800000001", "wxid_liqiang", "周敏"):
        assert name in everyone
    assert "还没认出的（6）" in everyone
    rows = re.findall(r'<tr id="l\d+" class="(\w+)">', everyone)
    assert rows.count("recognised") == 1 and rows.count("unrecognised") == 6
    only = c.get("/roster", params={"only": "unrecognised"}).text
    assert "王芳" not in only and "赵磊" in only and "李强" in only and "群里还没见到" in only


def make_push(s, clock, *, hours_ago: int = 0, deadline_hours: int = 8) -> Push:
    alert = Alert(case_type="刷单返利", title="刷单返利", text="【反诈预警】", created_at=clock())
    s.add(alert)
    s.flush()
    at = clock() - timedelta(hours=hours_ago)
    return create_push(s, alert, now=at, by=ADMIN.contact_id, deadline=at + timedelta(hours=deadline_hours))


def test_units_show_their_record_level_and_liaisons(served):
    with session(served.engine) as s:
        units = {u.name: u for u in s.exec(select(Unit))}
        town, east = units["城关镇"], units["东城街道"]
        closed = []
        for hours in (60, 40):  # two closed pushes 城关镇 missed: 提醒 on the ladder
            push = make_push(s, served.clock, hours_ago=hours)
            push.state = PushState.CLOSED.value
            s.add(push)
            s.add(Miss(push_id=push.id or 0, unit_id=town.id or 0, deadline=push.deadline))
            s.add(Confirmation(push_id=push.id, unit_id=east.id, at=push.created_at, method="text"))
            closed.append(push)
        s.add(
            Confirmation(
                push_id=closed[1].id, unit_id=units["西湖镇"].id, at=closed[1].deadline, method="note", late=True
            )
        )
        open_push = make_push(s, served.clock)
        s.add(Confirmation(push_id=open_push.id, unit_id=east.id, at=served.clock(), method="image", verdict="可信"))
        s.add(
            Correction(
                push_id=closed[0].id or 0,
                unit_id=town.id or 0,
                kind="免转",
                reason="停电",
                by_name="陈静",
                at=served.clock(),
            )
        )
        day = served.clock().date()
        s.add(Leave(unit_id=town.id or 0, start=day, end=day + timedelta(days=2), created_at=served.clock()))
        s.commit()
        town_id, open_id = int(town.id or 0), int(open_push.id or 0)
    c = served.sign_in(VIEWER_ID)
    page = c.get("/units").text
    row = re.search(rf'<tr id="u{town_id}">(.*?)</tr>', page, re.S)
    assert row
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    # 收到 按时 迟报 未转 待转 连续未转 等级
    assert cells[1:8] == ["镇街", "3", "0", "0", "2", "1", "2"]
    assert cells[8] == "提醒" and "王芳（主）" in cells[9] and "赵磊（备，未识别）" in cells[9]
    detail = c.get(f"/units/{town_id}").text
    assert "等级：提醒" in detail and "连续未转 2 次" in detail
    assert detail.count('class="state-未转发"') == 2 and detail.count('class="state-待转"') == 1
    assert f"#{open_id}" in detail
    assert "免转：停电（陈静）" in detail and str(day) in detail
    east_page = c.get(f"/units/{int(east.id or 0)}").text
    assert east_page.count('class="state-已转发"') == 3 and "截图" in east_page and "可信" in east_page
    assert c.get("/units/99999").status_code == 404 and c.get("/units/abc").status_code == 404


def test_html_in_names_is_shown_as_text(served):
    evil_unit, evil_person = "<script>alert(1)</script>城关镇", "<b onmouseover=alert(2)>王芳</b>"
    with session(served.engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == "城关镇")).one()
        unit.name = evil_unit
        liaison = s.exec(select(Liaison).where(Liaison.name == "王芳")).one()
        liaison.name = evil_person
        liaison.phone = "<i>1</i>"
        s.commit()
        unit_id = int(unit.id or 0)
    c = served.sign_in()
    pages = c.get("/roster").text + c.get("/units").text + c.get(f"/units/{unit_id}").text
    preview = upload(c, HEADER + '"<img src=x onerror=alert(3)>局",其他,"<svg onload=alert(4)>",,昵称,,主\n').text
    for raw in ("<script>", "<b onmouseover", "<i>1", "<img src=x", "<svg"):
        assert raw not in pages + preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;城关镇" in pages and "&lt;b onmouseover=alert(2)&gt;王芳" in pages
    assert "&lt;img src=x onerror=alert(3)&gt;局" in preview


def test_the_preview_shows_the_readers_warnings_and_an_unchanged_roster_says_so(served):
    c = served.sign_in()
    same = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    page = upload(c, same).text
    assert "名单没有变化（7 人）" in page and "应用后会停用" not in page
    # 赵磊 and 周敏 with neither 微信ID nor 微信昵称, and an unknown column: warned as the import warns.
    odd = same.replace(",,赵磊,", ",,,").replace(",,周敏（西湖镇）,", ",,,").replace("角色\n", "角色,爱好\n", 1)
    page = upload(c, odd).text
    assert "注意" in page
    assert "2 位联络员既没有微信ID也没有微信昵称" in page and "城关镇-赵磊（第 3 行）" in page
    assert "“爱好”列不认识" in page
    assert "更新（2）" in page and "城关镇-赵磊（微信昵称 赵磊→空）" in page

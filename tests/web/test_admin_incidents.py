"""The web console's 警情 page over a real HTTP server (issue 14): an upload imports the figures exactly as the chat
does (the importer's own report, the 通报 queued for the office group, audited), a broken file changes nothing;
the latest period's ranking and escalation ladder as tables; viewers only look, forms need their CSRF token, names
are shown as text."""

from __future__ import annotations

import re

from sqlmodel import col, select

from bot.storage.db import session
from bot.storage.models import AuditLog, Group, GroupKind, IncidentStat, Outbox
from tests.conftest import ADMIN, OFFICE_ROOM
from tests.web.conftest import VIEWER_ID, csrf_of

CSV = """镇街,周期,案件类型,警情数
城关镇,2026-W47,刷单返利,5
城关镇,2026-W47,冒充公检法,2
东城街道,2026-W47,刷单返利,3
西湖镇,2026-W47,虚假投资理财,1
"""
# The week before: 城关镇 and 西湖镇 in the top two, so 城关镇 is in it two weeks running (约谈).
EARLIER = """镇街,周期,案件类型,警情数
城关镇,2026-W46,刷单返利,4
西湖镇,2026-W46,刷单返利,3
东城街道,2026-W46,刷单返利,1
"""
BROKEN = CSV.replace("东城街道,2026-W47,刷单返利,3", "东城街道,2026-W47,刷单返利,三")


def with_office(served) -> None:
    with session(served.engine) as s:
        s.add(Group(room_id=OFFICE_ROOM, name="反诈办工作群", kind=GroupKind.OFFICE.value))
        s.commit()


def upload(c, text: str | bytes, name: str = "警情.csv", csrf: str | None = None):
    token = csrf if csrf is not None else csrf_of(c.get("/incidents").text)
    data = text.encode() if isinstance(text, str) else text
    return c.post("/incidents/upload", data={"csrf": token}, files={"file": (name, data, "text/csv")})


def stats(served) -> list[tuple]:
    with session(served.engine) as s:
        rows = s.exec(select(IncidentStat).order_by(col(IncidentStat.id)))
        return [(r.town, r.period_start, r.case_type, r.count) for r in rows]


def office_messages(served) -> list[str]:
    with session(served.engine) as s:
        return list(s.exec(select(Outbox.text).where(Outbox.chat_id == OFFICE_ROOM).order_by(col(Outbox.id))))


def audits(served) -> list[AuditLog]:
    with session(served.engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == "stats_import").order_by(col(AuditLog.id))))


def table(html: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found, html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def test_an_admin_uploads_the_figures_and_sees_the_ranking_and_the_ladder(served):
    with_office(served)
    c = served.sign_in()
    assert upload(c, EARLIER, "第46周.csv").status_code == 200
    r = upload(c, CSV, "第47周警情.csv")
    assert r.status_code == 200, r.text
    html = r.text
    # The importer's own report, as the chat answers it.
    assert "警情数据导入成功（4 行）：新增 4 条；周期：2026-W47" in html
    assert "警情通报已排入发送队列" in html
    assert "最近一期：2026年第47周" in html and "全区警情 11 起（上期 8 起）" in html
    ranking = table(html, "ranking")
    assert re.search(r"1 城关镇 7 4 \+3 — 无去年数据 刷单返利 5、冒充公检法 2 2 约谈", ranking), ranking
    assert re.search(r"2 东城街道 3 1 ", ranking), ranking
    assert re.search(r"3 西湖镇 1 3 ", ranking), ranking
    ladder = table(html, "ladder")
    assert re.search(r"约谈 约谈分管领导（连续两期前两名） 城关镇", ladder), ladder
    assert re.search(r"提醒谈话 提醒谈话（本期前两名） 东城街道", ladder), ladder
    assert re.search(r"书面说明 .*? 无", ladder), ladder
    assert "推送 刷单返利" in table(html, "types")
    assert sum(row[3] for row in stats(served)) == 11 + 8
    # The office group gets the 通报 (from the outbox, sent by the running bot), as after the chat import.
    texts = [text for text in office_messages(served) if text]  # (the .xlsx and the chart follow, without text)
    assert len(texts) == 2 and texts[-1].startswith("📈 电诈警情通报 2026年第47周")
    assert "约谈分管领导（连续两期前两名）：城关镇" in texts[-1]
    rows = audits(served)
    assert [(a.actor_id, a.allowed) for a in rows] == [(ADMIN.contact_id, True)] * 2
    assert rows[-1].detail == "第47周警情.csv: 4 rows（网页，来自 127.0.0.1）"
    # The page shows the same afterwards, to anyone signed in.
    again = served.sign_in(VIEWER_ID).get("/incidents")
    assert again.status_code == 200 and "最近一期：2026年第47周" in again.text
    assert 'action="/incidents/upload"' not in again.text  # a viewer has no upload form


def test_a_broken_file_is_refused_with_the_importers_words_and_changes_nothing(served):
    with_office(served)
    c = served.sign_in()
    r = upload(c, BROKEN)
    assert r.status_code == 400
    assert "警情数据导入失败，什么都没有改：第 4 行“警情数”为“三”，应为 0 或正整数。" in r.text
    assert stats(served) == [] and office_messages(served) == []
    assert [(a.allowed, a.detail) for a in audits(served)] == [
        (False, "警情.csv：读取失败，没有导入（网页，来自 127.0.0.1）")
    ]
    r = upload(c, b"PK\x03\x04 not really a workbook", "警情.xlsx")
    assert r.status_code == 400 and "无法打开这个 Excel 文件" in r.text
    r = upload(c, CSV, "警情.xls")
    assert r.status_code == 400 and "不支持旧版 .xls 文件" in r.text
    r = upload(c, b"", name="")  # the form sent with no file chosen
    assert r.status_code == 400 and "请先选择警情表" in r.text
    assert stats(served) == [] and office_messages(served) == []
    assert "还没有警情数据" in c.get("/incidents").text


def test_a_file_over_the_cap_is_refused_before_it_is_read(served, monkeypatch):
    from bot.adapters import tables
    from bot.web import app as web_app

    c = served.sign_in()
    csrf = csrf_of(c.get("/incidents").text)
    too_big = f"文件太大（超过 {tables.MAX_BYTES // (1024 * 1024)} MB）"
    # The body's cap (Console.capped, in bot/web/app.py) below a file the reader would import: refused before
    # anything reads it, so nothing is imported and no audit row (the reader's refusal writes one) is written.
    monkeypatch.setattr(web_app, "MAX_BODY", len(CSV.encode()))
    r = c.post("/incidents/upload", data={"csrf": csrf}, files={"file": ("警情.csv", CSV.encode(), "text/csv")})
    assert r.status_code == 413 and too_big in r.text
    # A body of unknown length (chunked, no Content-Length) is refused the same way.
    r = c.post(
        "/incidents/upload",
        content=iter([b"--x\r\n", b"x" * 10, b"\r\n--x--\r\n"]),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413 and too_big in r.text
    assert stats(served) == [] and audits(served) == []
    monkeypatch.undo()
    assert upload(c, CSV).status_code == 200 and len(stats(served)) == 4  # the same file under the cap is imported


def test_without_an_office_group_the_figures_are_imported_but_no_report_is_sent(served):
    r = upload(served.sign_in(), CSV)
    assert r.status_code == 200 and "还没有反诈办工作群，通报没有发送" in r.text
    assert len(stats(served)) == 4
    with session(served.engine) as s:
        assert s.exec(select(Outbox).where(Outbox.text.startswith("📈"))).first() is None  # type: ignore[union-attr]


def test_a_viewer_or_a_form_without_its_token_changes_nothing(served):
    with_office(served)
    viewer = served.sign_in(VIEWER_ID)
    page = viewer.get("/incidents")
    assert page.status_code == 200
    r = upload(viewer, CSV, csrf=csrf_of(page.text))
    assert r.status_code == 403 and "只能查看" in r.text
    admin = served.sign_in()
    r = admin.post("/incidents/upload", files={"file": ("警情.csv", CSV.encode(), "text/csv")})
    assert r.status_code == 403
    r = upload(admin, CSV, csrf="not-the-token")
    assert r.status_code == 403
    assert stats(served) == [] and office_messages(served) == [] and audits(served) == []
    # Without a session: the page sends to sign-in, the upload is refused.
    anonymous = served.client()
    assert anonymous.get("/incidents").status_code == 303
    assert upload(anonymous, CSV, csrf="x").status_code == 401
    assert stats(served) == []


def test_html_in_town_names_is_shown_as_text(served):
    evil = "<script>alert(1)</script>镇"
    r = upload(served.sign_in(), f"镇街,周期,案件类型,警情数\n{evil},2026-W47,<b>刷单</b>,3\n")
    assert r.status_code == 200, r.text
    assert "<script>alert(1)</script>" not in r.text and "<b>刷单</b>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;镇" in table(r.text, "ranking")
    assert "&lt;b&gt;刷单&lt;/b&gt;" in r.text

"""Issue 16 in the web console: on a district's console a city admin pushes to every district (全市) and sees each
district's progress; the district's admin only looks at the city page; a district alone has no city page."""

from __future__ import annotations

import io
import threading

import pytest
import uvicorn
from openpyxl import load_workbook
from sqlmodel import select

from bot.config import Settings
from bot.content import load_library, load_texts
from bot.operations.pushing import library_alert, push_alert
from bot.storage.db import make_engine, session
from bot.storage.models import AuditLog, ScheduledPush
from bot.web.app import create_app
from tests.conftest import ADMIN
from tests.gateway_harness import wait_until
from tests.operations.test_city import ROSTER_A, ROSTER_B, _add
from tests.web.conftest import WAIT, Served, _free_port, csrf_of

CITY_ID = "wxid_city_lin"
BOTH_ID = "wxid_both"  # the district's admin and a city admin


@pytest.fixture
def city_console(city_db, tmp_path, clock):
    a = _add(city_db, "海湖区", ROSTER_A, login=True)
    b = _add(city_db, "城东区", ROSTER_B)
    settings = Settings(
        database_url=a,
        district="海湖区",
        city_database_url=city_db,
        evidence_dir=str(tmp_path / "evidence"),
        admin_ids=[ADMIN.contact_id, BOTH_ID],
        city_admin_ids=[CITY_ID, BOTH_ID],
        office_group="海湖区反诈办",
    )
    engine = make_engine(a)
    app = create_app(settings, engine, clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="web-console", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), bool, 30, "the web console to start")
    assert server.started
    yield Served(f"http://127.0.0.1:{port}", engine, settings, clock), b
    server.should_exit = True
    thread.join(WAIT)
    engine.dispose()


def _scheduled(url: str) -> list[ScheduledPush]:
    engine = make_engine(url)
    try:
        with session(engine) as s:
            return list(s.exec(select(ScheduledPush)))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_city_admin_pushes_to_every_district_from_the_console(city_console):
    served, other = city_console
    c = served.sign_in(CITY_ID)
    page = c.get("/city")
    assert page.status_code == 200 and 'id="city-push"' in page.text and "全市还没有推送过" in page.text
    done = c.post("/city/push", data={"csrf": csrf_of(page.text), "case": "刷单返利"})
    assert done.status_code == 303
    page = c.get("/city")
    assert "全市第1号" in page.text and "已排入全市推送" in page.text
    assert page.text.count("区机器人还没发出") == 2 and "0/0" in page.text
    assert [r.city_no for r in _scheduled(other)] == [1]
    with session(served.engine) as s:
        assert [r.city_no for r in s.exec(select(ScheduledPush))] == [1]
        assert s.exec(select(AuditLog).where(AuditLog.action == "push_scheduled")).first() is not None
    # The city admin only looks at the district's own pages: a district push is refused.
    new = c.get("/pushes/new")
    refused = c.post("/pushes/new", data={"csrf": csrf_of(new.text), "case": "刷单返利"})
    assert refused.status_code == 403
    assert "（市反诈中心）" in page.text  # the header says what they may do
    # Anything but a type of the list: a plain refusal, nothing queued.
    for case in ("没有这种", "刷单 给 学校", "刷单", ""):
        bad = c.post("/city/push", data={"csrf": csrf_of(page.text), "case": case})
        assert bad.status_code == 400 and "可用类型" in bad.text
    assert len(_scheduled(other)) == 1
    # Someone who is the district's admin and a city admin pushes to the city too.
    both = served.sign_in(BOTH_ID)
    page = both.get("/city")
    assert 'id="city-push"' in page.text and "（管理员、市反诈中心）" in page.text
    done = both.post("/city/push", data={"csrf": csrf_of(page.text), "case": "虚假征信"})
    assert done.status_code == 303 and [r.city_no for r in _scheduled(other)] == [1, 2]
    # The same type again the same day: not pushed unless the box is ticked.
    served.clock.advance(minutes=10)
    again = both.post("/city/push", data={"csrf": csrf_of(page.text), "case": "虚假征信"})
    assert again.status_code == 303 and "已做过全市第2号" in both.get("/city").text
    assert len(_scheduled(other)) == 2
    both.post("/city/push", data={"csrf": csrf_of(page.text), "case": "虚假征信", "again": "1"})
    assert [r.city_no for r in _scheduled(other)] == [1, 2, 3]


@pytest.mark.postgres
def test_the_districts_admin_only_reads_the_city_page(city_console):
    served, other = city_console
    c = served.sign_in(ADMIN.contact_id)
    page = c.get("/city")
    assert page.status_code == 200 and 'id="read-only"' in page.text and 'id="city-push"' not in page.text
    refused = c.post("/city/push", data={"csrf": csrf_of(page.text), "case": "刷单返利"})
    assert refused.status_code == 403 and "city_admin_ids" in refused.text
    assert _scheduled(other) == []
    # The city's 通报 is for reading: a month with a push in one district gives the workbook, a sheet per district.
    assert c.get("/city/report.xlsx", params={"month": "2026-11"}).status_code == 404  # nothing pushed yet
    with session(served.engine) as s:
        out = push_alert(
            s,
            library_alert(load_library().find("刷单"), now=served.clock()),
            now=served.clock(),
            actor_id=ADMIN.contact_id,
            actor_name="管理员",
            settings=served.settings,
            texts=load_texts(),
        )
        assert out.push is not None, out.message
        s.commit()
    sheet = c.get("/city/report.xlsx", params={"month": "2026-11"})
    assert sheet.status_code == 200 and "attachment" in sheet.headers["content-disposition"]
    names = load_workbook(io.BytesIO(sheet.content), read_only=True).sheetnames
    assert names[:2] == ["全市", "未转发最多"] and {"海湖区", "城东区"} <= set(names)
    assert c.get("/city/report.xlsx", params={"month": "明年"}).status_code == 400


def test_a_district_alone_has_no_city_page(served):
    c = served.sign_in()
    assert c.get("/city").status_code == 404
    assert 'href="/city"' not in c.get("/").text

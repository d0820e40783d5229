"""通报 in the web console (issue 14): the week's and month's relay report on the page, its chart and its .xlsx,
the same figures as the chat's 报表; a bad period is refused; a real browser downloads the workbook."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from sqlmodel import col, select

from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from tests.conftest import ADMIN
from tests.gateway_harness import wait_until
from tests.web.browser import screenshot, sign_in, start_browser, wait_for_text
from tests.web.conftest import VIEWER_ID
from tests.web.test_access import make_push


def _week_with_pushes(served) -> tuple[int, list[Unit]]:
    first = make_push(served, title="刷单返利新花样")
    second = make_push(served, title="<b>冒充客服</b>")
    with session(served.engine) as s:
        units = list(s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712
        for unit in units[:4]:
            s.add(
                Confirmation(push_id=first, unit_id=unit.id, at=served.clock() + timedelta(minutes=20), method="text")
            )
        s.add(
            Confirmation(push_id=second, unit_id=units[0].id, at=served.clock() + timedelta(minutes=5), method="text")
        )
        s.commit()
    return first, units


def test_the_week_report_shows_the_bots_figures_ranks_and_boards(served):
    first, units = _week_with_pushes(served)
    c = served.sign_in(VIEWER_ID)  # leaders look at reports: a viewer may
    page = c.get("/reports", params={"kind": "week", "day": "2026-11-26"}).text
    assert "反诈预警转发周通报（11月23日—11月29日）" in page
    assert "推送 2 条，应转 12 次：按时 5，迟报 0，未转 7。" in page
    assert "&lt;b&gt;冒充客服&lt;/b&gt;" in page and "<b>冒充客服" not in page
    rows = page.split('id="units"')[1].split("</table>")[0]
    assert rows.index(units[0].name) < rows.index(units[5].name)  # the one that relayed both ranks first
    assert "红榜" in page and "黑榜" in page
    assert 'href="/reports/report.xlsx?kind=week&amp;day=2026-11-23"' in page


def test_the_workbook_and_the_chart_are_the_ones_the_office_group_gets(served):
    _week_with_pushes(served)
    c = served.sign_in()
    r = c.get("/reports/report.xlsx", params={"kind": "week", "day": "2026-11-23"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert any("城关镇" in str(cell.value) for ws in wb.worksheets for row in ws.iter_rows() for cell in row)
    png = c.get("/reports/chart.png", params={"kind": "week", "day": "2026-11-23"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_a_period_without_pushes_says_so_and_offers_no_files(served):
    c = served.sign_in()
    page = c.get("/reports", params={"kind": "month", "day": "2026-10-15"}).text
    assert "反诈预警转发月通报（2026年10月）" in page and "report.xlsx" not in page
    assert c.get("/reports/report.xlsx", params={"kind": "month", "day": "2026-10-15"}).status_code == 404


@pytest.mark.parametrize(
    "params", [{"kind": "year"}, {"kind": "week", "day": "2026-13-01"}, {"kind": "week", "day": "../../etc"}]
)
def test_a_period_the_page_would_not_make_is_refused(served, params):
    r = served.sign_in().get("/reports", params=params)
    assert r.status_code == 400 and "看不懂要哪一期通报" in r.text


def test_reports_need_a_session(served):
    c = served.client()
    for path in ("/reports", "/reports/report.xlsx", "/reports/chart.png"):
        r = c.get(path, params={"kind": "week"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.slow
def test_download_the_month_report_in_a_browser(served, tmp_path):
    _week_with_pushes(served)
    downloads = tmp_path / "downloads"
    driver = start_browser(tmp_path, downloads)
    try:
        sign_in(driver, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
        driver.find_element(By.LINK_TEXT, "通报").click()
        driver.find_element(By.LINK_TEXT, "月通报").click()
        wait_for_text(driver, "反诈预警转发月通报（2026年11月）")
        wait_until(
            lambda: driver.execute_script(
                "const i = document.getElementById('chart'); return i.complete && i.naturalWidth"
            ),
            bool,
            60,
            "the chart to show",
        )
        driver.find_element(By.ID, "download").click()
        done = wait_until(lambda: [p for p in downloads.glob("*.xlsx")], bool, 60, "the .xlsx to be downloaded")
        wb = load_workbook(Path(done[0]))
        assert wb.worksheets
        screenshot(driver, tmp_path, "month-report")
    finally:
        driver.quit()


def test_a_shown_report_follows_what_the_bot_records_meanwhile(served):
    first, units = _week_with_pushes(served)
    c = served.sign_in()
    params = {"kind": "week", "day": "2026-11-23"}
    assert "按时 5，迟报 0，未转 7" in c.get("/reports", params=params).text
    with session(served.engine) as s:  # the bot, another process, records a late 已转发
        s.add(
            Confirmation(
                push_id=first, unit_id=units[5].id, at=served.clock() + timedelta(hours=9), method="text", late=True
            )
        )
        s.commit()
    assert "按时 5，迟报 1，未转 6" in c.get("/reports", params=params).text


def test_the_report_page_shows_each_units_reach(served):
    """覆盖人数 (issue 15 item 6): the people in a unit's own groups where an alert of the period was seen."""
    from bot.storage.models import ReachSighting

    first, units = _week_with_pushes(served)
    with session(served.engine) as s:
        for room, count in (("a@chatroom", 120), ("b@chatroom", 35)):
            s.add(
                ReachSighting(push_id=first, unit_id=units[0].id, room_id=room, member_count=count, at=served.clock())
            )
        s.commit()
    page = served.sign_in(VIEWER_ID).get("/reports", params={"kind": "week", "day": "2026-11-26"}).text
    table = page.split('id="units"')[1].split("</table>")[0]
    assert "<th>覆盖人数</th>" in table
    row = next(r for r in table.split("<tr>") if units[0].name in r)
    assert "<td>155</td>" in row
    assert "单位群覆盖人数：155 人（1 个单位）" in page

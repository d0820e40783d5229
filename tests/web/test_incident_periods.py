"""The 警情 page's period picker over a real HTTP server and in a real browser (issue 14): every period that has
figures, newest first, the latest by default; another period shows its own ranking and ladder; a period that is
unreadable or has no figures is refused in Chinese, never a 500."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.web.browser import screenshot, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.conftest import VIEWER_ID
from tests.web.test_admin_incidents import CSV, EARLIER, stats, table, upload

MONTH = """镇街,周期,案件类型,警情数
西湖镇,2026-10,刷单返利,9
东城街道,2026-10,刷单返利,2
"""


def options(html: str) -> list[tuple[str, str, bool]]:
    found = re.search(r'<select name="period" id="period">(.*?)</select>', html, re.S)
    assert found, html
    return [
        (value, label, bool(selected))
        for value, selected, label in re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', found[1])
    ]


def imported(served):
    c = served.sign_in()
    for text, name in ((MONTH, "10月.csv"), (EARLIER, "第46周.csv"), (CSV, "第47周.csv")):
        assert upload(c, text, name).status_code == 200
    assert len(stats(served)) == 2 + 3 + 4
    return c


def test_the_picker_lists_the_periods_newest_first_and_shows_the_one_picked(served):
    c = imported(served)
    page = c.get("/incidents").text
    assert options(page) == [
        ("2026-W47", "2026年第47周（11月16日—11月22日）", True),
        ("2026-W46", "2026年第46周（11月9日—11月15日）", False),
        ("2026-10", "2026年10月", False),
    ]
    assert "最近一期：2026年第47周" in page
    assert re.search(r"1 城关镇 7 4 ", table(page, "ranking"))
    # The week before: its own ranking, and its ladder (no stored week before it: two towns in the top two once).
    r = c.get("/incidents", params={"period": "2026-W46"})
    assert r.status_code == 200
    assert "2026年第46周（11月9日—11月15日） · 排名" in r.text and "最近一期" not in r.text
    assert [o[0] for o in options(r.text) if o[2]] == ["2026-W46"]
    ranking = table(r.text, "ranking")
    assert re.search(
        r"1 城关镇 4 — 无上期数据 — 无去年数据 刷单返利 4 1 提醒谈话 2 西湖镇 3 — 无上期数据 — 无去年数据 刷单返利 3 1 提醒谈话 "
        r"3 东城街道 1 —",
        ranking,
    )
    assert re.search(r"提醒谈话 提醒谈话（本期前两名） 城关镇、西湖镇", table(r.text, "ladder"))
    assert "全区警情 8 起" in r.text
    # A month: the towns of that month only.
    r = c.get("/incidents", params={"period": "2026-10"})
    assert r.status_code == 200 and "2026年10月 · 排名" in r.text
    assert re.search(r"1 西湖镇 9 .* 2 东城街道 2 ", table(r.text, "ranking")) and "城关镇" not in table(
        r.text, "ranking"
    )


def test_a_bad_or_unknown_period_is_refused_in_chinese(served):
    c = imported(served)
    for bad in ("abc", "2026-W99", "2026-13", "<script>alert(1)</script>", "9" * 5000, "2026-W47'; drop table x"):
        r = c.get("/incidents", params={"period": bad})
        assert r.status_code == 400, (bad[:20], r.status_code)
        assert "看不懂这个周期" in r.text and 'id="refused"' in r.text
        assert "<script>alert" not in r.text
    r = c.get("/incidents", params={"period": "2026-W40"})
    assert r.status_code == 404 and "没有2026年第40周（9月28日—10月4日）的警情数据" in r.text
    r = c.get("/incidents", params={"period": "2026年第46周"})  # readable, but not as the picker writes it
    assert r.status_code == 404 and "没有2026年第46周" in r.text
    assert c.get("/incidents", params={"period": ""}).status_code == 200  # empty: the latest


def test_without_figures_there_is_no_picker(served):
    c = served.sign_in()
    page = c.get("/incidents").text
    assert "还没有警情数据" in page and 'id="period"' not in page
    r = c.get("/incidents", params={"period": "2026-W47"})
    assert r.status_code == 404 and "没有2026年第47周" in r.text


@pytest.mark.slow
def test_picking_a_period_in_the_browser(served, browser, tmp_path):
    imported(served)
    browser_sign_in(browser, served.base, VIEWER_ID, lambda: served.last_code(VIEWER_ID))  # (a leader looks)
    browser.find_element(By.LINK_TEXT, "警情").click()
    wait_for_text(browser, "最近一期：2026年第47周")
    picker = Select(browser.find_element(By.ID, "period"))
    assert [o.text for o in picker.options] == [
        "2026年第47周（11月16日—11月22日）",
        "2026年第46周（11月9日—11月15日）",
        "2026年10月",
    ]
    picker.select_by_visible_text("2026年第46周（11月9日—11月15日）")
    browser.find_element(By.ID, "show-period").click()
    wait_for_text(browser, "2026年第46周（11月9日—11月15日） · 排名")
    assert browser.current_url.endswith("/incidents?period=2026-W46")
    rows = browser.find_element(By.ID, "ranking").find_elements(By.TAG_NAME, "tr")
    assert [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")][:3] == ["1", "城关镇", "4"]
    assert "城关镇、西湖镇" in browser.find_element(By.ID, "ladder").text
    assert Select(browser.find_element(By.ID, "period")).first_selected_option.text.startswith("2026年第46周")
    screenshot(browser, tmp_path, "incidents-period")

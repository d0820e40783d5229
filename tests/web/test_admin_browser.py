"""The 警情 page in a real browser (Debian's chromium through chromium-driver): upload the incident figures, see the
importer's report, the ranking and the ladder; then find the import in the 审计日志. Saves a screenshot."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import ADMIN
from tests.web.browser import screenshot, start_browser, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.test_admin_incidents import CSV, EARLIER, stats, with_office

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(tmp_path)
    yield driver
    driver.quit()


def test_upload_incident_figures_and_see_the_ranking(served, browser, tmp_path):
    with_office(served)
    earlier, figures = tmp_path / "第46周.csv", tmp_path / "第47周警情.csv"
    earlier.write_text(EARLIER, encoding="utf-8")
    figures.write_text(CSV, encoding="utf-8")
    browser_sign_in(browser, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
    browser.find_element(By.LINK_TEXT, "警情").click()
    wait_for_text(browser, "还没有警情数据")
    for path in (earlier, figures):
        browser.find_element(By.ID, "stats-file").send_keys(str(path))
        browser.find_element(By.ID, "upload").click()
        wait_for_text(browser, f"周期：2026-W{path.name[1:3]}")
    assert "警情数据导入成功（4 行）" in browser.find_element(By.ID, "notice").text
    rows = browser.find_element(By.ID, "ranking").find_elements(By.TAG_NAME, "tr")
    first = [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")]
    assert first[:3] == ["1", "城关镇", "7"] and first[-1] == "约谈"
    assert "城关镇" in browser.find_element(By.ID, "ladder").text
    assert sum(row[3] for row in stats(served)) == 19
    screenshot(browser, tmp_path, "incidents-ranking")
    browser.find_element(By.LINK_TEXT, "审计日志").click()
    wait_for_text(browser, "最新的在前")
    Select(browser.find_element(By.ID, "action")).select_by_value("stats_import")
    browser.find_element(By.CSS_SELECTOR, "#filter button").click()
    wait_for_text(browser, "共 2 条")
    assert "第47周警情.csv: 4 rows" in browser.find_element(By.ID, "entries").text


def test_a_viewer_reads_the_audit_log_and_the_settings_on_a_phone(served, browser, tmp_path):
    from tests.web.conftest import VIEWER_ID

    browser.set_window_size(390, 844)
    browser_sign_in(browser, served.base, VIEWER_ID, lambda: served.last_code(VIEWER_ID))
    browser.get(f"{served.base}/audit")
    wait_for_text(browser, "最新的在前")
    assert "网页登录" in browser.find_element(By.ID, "entries").text  # the viewer's own sign-in
    browser.find_element(By.LINK_TEXT, "设置").click()
    wait_for_text(browser, "设置（只读）")
    table = browser.find_element(By.ID, "settings").text
    assert "admin_ids" in table and "wxid_leader" in table
    assert not browser.find_elements(By.CSS_SELECTOR, "main form")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width}px wide on a 390px phone"
    screenshot(browser, tmp_path, "settings-phone")

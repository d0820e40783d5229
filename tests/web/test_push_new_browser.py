"""新推送 in a real browser (Debian's chromium through chromium-driver): an admin picks a library alert, sees the
message the liaison group will get, sends it and lands on the new push's page (issue 14). Ends with a screenshot."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bot.content import load_library
from tests.conftest import ADMIN
from tests.web.browser import screenshot, start_browser, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.test_push_new import pushes, room_rows

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(tmp_path)
    yield driver
    driver.quit()


def test_an_admin_pushes_a_library_alert_from_the_browser(served, browser, tmp_path):
    item = load_library().alerts[-1]
    browser_sign_in(browser, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
    browser.find_element(By.LINK_TEXT, "新推送").click()
    wait_for_text(browser, "从预警库选择")
    Select(browser.find_element(By.ID, "case")).select_by_value(item.case_type)
    browser.find_element(By.ID, "preview-case").click()
    wait_for_text(browser, "联络员群将看到")
    message = browser.find_element(By.ID, "message").text
    assert f"【反诈预警 #1】{item.title}" in message and "已转发 #1" in message
    screenshot(browser, tmp_path, "push_new_preview")
    browser.find_element(By.ID, "send").click()
    wait_for_text(browser, f"#1 {item.title}")
    [push] = pushes(served)
    assert browser.current_url.endswith(f"/pushes/{push.id}")
    assert len(room_rows(served)) == 1
    screenshot(browser, tmp_path, "push_new")

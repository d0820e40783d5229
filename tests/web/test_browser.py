"""The web console in a real browser: Debian's chromium through chromium-driver, driven by selenium (issue 14).

Each test saves a screenshot of the page it ends on (in its tmp_path, and in RELAYBOT_TEST_SCREENSHOTS if set).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlmodel import col, select

from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from tests.conftest import ADMIN
from tests.web.browser import screenshot, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.test_access import make_push

pytestmark = pytest.mark.slow


def sign_in(driver, served, contact_id: str = ADMIN.contact_id) -> None:
    browser_sign_in(driver, served.base, contact_id, lambda: served.last_code(contact_id))


def test_sign_in_with_a_code_and_watch_a_confirmation_appear_on_the_push_page(served, browser, tmp_path):
    push_id = make_push(served)
    sign_in(browser, served)
    assert (
        "陈静" in browser.find_element(By.ID, "who").text or ADMIN.contact_id in browser.find_element(By.ID, "who").text
    )
    browser.find_element(By.LINK_TEXT, f"#{push_id} 刷单返利").click()
    wait_for_text(browser, "已转发 0/")
    with session(served.engine) as s:  # the running bot records a liaison's 已转发
        unit = s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))).first()  # noqa: E712
        assert unit is not None
        s.add(
            Confirmation(
                push_id=push_id,
                unit_id=unit.id,
                at=served.clock() + timedelta(minutes=3),
                method="text",
                evidence_text="已转发到镇里各群",
            )
        )
        s.commit()
    wait_for_text(browser, "已转发到镇里各群")  # the page refreshed itself, no click
    assert "已转发 1/" in browser.find_element(By.ID, "progress").text
    screenshot(browser, tmp_path, "push-page")


def test_an_admin_reminds_from_the_push_page(served, browser, tmp_path):
    push_id = make_push(served)
    sign_in(browser, served)
    browser.get(f"{served.base}/pushes/{push_id}")
    browser.find_element(By.ID, "remind").click()
    wait_for_text(browser, f"已在 1 个联络员群提醒 #{push_id}")
    screenshot(browser, tmp_path, "remind")


def test_a_viewer_sees_no_buttons_on_a_phone_sized_screen(served, browser, tmp_path):
    from tests.web.conftest import VIEWER_ID

    push_id = make_push(served)
    browser.set_window_size(390, 844)
    sign_in(browser, served, VIEWER_ID)
    browser.get(f"{served.base}/pushes/{push_id}")
    wait_for_text(browser, "只能查看")
    assert not browser.find_elements(By.ID, "remind")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width}px wide on a 390px phone"
    screenshot(browser, tmp_path, "viewer-phone")

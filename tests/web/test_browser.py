"""The web console in a real browser: Debian's chromium through chromium-driver, driven by selenium (issue 14).

Each test saves a screenshot of the page it ends on (in its tmp_path, and in RELAYBOT_TEST_SCREENSHOTS if set).
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import col, select

from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from tests.conftest import ADMIN
from tests.gateway_harness import WAIT_SCALE
from tests.web.test_access import make_push

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60 * WAIT_SCALE


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail("chromium and chromium-driver are needed: ./run.sh test installs them (apt-get)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The page the test ends on, as a PNG (also copied to RELAYBOT_TEST_SCREENSHOTS when set)."""
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 2000
    folder = os.environ.get("RELAYBOT_TEST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    return path


def wait_for_text(driver, text: str) -> None:
    # (a page being replaced by the next one makes the old body stale: looked up again on the next turn)
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text
    )


def sign_in(driver, served, contact_id: str = ADMIN.contact_id) -> None:
    driver.get(served.base + "/")
    wait_for_text(driver, "登录网页控制台")  # sent to the sign-in page
    Select(driver.find_element(By.ID, "picked")).select_by_value(contact_id)
    driver.find_element(By.ID, "send-code").click()
    wait_for_text(driver, "输入验证码")
    driver.find_element(By.ID, "code").send_keys(served.last_code(contact_id))
    driver.find_element(By.ID, "verify").click()
    wait_for_text(driver, "进行中的推送")


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

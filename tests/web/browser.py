"""Debian's chromium through chromium-driver, driven by selenium, for the web console's tests (issue 14)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.gateway_harness import WAIT_SCALE

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60 * WAIT_SCALE


def start_browser(tmp_path: Path, downloads: Path | None = None):
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
    if downloads is not None:  # files the page offers are saved there without asking
        downloads.mkdir(parents=True, exist_ok=True)
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


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


def sign_in(driver, base: str, contact_id: str, code_of, name: str = "") -> None:
    """Sign in as a person would: the sign-in page, pick the name, send the code, type what `code_of()` found."""
    driver.get(base + "/")
    wait_for_text(driver, "登录网页控制台")  # sent to the sign-in page
    if name:  # picked from the list by the name the bot knows
        Select(driver.find_element(By.ID, "picked")).select_by_visible_text(name)
    else:
        driver.find_element(By.ID, "typed").send_keys(contact_id)
    driver.find_element(By.ID, "send-code").click()
    wait_for_text(driver, "输入验证码")
    driver.find_element(By.ID, "code").send_keys(code_of())
    driver.find_element(By.ID, "verify").click()
    wait_for_text(driver, "进行中的推送")

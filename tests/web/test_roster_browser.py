"""The 名单 and 单位 pages in a real browser (Debian's chromium through chromium-driver): upload a roster, see the
diff, press 应用, see the units page reflect it; edit one liaison inline. Each test saves a screenshot."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import AuditLog, Liaison, Unit
from tests.conftest import ADMIN
from tests.web.browser import screenshot, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.test_roster import NEW_ROSTER

pytestmark = pytest.mark.slow


def sign_in(driver, served) -> None:
    browser_sign_in(driver, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))


def test_upload_a_roster_see_the_diff_apply_it_and_see_the_units(served, browser, tmp_path):
    roster = tmp_path / "新名单.csv"
    roster.write_text(NEW_ROSTER, encoding="utf-8")
    sign_in(browser, served)
    browser.find_element(By.LINK_TEXT, "名单").click()
    wait_for_text(browser, "联络员名单")
    browser.find_element(By.ID, "roster-file").send_keys(str(roster))
    browser.find_element(By.ID, "upload").click()
    wait_for_text(browser, "名单改动（还没有应用）")
    diff = browser.find_element(By.ID, "diff").text
    assert "区公安分局" in diff and "区卫健局-吴刚" in diff
    assert "应用后会停用 1 个单位" in browser.find_element(By.ID, "deactivates").text
    with session(served.engine) as s:  # nothing changed yet
        assert s.exec(select(Unit).where(Unit.name == "区公安分局")).first() is None
    browser.find_element(By.ID, "apply").click()
    wait_for_text(browser, "已应用：7 行")
    browser.find_element(By.LINK_TEXT, "看单位").click()
    wait_for_text(browser, "近 30 天的记录")
    units = browser.find_element(By.ID, "units").text
    assert "区公安分局" in units and "钱多（主）" in units and "区卫健局" not in units
    with session(served.engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "roster_import")).first() is not None
    screenshot(browser, tmp_path, "roster-applied-units")


def test_edit_one_liaison_inline(served, browser, tmp_path):
    with session(served.engine) as s:
        zhao = s.exec(select(Liaison).where(Liaison.name == "赵磊")).one()
        zhao_id = int(zhao.id or 0)
    sign_in(browser, served)
    browser.get(f"{served.base}/roster?only=unrecognised")
    wait_for_text(browser, "还没认出的")
    row = browser.find_element(By.ID, f"l{zhao_id}")
    row.find_element(By.TAG_NAME, "summary").click()
    form = browser.find_element(By.ID, f"edit-{zhao_id}")
    field = form.find_element(By.NAME, "contact_id")
    field.clear()
    field.send_keys("wxid_zhaolei")
    phone = form.find_element(By.NAME, "phone")
    phone.clear()
    phone.send_keys("13900000002")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for_text(browser, "已保存：城关镇-赵磊")
    assert "wxid_zhaolei" in browser.find_element(By.ID, f"l{zhao_id}").text
    with session(served.engine) as s:
        row_now = s.get(Liaison, zhao_id)
        assert row_now is not None and row_now.contact_id == "wxid_zhaolei" and row_now.phone == "13900000002"
    screenshot(browser, tmp_path, "roster-edit")

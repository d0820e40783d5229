"""截图核验 in a real browser (Debian's chromium through chromium-driver): an admin marks a 存疑 screenshot 认可, it
leaves the list and shows as 认可 on the push page (issue 14). Ends with a screenshot of the page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from selenium.webdriver.common.by import By

from tests.conftest import ADMIN
from tests.web.browser import screenshot, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.test_access import make_push
from tests.web.test_review import add_shot, conf_of, units_of

pytestmark = pytest.mark.slow


def test_an_admin_marks_a_doubtful_screenshot_approved(served, browser, tmp_path):
    push_id = make_push(served)
    unit = units_of(served)[0]
    image = Image.new("RGB", (240, 320), "white")
    ImageDraw.Draw(image).rectangle((20, 40, 220, 80), fill="#b71c1c")
    data = io.BytesIO()
    image.save(data, format="PNG")
    folder = Path(served.settings.evidence_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0123456789abcdef0123456789abcdef.png").write_bytes(data.getvalue())
    conf_id = add_shot(
        served,
        push_id,
        unit,
        verdict="存疑",
        reason="截图中找不到推送标题",
        words="已转发到单位群",
        evidence_file="0123456789abcdef0123456789abcdef.png",
    )
    browser_sign_in(browser, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
    browser.find_element(By.LINK_TEXT, "截图核验").click()
    wait_for_text(browser, "截图中找不到推送标题")
    thumb = browser.find_element(By.CSS_SELECTOR, f"#conf-{conf_id} img.thumb")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) == 240
    browser.find_element(By.ID, f"approve-{conf_id}").click()
    wait_for_text(browser, f"已认可 {unit.name} #{push_id} 的截图")
    assert not browser.find_elements(By.ID, f"conf-{conf_id}")
    assert "没有待核验的截图" in browser.find_element(By.TAG_NAME, "body").text
    conf = conf_of(served, conf_id)
    assert conf is not None and conf.verdict == "已核验" and conf.verdict_reason.startswith("人工认可：")
    browser.get(f"{served.base}/pushes/{push_id}")
    wait_for_text(browser, "已核验：人工认可：")
    assert "已转发到单位群" in browser.find_element(By.ID, "units").text
    screenshot(browser, tmp_path, "review-approved")


def test_an_admin_records_a_unit_and_moves_the_deadline_from_the_push_page(served, browser, tmp_path):
    from selenium.webdriver.support.select import Select

    push_id = make_push(served)
    unit = units_of(served)[1]
    browser_sign_in(browser, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
    browser.get(f"{served.base}/pushes/{push_id}")
    browser.find_element(By.CSS_SELECTOR, "#office-actions summary").click()
    Select(browser.find_element(By.ID, "add-unit")).select_by_value(str(unit.id))
    browser.find_element(By.ID, "add-reason").send_keys("电话确认")
    browser.find_element(By.ID, "add").click()
    wait_for_text(browser, f"已补登：{unit.name} #{push_id}（电话确认），记为按时")  # on the push's page
    wait_for_text(browser, "已转发 1/")
    row = browser.find_element(By.CSS_SELECTOR, "#units tr.state-补登")
    assert unit.name in row.text and "电话确认" in row.text
    browser.find_element(By.CSS_SELECTOR, "#office-actions summary").click()
    browser.find_element(By.ID, "deadline-when").send_keys("明天12:00")
    browser.find_element(By.ID, "deadline").click()
    wait_for_text(browser, f"已将 #{push_id} 截止时间改为")
    screenshot(browser, tmp_path, "push-actions")

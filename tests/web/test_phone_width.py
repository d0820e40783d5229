"""Every page of the web console on a phone (issue 14): opened at 390x844 in a real browser (Debian's chromium), no
page is wider than the screen; a wide table scrolls inside its own box instead. Pages filled with long texts (a
long unbroken message, long URLs, long unit names) so that anything that can overflow would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from bot.config import Settings
from bot.storage.db import session
from bot.storage.models import AuditLog, Confirmation, ConfirmMethod, Liaison, Unit
from tests.conftest import ADMIN
from tests.web.browser import screenshot, wait_for_text
from tests.web.browser import sign_in as browser_sign_in
from tests.web.conftest import VIEWER_ID
from tests.web.test_access import make_push
from tests.web.test_admin_incidents import CSV, upload
from tests.web.test_review import add_shot, units_of

pytestmark = pytest.mark.slow

LONG = "已转发" + "A" * 120  # no break opportunity at all
LONG_URL = "https://feeds.example.cn/" + "x" * 150 + "?token=t"
OVERFLOW = """
const width = window.innerWidth;
const wide = [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('.scroll, table'))
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
return [document.documentElement.scrollWidth, document.body.scrollWidth, width, wide.slice(0, 8)];
"""


@pytest.fixture
def web_settings(settings) -> Settings:
    return settings.model_copy(
        update={"viewer_ids": [VIEWER_ID], "feeds": [LONG_URL], "notify_url": LONG_URL, "office_group": "x" * 80}
    )


def filled(served) -> tuple[int, int, int]:
    """A push with units in every state and long words, a doubtful screenshot, figures, a long audit entry."""
    push_id = make_push(served, text="【反诈预警】" + "刷单返利" * 40 + LONG, title="刷单返利" * 12)
    units = units_of(served)
    with session(served.engine) as s:
        unit = s.get(Unit, units[0].id)
        assert unit is not None
        unit.name = "区" + "很长的单位名称" * 6
        s.add(unit)
        s.add(
            Confirmation(
                push_id=push_id,
                unit_id=units[1].id,
                at=served.clock(),
                method=ConfirmMethod.TEXT.value,
                evidence_text=LONG,
            )
        )
        late = served.clock() + timedelta(hours=9)
        s.add(Confirmation(push_id=push_id, unit_id=units[2].id, at=late, method="note", late=True))
        s.add(
            AuditLog(
                at=served.clock(),
                actor_id="wxid_" + "z" * 60,
                actor_name="",
                action="remind",
                detail=LONG * 3,
                allowed=True,
            )
        )
        liaison = s.exec(select_first_liaison()).first()
        assert liaison is not None
        liaison.wechat_name = "微信名" + "W" * 80
        s.add(liaison)
        s.commit()
        entry = int(s.exec(select_last_audit()).first() or 0)
    add_shot(served, push_id, units[3], verdict="存疑", reason="重复使用：" + LONG, words=LONG)
    return push_id, int(units[0].id or 0), entry


def select_first_liaison():
    from sqlmodel import col, select

    return select(Liaison).order_by(col(Liaison.id))


def select_last_audit():
    from sqlmodel import col, select

    return select(AuditLog.id).order_by(col(AuditLog.id).desc())


def test_no_page_is_wider_than_a_phone(served, browser, tmp_path):
    push_id, unit_id, entry = filled(served)
    assert upload(served.sign_in(), CSV).status_code == 200
    browser.set_window_size(390, 844)
    assert browser.execute_script("return window.innerWidth") <= 390
    browser.get(served.base + "/login")
    wait_for_text(browser, "登录网页控制台")
    pages = {"/login": browser.execute_script(OVERFLOW)}
    served.clock.advance(minutes=2)  # (the admin's last code was a minute ago: a new one may be asked)
    browser_sign_in(browser, served.base, ADMIN.contact_id, lambda: served.last_code(ADMIN.contact_id))
    paths = [
        "/",
        "/pushes",
        f"/pushes/{push_id}",
        f"/pushes/{push_id}?state=未转发",
        "/pushes/new",
        "/pushes/new?case=刷单返利",
        f"/pushes/new?url={LONG_URL}",
        "/feeds",
        "/review",
        "/units",
        f"/units/{unit_id}",
        "/roster",
        "/roster?only=unrecognised",
        "/reports",
        "/reports?kind=month",
        "/incidents",
        "/incidents?period=2026-W47",
        "/audit",
        f"/audit/{entry}",
        "/settings",
        "/pushes/999999",  # the refusal page
    ]
    for path in paths:
        browser.get(served.base + path)
        browser.find_element(By.TAG_NAME, "main")
        pages[path] = browser.execute_script(OVERFLOW)
    for path, shot in (("/roster", "roster-phone"), (f"/pushes/{push_id}", "push-phone")):
        browser.get(served.base + path)
        screenshot(browser, tmp_path, shot)
    too_wide = {path: m for path, m in pages.items() if m[0] > m[2] or m[1] > m[2] or m[3]}
    assert not too_wide, too_wide

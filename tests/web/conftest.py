"""The web console served by a real uvicorn server on 127.0.0.1 (in a thread of the test process), over the test's
database, with a fake clock the tests move; an httpx client per person."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlmodel import col, select

from bot.config import Settings
from bot.storage.db import session
from bot.storage.models import Group, GroupKind, Outbox
from bot.web.app import create_app
from tests.conftest import ADMIN, LIAISON_ROOM
from tests.gateway_harness import wait_until

VIEWER_ID = "wxid_leader"
WAIT = 120  # seconds, for the server to stop on a loaded machine


@dataclass
class Served:
    base: str
    engine: object
    settings: Settings
    clock: object

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=60, trust_env=False)

    def last_code(self, contact_id: str) -> str:
        """The newest sign-in code the console queued for `contact_id`'s private chat."""
        with session(self.engine) as s:
            row = s.exec(select(Outbox).where(Outbox.chat_id == contact_id).order_by(col(Outbox.id).desc())).first()
        assert row is not None, f"no message queued for {contact_id}"
        found = re.search(r"\d{6}", row.text)
        assert found, row.text
        return found.group()

    def sign_in(self, contact_id: str = ADMIN.contact_id) -> httpx.Client:
        """A client signed in with a code, as the person would: login page, send code, type it."""
        c = self.client()
        pre = pre_token(c)
        r = c.post("/login/code", data={"pre": pre, "typed": contact_id, "next": "/"})
        assert r.status_code == 200, r.text
        r = c.post("/login/verify", data={"pre": pre, "contact_id": contact_id, "code": self.last_code(contact_id)})
        assert r.status_code == 303, r.text
        return c


def pre_token(c: httpx.Client) -> str:
    r = c.get("/login")
    assert r.status_code == 200
    return c.cookies["relaybot_pre"]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web_settings(settings) -> Settings:
    return settings.model_copy(update={"viewer_ids": [VIEWER_ID]})


@pytest.fixture
def served(web_settings, engine, clock, roster) -> Iterator[Served]:
    """The console on a real HTTP server on 127.0.0.1, over the test's database (with the example roster)."""
    with session(engine) as s:  # the liaison group, as the running bot would have learned it
        s.add(Group(room_id=LIAISON_ROOM, name="全区反诈联络员群", kind=GroupKind.LIAISON.value))
        s.commit()
    app = create_app(web_settings, engine, clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="web-console", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), bool, 30, "the web console to start")
    assert server.started, "the web console did not start"
    yield Served(f"http://127.0.0.1:{port}", engine, web_settings, clock)
    server.should_exit = True
    thread.join(WAIT)


@pytest.fixture
def browser(tmp_path):
    """Debian's chromium through chromium-driver (tests/web/browser.py), closed after the test."""
    from tests.web.browser import start_browser

    driver = start_browser(tmp_path)
    yield driver
    driver.quit()

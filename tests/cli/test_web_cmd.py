"""`relaybot web` as a process (issue 14): it serves the console, a second one on the same port says so in Chinese,
--login-link prints a link that signs in once, and SIGTERM ends it cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx

from tests.bot_process import ROOT, relaybot
from tests.gateway_harness import wait_until

ADMIN = "wxid_web_admin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db_url: str, cwd, port: int, *args: str) -> subprocess.Popen:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "RELAYBOT_DATABASE_URL": db_url,
        "RELAYBOT_ADMIN_IDS": ADMIN,
        "RELAYBOT_WEB_PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "web", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _answers(base: str, proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        return True
    try:
        return httpx.get(base + "/login", timeout=5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_refuse_a_second_on_the_same_port_sign_in_by_link_and_stop(db_url, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    first = _start(db_url, tmp_path, port, "--login-link")
    try:
        wait_until(lambda: _answers(base, first), bool, 60, "relaybot web to answer")
        assert first.poll() is None, first.communicate()[1].decode()
        second = relaybot("web", db_url=db_url, cwd=tmp_path, RELAYBOT_ADMIN_IDS=ADMIN, RELAYBOT_WEB_PORT=str(port))
        assert second.returncode == 1
        assert f"端口 {port} 已被占用" in second.stderr and "Traceback" not in second.stderr
        # The link printed first thing signs in once.
        assert first.stdout is not None
        line = b""
        while b"/login/link/" not in line:
            line = first.stdout.readline()
            assert line, "no sign-in link printed"
        token = line.decode().strip().rsplit("/login/link/", 1)[1]
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as c:
            c.get(f"/login/link/{token}")
            r = c.post("/login/link", data={"pre": c.cookies["relaybot_pre"], "token": token})
            assert r.status_code == 303
            assert c.get("/").status_code == 200
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=60)
    assert first.stdout is not None and first.stderr is not None
    rest, err = first.stdout.read().decode(), first.stderr.read().decode()
    assert code == 0 and "网页控制台已停止。" in rest, rest + err
    assert "Traceback" not in err, err

"""Run the bot as a real process (`python -m bot run`) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """`relaybot run` in a subprocess with the given environment; its log is kept for failure messages."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="relaybot-", suffix=".log", delete=False)  # noqa: SIM115  (closed by stop())

    def start(self, *, timeout: float = 120.0) -> BotProcess:
        """Start the bot and wait until it has logged in and read its groups."""
        offset = os.path.getsize(self._log.name)
        env = {k: v for k, v in os.environ.items() if k not in ("TOKEN", "ENDPOINT") and not k.startswith("RELAYBOT_")}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while "ready as" not in self.log(offset):
            if self.process.poll() is not None:
                raise RuntimeError(f"the bot exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not get ready in {timeout} s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self, offset: int = 0) -> str:
        """What the bot has printed (from byte `offset`)."""
        with open(self._log.name, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()
        self._log.close()
        os.unlink(self._log.name)


def relaybot(*args: str, db_url: str, cwd: Path, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run one `relaybot` command as a new user would: a clean environment, this checkout, the given database."""
    clean = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RELAYBOT_DATABASE_URL": db_url, **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hung command, not a speed check: a loaded 2-core machine is slow
    )


def gateway_env(
    gateway,
    db_url: str,
    workdir: Path,
    *,
    admin: str,
    liaison_groups: str,
    office_group: str,
    fast: bool = True,
    **extra: str,
) -> dict[str, str]:
    """The environment of a bot process on `gateway`: its database, admin and groups; `fast` drops the sending
    pace and shortens the acknowledgement spell, as tests want. `extra` (RELAYBOT_*=...) wins."""
    env = {
        "WECHATY_PUPPET_SERVICE_ENDPOINT": gateway.endpoint,
        "WECHATY_PUPPET_SERVICE_TOKEN": gateway.token,
        "RELAYBOT_DATABASE_URL": db_url,
        "RELAYBOT_ADMIN_IDS": admin,
        "RELAYBOT_LIAISON_GROUPS": liaison_groups,
        "RELAYBOT_OFFICE_GROUP": office_group,
        "RELAYBOT_CACHE_DIR": str(workdir / "cache"),
    }
    if fast:
        env.update(
            {
                "RELAYBOT_ACK_QUIET_SECONDS": "1",
                "RELAYBOT_ACK_CHECK_SECONDS": "0.2",
                "RELAYBOT_ACK_MIN_INTERVAL_SECONDS": "0",
                "RELAYBOT_SEND_SPACING_SECONDS": "0",
                "RELAYBOT_SEND_JITTER_SECONDS": "0",
            }
        )
    env.update(extra)
    return env

"""`relaybot run --console` as a process whose output is read as it comes, for the console tests (issue 13)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.bot_process import ROOT, relaybot
from tests.gateway_harness import wait_until

ROSTER = str(ROOT / "content" / "examples" / "roster_example.csv")
WAIT = 180  # seconds, for waiting only: two cores shared with other test runs


def import_roster(db_url: str, cwd: Path) -> None:
    imported = relaybot("roster", "import", ROSTER, db_url=db_url, cwd=cwd)
    assert imported.returncode == 0, imported.stderr


class Console:
    """A console process: type lines, wait for output, end the input or interrupt, collect the result."""

    def __init__(self, db_url: str, cwd: Path, *args: str) -> None:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RELAYBOT_DATABASE_URL": db_url}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--console", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(stream, into: list[str]) -> None:
        while chunk := stream.read(1):
            into.append(chunk)

    @property
    def out(self) -> str:
        return "".join(self._out)

    @property
    def err(self) -> str:
        return "".join(self._err)

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def wait_for(self, text: str, what: str = "") -> str:
        """Wait until `text` is in the output (the process may not have ended)."""
        return wait_until(
            lambda: self.out, lambda out: text in out or self.proc.poll() is not None, WAIT, what or repr(text)
        )

    def end_input(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.finish()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(timeout=30)
        return code


def assert_clean(code: int, console: Console) -> None:
    """Exit code 0, and nothing from Python's error machinery on either stream."""
    both = console.out + console.err
    assert code == 0, both
    for word in ("Traceback", "Error", "Exception", "exception"):
        assert word not in both, both

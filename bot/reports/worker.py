"""A report's .xlsx and chart, made in a short-lived child process.

matplotlib, openpyxl and a chart's pixel buffers take some 60 MB that a Python process keeps once it has
loaded them. The bot runs for months, so it hands the finished figures (a Report: plain dataclasses) to a
fresh interpreter, `python -m bot.reports.worker`, one per report: it renders both files, writes them back
through a pipe and exits. Nothing of matplotlib or openpyxl is ever imported into the bot.

The answer on the pipe is a JSON header line (file names and sizes, the error if rendering stopped) followed by
the files' bytes: the bot never unpickles anything from the child.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.domain.incidents import StatsReport
from bot.reports.figures import Report
from bot.reports.verify import UnitRecord

log = logging.getLogger(__name__)

# A 300-unit month takes a few seconds, most of it starting Python and importing matplotlib; matplotlib's first
# run on a machine also builds its font cache. Past this the child is killed and the report goes without files.
TIMEOUT_SECONDS = 180.0
_STDERR_TAIL = 2000


class RendererFailed(RuntimeError):
    """The child process died, was killed, overran its time or answered something unreadable."""


@dataclass(frozen=True)
class Rendered:
    """What rendering made: the files in order (.xlsx, then .png), and why it stopped early, if it did."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    error: str = ""  # the exception's type name, shown to the office; "" when every file was made
    detail: str = ""  # for the log: the traceback, or what happened to the child


def render_here(report: Report | StatsReport | UnitRecord, tz: ZoneInfo) -> Rendered:
    """Render in this process: the .xlsx, then the chart; the first failure stops it (the files so far stay).

    A relay report (Report), the incident figures' 通报 (StatsReport), or a 回访核查 record (UnitRecord: its .xlsx
    alone)."""
    files: list[tuple[str, bytes]] = []
    try:
        if isinstance(report, UnitRecord):  # 回访核查: the record's .xlsx alone
            from bot.reports.verify_render import render_record_xlsx

            files.append((f"{report.stem}.xlsx", render_record_xlsx(report)))
            return Rendered(files)
        if isinstance(report, StatsReport):
            from bot.content import load_texts
            from bot.reports.incident_render import file_stem, render_stats_chart, render_stats_xlsx

            stem = file_stem(load_texts(), report)
            files.append((f"{stem}.xlsx", render_stats_xlsx(report)))
            files.append((f"{stem}.png", render_stats_chart(report)))
            return Rendered(files)
        from bot.reports.render import render_chart, render_xlsx

        stem = f"{report.title}"
        files.append((f"{stem}.xlsx", render_xlsx(report, tz)))
        files.append((f"{stem}.png", render_chart(report)))
    except Exception as exc:  # noqa: BLE001 - a report without its files is still worth sending
        return Rendered(files, type(exc).__name__, traceback.format_exc())
    return Rendered(files)


def render_in_child(
    report: Report | StatsReport | UnitRecord, tz: ZoneInfo, *, timeout: float | None = None
) -> Rendered:
    """`render_here` in a new Python process that exits afterwards. Raises RendererFailed if the child fails."""
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    payload = pickle.dumps((report, tz.key), protocol=pickle.HIGHEST_PROTOCOL)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # where `bot` is, installed or a checkout
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        done = subprocess.run(_command(), input=payload, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:  # run() has killed it
        raise RendererFailed(f"the report renderer took longer than {timeout:.0f} s and was stopped") from exc
    except OSError as exc:
        raise RendererFailed(f"the report renderer could not be started: {exc}") from exc
    stderr = done.stderr.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
    if done.returncode != 0:
        raise RendererFailed(f"the report renderer ended with exit status {done.returncode}: {stderr or '(no output)'}")
    if stderr:
        log.info("the report renderer said: %s", stderr)
    return _decode(done.stdout)


def render_files(report: Report | StatsReport | UnitRecord, tz: ZoneInfo) -> Rendered:
    """The report's files, made in a child process; never raises: a failure is logged and returned as `error`."""
    name = _name(report)
    try:
        rendered = render_in_child(report, tz)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the report text still goes out
        log.error("rendering the report %s failed: %s", name, exc)
        return Rendered([], type(exc).__name__, str(exc))
    if rendered.error:
        log.error("rendering the report %s failed in its child process:\n%s", name, rendered.detail)
    return rendered


def _name(report: Report | StatsReport | UnitRecord) -> str:
    if isinstance(report, UnitRecord):
        return report.stem
    if isinstance(report, StatsReport):
        return f"警情通报 {report.period_start.isoformat()}~{report.period_end.isoformat()}"
    return report.title


def _command() -> list[str]:
    """How the child is started (tests replace it to see what happens when the child dies)."""
    return [sys.executable, "-m", "bot.reports.worker"]


def _encode(rendered: Rendered) -> bytes:
    header = {
        "files": [[name, len(data)] for name, data in rendered.files],
        "error": rendered.error,
        "detail": rendered.detail,
    }
    return json.dumps(header).encode("utf-8") + b"\n" + b"".join(data for _, data in rendered.files)


def _decode(raw: bytes) -> Rendered:
    try:
        head, _, body = raw.partition(b"\n")
        header = json.loads(head)
        files, at = [], 0
        for name, size in header["files"]:
            files.append((str(name), body[at : at + int(size)]))
            at += int(size)
        if at != len(body):
            raise ValueError(f"{len(body)} bytes of files, {at} announced")
        return Rendered(files, str(header["error"]), str(header["detail"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise RendererFailed(f"the report renderer's answer is unreadable: {exc}") from exc


def main() -> int:
    """The child: a pickled (Report, StatsReport or UnitRecord, time zone name) on stdin, the files on stdout."""
    with contextlib.suppress(OSError):  # where it is refused, render at the usual priority
        os.nice(10)  # a report may take its time: the bot's handling of messages comes first on a busy machine
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the answer
    report, tz_key = pickle.loads(sys.stdin.buffer.read())
    with answer:
        answer.write(_encode(render_here(report, ZoneInfo(tz_key))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

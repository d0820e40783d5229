"""What keeps the long-running bot small: report files made in a child process, numpy and Pillow loaded late.

A report's .xlsx and chart are rendered by `python -m bot.reports.worker`, one short-lived process per report, so
matplotlib and openpyxl never enter the bot. The files are the same as when rendered in the process itself; when
the child dies or hangs, the report's text still goes out, the failure is logged, and the scheduler carries on.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
import zipfile
from datetime import datetime

from sqlmodel import select

from bot.reports import render as report_render
from bot.reports import worker as report_worker
from bot.reports.figures import EvidenceRow, Report
from bot.storage.db import session
from bot.storage.models import ScheduledRun
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, ROOT, TZ, WANG
from tests.reports.test_report_render import make_report, unit

# ---- the same files, wherever they are made ------------------------------------------------------


def xlsx_parts(data: bytes) -> dict[str, bytes]:
    """The workbook's parts, without docProps/core.xml (it holds the time the file was written)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist() if name != "docProps/core.xml"}


def a_larger_report() -> Report:
    units = [
        unit(f"第{i}号单位", i + 1, on_time=20 - i % 7, late=i % 3, missed=i % 5, median=3.5 * i) for i in range(45)
    ]
    base = make_report(units)
    evidence = [EvidenceRow(7, f"第{i}号单位", ["已核验", "存疑", ""][i % 3], "截图中有推送标题") for i in range(60)]
    return Report(
        **{**base.__dict__, "evidence": evidence, "kind": "month", "title": "反诈预警转发月通报（2026年11月）"}
    )


def test_files_made_in_the_child_are_the_files_made_here():
    for report in (make_report(), make_report([]), a_larger_report()):
        here = report_worker.render_here(report, TZ)
        child = report_worker.render_in_child(report, TZ)
        assert here.error == child.error == ""
        assert [name for name, _ in child.files] == [f"{report.title}.xlsx", f"{report.title}.png"]
        assert [name for name, _ in child.files] == [name for name, _ in here.files]
        assert child.files[1][1] == here.files[1][1]  # the chart: byte for byte
        assert xlsx_parts(child.files[0][1]) == xlsx_parts(here.files[0][1])
        assert len(xlsx_parts(here.files[0][1])) > 5


def test_a_failure_inside_the_renderer_keeps_the_files_made_before_it(monkeypatch):
    monkeypatch.setattr(report_render, "_FONT_FILE", "NoSuchFont.otf")  # the chart fails, the .xlsx does not
    here = report_worker.render_here(make_report(), TZ)
    assert [n for n, _ in here.files] == [f"{make_report().title}.xlsx"] and here.error == "CJKFontMissing"
    back = report_worker._decode(report_worker._encode(here))  # what the child sends, as the bot reads it
    assert back == here and "CJKFontMissing" in back.detail


# ---- the bot when the child fails ----------------------------------------------------------------

KILLED = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
HANGS = [sys.executable, "-c", "import time; time.sleep(60)"]


async def summary_day(bot, transport, clock):
    """A push, one confirmation, then the clock at 18:31: the deadline and the daily summary are due."""
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    clock.advance(minutes=10)
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await bot.send_pending()
    transport.sent.clear()
    clock.now = datetime(2026, 11, 26, 18, 31, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()


def summary_run(engine) -> str:
    with session(engine) as s:
        return s.exec(select(ScheduledRun.state).where(ScheduledRun.job == "summary")).one()


async def test_a_killed_renderer_still_lets_the_summary_text_out(bot, transport, clock, engine, monkeypatch, caplog):
    monkeypatch.setattr(report_worker, "_command", lambda: KILLED)
    with caplog.at_level(logging.ERROR, logger="bot.reports.worker"):
        await summary_day(bot, transport, clock)
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    summary = [o.text for o in office if o.text.startswith("📊")]
    assert len(summary) == 1 and "日报" in summary[0]
    assert summary[0].endswith("（图表未生成：RendererFailed）")
    assert not [o for o in office if o.file is not None or o.image is not None]
    assert summary_run(engine) == "done"  # handled, not failed: it is not tried again
    assert any("exit status -9" in r.getMessage() for r in caplog.records)
    # The scheduler carries on: the next report is made normally once the renderer works again.
    monkeypatch.undo()
    transport.sent.clear()
    await transport.say(ADMIN, "报表 日", room_id=OFFICE_ROOM)
    await bot.send_pending()
    files = [o for o in transport.sent if o.chat_id == OFFICE_ROOM and (o.file is not None or o.image is not None)]
    assert len(files) == 2


async def test_a_hung_renderer_is_stopped_and_the_text_goes_out(bot, transport, clock, engine, monkeypatch, caplog):
    monkeypatch.setattr(report_worker, "_command", lambda: HANGS)
    monkeypatch.setattr(report_worker, "TIMEOUT_SECONDS", 1.0)
    with caplog.at_level(logging.ERROR, logger="bot.reports.worker"):
        await summary_day(bot, transport, clock)
    summary = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text.startswith("📊")]
    assert len(summary) == 1 and summary[0].endswith("（图表未生成：RendererFailed）")
    assert summary_run(engine) == "done"
    assert any("took longer than 1 s" in r.getMessage() for r in caplog.records)


async def test_a_chart_failure_in_the_child_sends_the_xlsx_and_says_why(bot, transport, clock, engine, monkeypatch):
    def child_without_font(report, tz, **kw):  # what the child answers when its chart fails
        monkeypatch.setattr(report_render, "_FONT_FILE", "NoSuchFont.otf")
        return report_worker._decode(report_worker._encode(report_worker.render_here(report, tz)))

    monkeypatch.setattr(report_worker, "render_in_child", child_without_font)
    await summary_day(bot, transport, clock)
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    summary = next(o.text for o in office if o.text.startswith("📊"))
    assert "（图表未生成：CJKFontMissing）" in summary and summary.endswith("明细见下方表格和图表。")
    assert [o.file.name for o in office if o.file is not None] == ["反诈预警转发日报（11月26日）.xlsx"]
    assert not [o for o in office if o.image is not None]


# ---- the bot process itself ----------------------------------------------------------------------

# A fresh interpreter runs a working day up to the daily summary (bot, in-memory transport, SQLite file) and
# says which heavy modules it holds afterwards. With "inline", the files are rendered in that process instead
# of the child: the control that shows the check can see matplotlib when it is there.
DAY_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, tempfile
    from datetime import datetime
    from pathlib import Path
    from sqlmodel import select
    from bot.reports import worker as report_worker
    from bot.runtime.app import build_bot
    from bot.clock import FakeClock
    from bot.config import Settings
    from bot.storage.db import create_schema, make_engine, session
    from bot.storage.models import Outbox
    from bot.domain.roster import import_roster, read_roster_file
    from bot.transport.memory import MemoryTransport
    from tests.conftest import ADMIN, EXAMPLE_ROSTER, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG, LI

    if sys.argv[1] == "inline":
        report_worker.render_in_child = lambda report, tz, **kw: report_worker.render_here(report, tz)

    async def main(folder):
        engine = make_engine(f"sqlite:///{folder / 'day.db'}")
        create_schema(engine)
        with session(engine) as s:
            import_roster(s, read_roster_file(EXAMPLE_ROSTER))
            s.commit()
        transport = MemoryTransport(bot_id="bot-self")
        transport.add_room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN, WANG, LI])
        transport.add_room(OFFICE_ROOM, "反诈办工作群", [ADMIN])
        settings = Settings(database_url="sqlite://", evidence_dir=str(folder / "evidence"), admin_ids=[ADMIN.contact_id],
                            liaison_groups=["全区反诈联络员群"], office_group="反诈办工作群")
        clock = FakeClock(datetime(2026, 11, 26, 9, 0, tzinfo=TZ))
        bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
        await bot.start()
        await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
        clock.advance(minutes=20)
        await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
        await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
        clock.now = datetime(2026, 11, 26, 18, 31, tzinfo=TZ)
        await bot.run_schedule()
        await bot.send_pending()
        with session(engine) as s:
            files = sorted(s.exec(select(Outbox.file_name).where(Outbox.file_name != "")))
        await bot.stop()
        engine.dispose()
        heavy = {m: m in sys.modules for m in ("matplotlib", "openpyxl", "numpy", "bot.reports.render")}
        print(json.dumps({"files": files, "loaded": heavy}))

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
""")


def run_day(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", DAY_SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_a_daily_summary_the_bot_process_holds_no_matplotlib_openpyxl_or_numpy():
    result = run_day("child")
    assert result["files"] == ["反诈预警转发日报（11月26日）.png", "反诈预警转发日报（11月26日）.xlsx"]
    assert result["loaded"] == {"matplotlib": False, "openpyxl": False, "numpy": False, "bot.reports.render": False}


def test_the_module_check_sees_matplotlib_when_the_files_are_rendered_in_the_bot():
    result = run_day("inline")  # control for the test above
    assert result["files"] == ["反诈预警转发日报（11月26日）.png", "反诈预警转发日报（11月26日）.xlsx"]
    assert result["loaded"]["matplotlib"] and result["loaded"]["openpyxl"]


def test_numpy_and_pillow_wait_for_the_first_screenshot():
    script = textwrap.dedent("""
        import io, json, sys
        import bot.runtime.app, bot.cli.main, handlers
        before = "numpy" in sys.modules
        from PIL import Image
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), "white").save(buf, "PNG")
        from bot.adapters import screenshot_check as evidence
        digest = evidence.perceptual_hash(buf.getvalue())
        print(json.dumps({"before": before, "after": "numpy" in sys.modules, "hash": digest}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] is False and result["after"] is True
    assert len(result["hash"]) == 64

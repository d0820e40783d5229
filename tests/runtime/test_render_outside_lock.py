"""Report files are made after the unit of work that queued the report, outside the unit-of-work lock.

The unit of work queues the text and placeholders (outbox state `rendering`) and returns; the renderer makes the
files in the child worker and releases the rows; the chat gets the text, the .xlsx, the chart, then later
messages. The rows are the record, so a restart in between still renders and sends the files.
"""

from __future__ import annotations

from sqlmodel import select

from bot.operations import reporting
from bot.reports import worker as report_worker
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Outbox, OutboxState
from bot.transport.base import FileData
from tests.conftest import ADMIN, OFFICE_ROOM
from tests.handlers.test_stats_chat import CSV


def office_rows(engine) -> list[Outbox]:
    with session(engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.chat_id == OFFICE_ROOM).order_by(Outbox.id)))


async def _no_render() -> None:  # the renderer has not run yet (it runs after the lock is released)
    return None


async def test_the_unit_of_work_commits_the_text_before_any_file_is_made(bot, transport, engine, monkeypatch):
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)  # a day without pushes has no files (issue 13)
    await bot.send_pending()
    transport.sent.clear()
    monkeypatch.setattr(bot, "render_reports", _no_render)
    await transport.say(ADMIN, "报表 日", room_id=OFFICE_ROOM)
    rows = office_rows(engine)
    text, xlsx, png = rows[-3:]
    assert text.text.startswith("📊") and text.state == OutboxState.RENDERING.value
    assert [xlsx.file_name[-5:], png.file_name[-4:]] == [".xlsx", ".png"]
    assert xlsx.file_data is None and png.file_data is None  # committed, and nothing rendered yet
    # A reply queued later in the same chat waits behind the report.
    await transport.say(ADMIN, "报表 季度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert not [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert await bot.renderer.render_pending() == 1
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert office[0].text.startswith("📊") and office[0].text.endswith("明细见下方表格和图表。")
    assert office[1].file is not None and office[1].file.name.endswith(".xlsx")
    assert office[2].image is not None and office[2].image.name.endswith(".png")
    assert office[3].text.startswith("用法：报表 日")


async def test_a_restart_between_queueing_and_rendering_still_sends_the_files(
    bot, transport, engine, settings, clock, monkeypatch
):
    monkeypatch.setattr(bot, "render_reports", _no_render)
    await transport.send_file(ADMIN, FileData("警情.csv", CSV.encode("utf-8")))
    with session(engine) as s:
        assert reporting.waiting(s) == 1
    await bot.stop()  # the bot stops before the files are made
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()  # renders what is waiting before it listens
    await again.on_ready("bot")
    with session(engine) as s:
        assert reporting.waiting(s) == 0
    await again.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert office[0].text.startswith("📈 电诈警情通报")
    assert office[1].file is not None and office[1].file.name.endswith(".xlsx")
    assert office[2].image is not None and office[2].image.name.endswith(".png")


async def test_an_incident_render_failure_tells_the_office_and_keeps_the_text(bot, transport, monkeypatch, caplog):
    def fails(report, tz, **kw):
        raise report_worker.RendererFailed("the report renderer ended with exit status -9: (no output)")

    monkeypatch.setattr(report_worker, "render_in_child", fails)
    await transport.send_file(ADMIN, FileData("警情.csv", CSV.encode("utf-8")))
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert len(office) == 1 and office[0].text.startswith("📈 电诈警情通报")
    assert office[0].text.endswith("（图表未生成：RendererFailed）")
    assert any("exit status -9" in r.getMessage() for r in caplog.records)


def test_the_incident_chart_is_made_by_the_child_worker(engine):
    from datetime import date
    from zoneinfo import ZoneInfo

    from bot.content import load_library
    from bot.domain.incidents import build_stats_report, import_stats, read_stats_bytes
    from tests.conftest import TZ

    with session(engine) as s:
        import_stats(
            s,
            read_stats_bytes("s.csv", CSV.encode(), today=date(2026, 11, 30)),
            now=__import__("datetime").datetime(2026, 11, 30, tzinfo=TZ),
            source="t",
        )
        report = build_stats_report(
            s, period_start=date(2026, 11, 16), period_end=date(2026, 11, 22), library=load_library()
        )
    child = report_worker.render_in_child(report, ZoneInfo("UTC"))
    assert child.error == ""
    assert [n for n, _ in child.files] == [
        "警情通报（2026年第47周（11月16日—11月22日））.xlsx",
        "警情通报（2026年第47周（11月16日—11月22日））.png",
    ]
    assert child.files[1][1].startswith(b"\x89PNG")


def test_roster_and_incident_files_share_the_table_reader_limits(tmp_path, monkeypatch):
    import pytest

    from bot.adapters import tables
    from bot.domain.incidents import StatsError, read_stats_bytes
    from bot.domain.roster import RosterError, read_roster_file

    monkeypatch.setattr(tables, "MAX_BYTES", 100)
    big = tmp_path / "名单.csv"
    big.write_text("单位,联络员\n" + "城关镇,张三\n" * 20, encoding="utf-8")
    with pytest.raises(RosterError, match="文件超过"):
        read_roster_file(big)
    with pytest.raises(StatsError):
        read_stats_bytes("警情.csv", big.read_bytes())
    with pytest.raises(RosterError, match="UTF-8"):  # GBK is read (issue 13); this is neither
        read_roster_file(_write(tmp_path / "gbk.csv", "单位,联络员\n".encode("gbk") + b"\xff"))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path

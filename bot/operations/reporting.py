"""Posting a report with files: the text is queued in the unit of work, the files are made outside it.

The unit of work queues the report's text and one placeholder row per file, all in the outbox state
`rendering`, and keeps the figures (pickled) on the text row. Nothing is rendered there: the renderer
(bot/runtime/renderer.py) picks the rows up after the lock is released, has the child process of
bot/reports/worker.py make the files, and in a short unit of work of its own fills the placeholders and releases
the rows (`attach_files`). Until then the chat's later rows wait (bot.storage.outbox.pending), so a chat gets the
text, the .xlsx, the chart, then what came after. The rows are the record: a restart renders what is left.

A render that fails still releases the text, saying why the files are missing (as before), and logs it.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from bot.chat import compose
from bot.content import AlertLibrary, Texts
from bot.domain.incidents import DEFAULT_CHECKPOINTS, StatsReport, build_stats_report
from bot.domain.periods import period_label
from bot.reports.figures import Report
from bot.reports.verify import UnitRecord
from bot.storage import outbox
from bot.storage.models import Outbox, OutboxState, pk
from bot.transport.base import ChatKind

# Set in a session's info by a unit of work that queued report files to render.
RENDER_QUEUED = "report_files_queued"


@dataclass(frozen=True)
class RenderJob:
    """A report whose files are still to be made: its text row, the figures and the time zone to render with."""

    text_row_id: int
    figures: Report | StatsReport | UnitRecord | None  # None: the stored figures could not be read
    tz_key: str


def queue_with_files(
    session: Session,
    *,
    now: datetime,
    chat_kind: ChatKind,
    chat_id: str,
    text: str,
    figures: Report | StatsReport | UnitRecord,
    tz_key: str,
    file_names: list[str],
    files_note: str,
) -> Outbox:
    """Queue a report's text and placeholders for its files, held until the renderer has made them."""
    session.info[RENDER_QUEUED] = True  # the runtime looks at this after the unit of work, not at every message
    text_row = outbox.queue(session, now=now, chat_kind=chat_kind, chat_id=chat_id, text=text)
    text_row.state = OutboxState.RENDERING.value
    placeholders = []
    for name in file_names:
        row = outbox.queue(session, now=now, chat_kind=chat_kind, chat_id=chat_id, file_name=name)
        row.state = OutboxState.RENDERING.value
        placeholders.append(row)
    session.flush()  # the ids, so the text row can name its placeholders
    # Our own rows, written by this process: never anything received from a chat or the child.
    text_row.file_data = pickle.dumps(
        {"figures": figures, "tz": tz_key, "file_ids": [pk(p) for p in placeholders], "files_note": files_note},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    session.add(text_row)
    return text_row


def pending_jobs(session: Session) -> list[RenderJob]:
    """Reports waiting for their files, oldest first. A job whose figures cannot be read gets figures=None."""
    stmt = (
        select(Outbox)
        .where(Outbox.state == OutboxState.RENDERING.value, Outbox.file_name == "", col(Outbox.file_data).is_not(None))
        .order_by(col(Outbox.id))
    )
    jobs = []
    for row in session.exec(stmt):
        row_id = pk(row)  # read from the database
        assert row.file_data is not None  # the query selects only rows with figures
        try:
            payload = pickle.loads(row.file_data)
            figures = payload["figures"]
            if not isinstance(figures, (Report, StatsReport, UnitRecord)):  # only queue_with_files writes these rows
                raise TypeError(f"not report figures: {type(figures).__name__}")
            jobs.append(RenderJob(row_id, figures, payload["tz"]))
        except Exception:  # noqa: BLE001 - e.g. a row written by an older version: release its text anyway
            jobs.append(RenderJob(row_id, None, "UTC"))
    return jobs


def attach_files(session: Session, job: RenderJob, *, files: list[tuple[str, bytes]], error: str, texts: Texts) -> None:
    """Fill the placeholders with the rendered files (in order) and release the text and the files for sending;
    placeholders left without a file are dropped and the text says why. The caller commits."""
    text_row = session.get(Outbox, job.text_row_id)
    if text_row is None or text_row.state != OutboxState.RENDERING.value:
        return  # done already (two renderers raced, or the row was cleared by hand)
    try:
        if text_row.file_data is None:  # cleared by hand: release the text without its files
            raise ValueError("no figures on the text row")
        payload = pickle.loads(text_row.file_data)
        file_ids, files_note = list(payload["file_ids"]), str(payload["files_note"])
    except Exception:  # noqa: BLE001
        file_ids, files_note = [], "report.files"
    placeholders = [row for row in (session.get(Outbox, i) for i in file_ids) if row is not None]
    made = 0
    # Not strict: a failed render has fewer files than placeholders (those left over are dropped below), and a
    # placeholder deleted by hand leaves a file over.
    for row, (_, data) in zip(placeholders, files, strict=False):
        row.file_data, row.state = data, OutboxState.PENDING.value
        session.add(row)
        made += 1
    for row in placeholders[made:]:
        session.delete(row)
    text = text_row.text
    if error:  # a report without its files is still worth sending
        text += "\n" + texts.t("report.chart_unavailable", reason=error)
    if made:
        text += "\n" + texts.t(files_note)
    text_row.text, text_row.file_data, text_row.state = text, None, OutboxState.PENDING.value
    session.add(text_row)


def waiting(session: Session) -> int:
    """How many reports wait for their files."""
    return len(
        session.exec(select(Outbox.id).where(Outbox.state == OutboxState.RENDERING.value, Outbox.file_name == "")).all()
    )


def queue_relay_report(
    session: Session,
    *,
    report: Report,
    now: datetime,
    texts: Texts,
    tz_key: str,
    chat_kind: ChatKind,
    chat_id: str,
) -> str:
    """Queue a relay report for a chat: its text now, the .xlsx and the chart once rendered; returns the text.

    A period without pushes has nothing to tabulate: its text (which says so) goes alone, with no empty files and
    no "明细见下方表格和图表"."""
    text = compose.report_text(texts, report)
    if not report.pushes:
        outbox.queue(session, now=now, chat_kind=chat_kind, chat_id=chat_id, text=text)
        return text
    queue_with_files(
        session,
        now=now,
        chat_kind=chat_kind,
        chat_id=chat_id,
        text=text,
        figures=report,
        tz_key=tz_key,
        file_names=[f"{report.title}.xlsx", f"{report.title}.png"],
        files_note="report.files",
    )
    return text


# ---- the incident figures' 通报 -------------------------------------------------------------------------


def queue_stats_report(
    session: Session,
    *,
    period: tuple[date, date],
    now: datetime,
    texts: Texts,
    library: AlertLibrary,
    chat_kind,
    chat_id: str,
    checkpoints: Sequence[tuple[int, int]] = DEFAULT_CHECKPOINTS,
) -> StatsReport:
    """Queue the 通报 of one stored period for a chat: its text now, the .xlsx and the chart once rendered."""
    report = build_stats_report(
        session, period_start=period[0], period_end=period[1], library=library, checkpoints=checkpoints
    )
    text = compose.stats_report_text(texts, report)
    if report.towns:
        stem = f"警情通报（{period_label(texts, *period)}）"
        queue_with_files(
            session,
            now=now,
            chat_kind=chat_kind,
            chat_id=chat_id,
            text=text,
            figures=report,
            tz_key="UTC",
            file_names=[f"{stem}.xlsx", f"{stem}.png"],
            files_note="stats.files",
        )
    else:
        outbox.queue(session, now=now, chat_kind=chat_kind, chat_id=chat_id, text=text)
    return report


def render_waiting_now(engine, texts: Texts) -> int:
    """Render and release every waiting report here and now (the CLI, which holds no bot lock); returns how many."""
    from zoneinfo import ZoneInfo

    from bot.reports import worker as report_worker
    from bot.storage.db import session as new_session

    with new_session(engine) as s:
        jobs = pending_jobs(s)
    for job in jobs:
        if job.figures is None:
            rendered = report_worker.Rendered([], "UnreadableFigures", "")
        else:
            rendered = report_worker.render_files(job.figures, ZoneInfo(job.tz_key))
        with new_session(engine) as s:
            attach_files(s, job, files=rendered.files, error=rendered.error, texts=texts)
            s.commit()
    return len(jobs)

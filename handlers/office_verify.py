"""核查 <单位> <日期>: 回访核查, a unit's record of the three months up to a victim's day, as text and an .xlsx."""

from __future__ import annotations

import re

from bot.chat.dispatch import CommandObject, Context
from bot.operations.reporting import queue_with_files
from bot.reports.verify import VerifyDateError, build_unit_record, parse_verify_day, summary_text
from bot.transport.base import Incoming
from handlers.office_records import find_unit

# A day at the end of the argument, typed without a space after the unit's name (核查 城关镇11月20日).
_TRAILING_DAY = re.compile(r"^(.*?\D)((?:\d{4}[-/.年])?\d{1,2}[-/.月]\d{1,2}[日号]?|今天|昨天|前天)$")


def split_unit_and_day(arg: str) -> tuple[str, str]:
    """The unit's name and the day as typed: split at the last space, or before a trailing day; "" where missing."""
    arg = arg.strip()
    name, _, when = arg.rpartition(" ")
    if name.strip():
        return name.strip(), when
    m = _TRAILING_DAY.match(arg)
    return (m.group(1).strip(), m.group(2)) if m else ("", "")


def on_verify(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """核查 海湖镇 2026-11-20: the summary and the missed pushes here, every push in the .xlsx after it."""
    name, when = split_unit_and_day(cmd.arg)
    if not name or not when:
        ctx.reply(msg, ctx.t("verify.usage"))
        return
    unit, error = find_unit(ctx, name.strip())
    if unit is None:
        ctx.reply(msg, error)
        return
    try:
        day = parse_verify_day(when, today=ctx.today)
    except VerifyDateError as exc:
        if exc.future and exc.day is not None:
            ctx.reply(msg, ctx.t("verify.future", text=when, day=f"{exc.day.year}年{exc.day.month}月{exc.day.day}日"))
        else:
            ctx.reply(msg, ctx.t("verify.bad_date", text=when))
        return
    record = build_unit_record(ctx.session, unit=unit, day=day, now=ctx.now, tz=ctx.tz)
    text = summary_text(ctx.texts, record)
    if record.rows:
        queue_with_files(
            ctx.session,
            now=ctx.now,
            chat_kind=msg.chat_kind,
            chat_id=msg.chat_id,
            text=text,
            figures=record,
            tz_key=record.tz_key,
            file_names=[f"{record.stem}.xlsx"],
            files_note="verify.files",
        )
    else:
        ctx.reply(msg, text)
    ctx.audit(msg, "verify", f"{unit.name} {day.isoformat()}: {len(record.rows)} pushes")

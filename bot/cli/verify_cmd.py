"""`relaybot verify <单位> <日期>`: the 回访核查 record on the terminal, and its .xlsx in a file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.config import Settings
from bot.content import Texts


class VerifyCliError(ValueError):
    """What to print instead (Chinese), and exit 1: an unknown unit, a bad or future day."""


def write_verify(
    engine, *, unit_name: str, day_text: str, now: datetime, settings: Settings, texts: Texts, out: Path | None
) -> str:
    """Build the record as the chat's 核查 does, write its .xlsx (to `out`, or 回访核查_单位_日期.xlsx here) when
    there were pushes, and return what to print."""
    from bot.chat.dispatch import Context
    from bot.content import load_library
    from bot.reports.verify import VerifyDateError, build_unit_record, parse_verify_day, summary_text
    from bot.storage.db import session
    from handlers.office_records import find_unit

    tz = settings.tz
    with session(engine) as s:
        ctx = Context(session=s, now=now, settings=settings, texts=texts, library=load_library())
        unit, error = find_unit(ctx, unit_name)
        if unit is None:
            raise VerifyCliError(error)
        try:
            day = parse_verify_day(day_text, today=now.astimezone(tz).date())
        except VerifyDateError as exc:
            if exc.future and exc.day is not None:
                day_words = f"{exc.day.year}年{exc.day.month}月{exc.day.day}日"
                raise VerifyCliError(texts.t("verify.future", text=day_text, day=day_words)) from None
            raise VerifyCliError(texts.t("verify.bad_date", text=day_text)) from None
        record = build_unit_record(s, unit=unit, day=day, now=now, tz=tz)
    text = summary_text(texts, record)
    if not record.rows:
        # Said, not silent: whoever asked for --out must not look for a file that is not there.
        return text + ("\n" + texts.t("verify_cli.not_written", out=out) if out is not None else "")
    from bot.reports.verify_render import render_record_xlsx

    path = out if out is not None else Path(f"{record.stem}.xlsx")
    path = path if path.suffix.lower() == ".xlsx" else path.with_suffix(".xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_record_xlsx(record, texts))
    return text + "\n" + texts.t("verify_cli.written", out=path)

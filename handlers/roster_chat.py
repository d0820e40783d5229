"""The roster sent in chat: an admin sends the .xlsx/.csv in the office group or privately, the bot tells it from
the incident figures by its header and answers with the same report as `relaybot roster import`.

An import that would deactivate units is not applied: it is kept (a row, so a restart keeps it) and the admin who
sent it confirms with 确认导入 within HOLD_MINUTES. Replies are a summary with the first few items of each list,
never the whole roster into a chat."""

from __future__ import annotations

import logging

from bot.chat.dispatch import Context, Router
from bot.chat.filters import from_admin, office_place
from bot.chat.parsing import strip_mentions
from bot.clock import show
from bot.content import load_texts
from bot.domain.roster import (
    HOLD_MINUTES,
    RosterError,
    RosterRead,
    drop_held_import,
    held_import,
    hold_import,
    import_roster,
    is_roster,
    outcome_lines,
    read_roster,
    refusal_lines,
)
from bot.textnorm import squeeze
from bot.transport.base import FileData, Incoming, MessageKind

log = logging.getLogger(__name__)

router = Router("roster")

CHAT_LIMIT = 5  # items per list and problems shown in a chat; the command line shows all
CONFIRM_WORDS = ("确认导入",)


def read_roster_upload(file: FileData) -> RosterRead | RosterError | None:
    """The slow part, run before the unit of work and outside its lock: None if the file is no roster (the
    incident figures, say), else the checked roster or why it cannot be imported."""
    if not is_roster(file.name, file.data):
        return None
    try:
        return read_roster(file.name, file.data)
    except RosterError as exc:
        return exc
    except Exception:  # a reader's bug must not lose the admin's file silently in a background task
        log.exception("reading the roster file %r failed", file.name)
        return RosterError(load_texts().t("roster_chat.read_failed"))


def on_roster_file(msg: Incoming, ctx: Context, read: RosterRead | RosterError) -> None:
    """Import the roster an admin sent, or keep it for 确认导入 if it would deactivate units."""
    name = msg.file.name if msg.file is not None else ""
    head = ctx.t("roster_chat.head", file=name)
    if isinstance(read, RosterError):
        ctx.audit(msg, "roster_import_refused", f"{name}: {len(read.problems)} problems")
        ctx.reply(msg, "\n".join([head, *read.notes, read.failure(limit=CHAT_LIMIT)]))
        return
    drop_held_import(ctx.session)  # a newer file replaces one still waiting
    report = import_roster(ctx.session, read.rows, columns=read.columns, apply=False)
    if report.deactivated_units:
        until = hold_import(
            ctx.session,
            read=read,
            file_name=name,
            by_id=msg.sender.contact_id,
            by_name=msg.sender.name,
            now=ctx.now,
        )
        ctx.audit(msg, "roster_import_held", f"{name}: deactivates {len(report.deactivated_units)} units")
        ask = ctx.t("roster_chat.confirm_ask", minutes=HOLD_MINUTES, until=show(until, ctx.tz))
        ctx.reply(msg, "\n".join([head, *refusal_lines(read, report, limit=CHAT_LIMIT), ask]))
        return
    report = import_roster(ctx.session, read.rows, columns=read.columns)
    ctx.audit(msg, "roster_import", f"{name}: {len(read.rows)} rows")
    ctx.reply(msg, "\n".join([head, *outcome_lines(read, report, preview=False, limit=CHAT_LIMIT)]))


def _confirm_text(msg: Incoming, ctx: Context) -> bool:
    return msg.kind == MessageKind.TEXT and squeeze(strip_mentions(msg.text)) in CONFIRM_WORDS


@router.message(from_admin, office_place, _confirm_text)
def on_confirm_import(msg: Incoming, ctx: Context) -> None:
    """确认导入: apply the roster this admin sent that deactivates units, within HOLD_MINUTES."""
    held = held_import(ctx.session)
    if held is None:
        ctx.reply(msg, ctx.t("roster_chat.nothing_held"))
        return
    if held.by_id != msg.sender.contact_id:
        ctx.reply(msg, ctx.t("roster_chat.not_yours", name=held.by_name or held.by_id))
        return
    drop_held_import(ctx.session)
    if ctx.now > held.until:
        ctx.reply(msg, ctx.t("roster_chat.expired", minutes=HOLD_MINUTES, file=held.file_name))
        return
    report = import_roster(ctx.session, held.read.rows, columns=held.read.columns)
    ctx.audit(msg, "roster_import", f"{held.file_name}: {len(held.read.rows)} rows, confirmed")
    lines = outcome_lines(held.read, report, preview=False, limit=CHAT_LIMIT)
    ctx.reply(msg, "\n".join([ctx.t("roster_chat.head", file=held.file_name), *lines]))

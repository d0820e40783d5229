"""Confirmations from liaisons in liaison groups: text, quote-replies and screenshots."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot import evidence_store
from bot.dispatch import Context, Router
from bot.models import ConfirmMethod, GroupKind, Liaison, Push, PushState, Unit
from bot.parsing import is_bare_ack, is_confirmation, parse_push_ref, parse_quote
from bot.people import first_notice, liaisons_of
from bot.relay import record_confirmation, unconfirmed_open_pushes
from bot.textnorm import squeeze
from bot.transport.base import Incoming, MessageKind
from handlers.filters import command, kind, not_from_admin, room_kind

log = logging.getLogger(__name__)
router = Router("liaison")


def _unit_names(ctx: Context) -> tuple[str, ...]:
    return tuple(ctx.session.exec(select(Unit.name).where(Unit.active == True)))  # noqa: E712


def _read_confirmation(msg: Incoming, ctx: Context) -> tuple[str, int | None] | None:
    """(method, explicit push number) if the text confirms a relay, else None."""
    names = _unit_names(ctx) + (msg.sender.name, msg.sender.group_nickname)
    quote = parse_quote(msg.text)
    if quote is not None:
        if not (is_confirmation(quote.reply, names) or is_bare_ack(quote.reply)):
            return None
        ref = parse_push_ref(quote.reply) or parse_push_ref(quote.quoted)
        if ref is None and "反诈预警" not in quote.quoted:
            # A reply quoting some other chat message is an ordinary text confirmation.
            return (ConfirmMethod.TEXT.value, None) if is_confirmation(quote.reply, names) else None
        return ConfirmMethod.QUOTE.value, ref
    if not is_confirmation(msg.text, names):
        return None
    return ConfirmMethod.TEXT.value, parse_push_ref(msg.text)


def _units_meant(msg: Incoming, liaisons: list[Liaison], ctx: Context) -> list[tuple[Unit, Liaison]]:
    """The sender's units; if they serve several and name one in the text, only that one."""
    pairs = [(ctx.session.get(Unit, l.unit_id), l) for l in liaisons]
    pairs = [(u, l) for u, l in pairs if u is not None and u.active]
    text = squeeze(msg.text)
    named = [(u, l) for u, l in pairs if squeeze(u.name) in text]
    return named or pairs


def _confirm(msg: Incoming, ctx: Context, method: str, ref: int | None) -> None:
    liaisons = liaisons_of(ctx.session, msg.sender.contact_id)
    if not liaisons:
        if method != ConfirmMethod.IMAGE.value and first_notice(
            ctx.session, kind="unregistered", key=msg.sender.contact_id, now=ctx.now
        ):
            ctx.reply(msg, ctx.t("confirm.unregistered"), mention_ids=(msg.sender.contact_id,))
        log.info("confirmation from %s who is not on the roster: ignored", msg.sender.contact_id)
        return
    for unit, liaison in _units_meant(msg, liaisons, ctx):
        if method == ConfirmMethod.IMAGE.value and _attach_to_recent(msg, ctx, unit):
            continue
        if ref is not None:
            push = ctx.session.get(Push, ref)
            if push is None or push.state == PushState.WITHDRAWN.value:
                ctx.reply(msg, ctx.t("confirm.no_such_push", n=ref), mention_ids=(msg.sender.contact_id,))
                return
        else:
            open_pushes = unconfirmed_open_pushes(ctx.session, unit.id, now=ctx.now)
            if not open_pushes:
                continue  # nothing left to confirm: a repeat, which changes nothing
            push = open_pushes[0]
        conf = record_confirmation(
            ctx.session,
            push=push,
            unit=unit,
            liaison=liaison,
            method=method,
            now=ctx.now,
            room_id=msg.chat_id,
            message_id=msg.message_id,
            text=msg.text if method != ConfirmMethod.IMAGE.value else (msg.image.name if msg.image else ""),
        )
        if conf is not None and method == ConfirmMethod.IMAGE.value:
            _store_screenshot(msg, ctx, conf)


def _store_screenshot(msg: Incoming, ctx: Context, conf) -> None:
    """Keep the image as the confirmation's evidence; the check runs later, off the chat's path."""
    if msg.image is None:
        return
    try:
        name = evidence_store.save_image(Path(ctx.settings.evidence_dir), msg.image.data)
    except (OSError, ValueError):
        log.exception("could not store the screenshot of message %s", msg.message_id)
        return
    evidence_store.attach(ctx.session, conf, name, now=ctx.now)


def _attach_to_recent(msg: Incoming, ctx: Context, unit: Unit) -> bool:
    """A screenshot shortly after the unit's text confirmation is that confirmation's evidence."""
    window = timedelta(minutes=ctx.settings.evidence_window_minutes)
    conf = evidence_store.recent_without_evidence(ctx.session, unit.id, now=ctx.now, window=window)
    if conf is None:
        return False
    _store_screenshot(msg, ctx, conf)
    return True


@router.message(room_kind(GroupKind.LIAISON), kind(MessageKind.TEXT))
def on_confirmation(msg: Incoming, ctx: Context) -> bool:
    """已转发 / 已转 #3 / a quote-reply to a push: record the unit's confirmation (acknowledged later)."""
    found = _read_confirmation(msg, ctx)
    if found is None:
        return False
    _confirm(msg, ctx, *found)
    return True


@router.message(room_kind(GroupKind.LIAISON), kind(MessageKind.IMAGE))
def on_screenshot(msg: Incoming, ctx: Context) -> bool:
    """A screenshot from a liaison whose unit has an open push counts as a confirmation of the latest one."""
    _confirm(msg, ctx, ConfirmMethod.IMAGE.value, None)
    return True


@router.message(not_from_admin, command("帮助"))
def on_liaison_help(msg: Incoming, ctx: Context) -> None:
    """帮助 from anyone but an admin: how to confirm."""
    ctx.reply(msg, ctx.t("help.liaison"))

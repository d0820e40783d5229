"""Confirmations from liaisons in liaison groups: text, quote-replies and screenshots."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot import evidence_store
from bot.dispatch import Context, Router
from bot.models import ConfirmMethod, GroupKind, Liaison, Push, PushState, Unit
from bot.parsing import is_bare_ack, is_confirmation, parse_push_ref, parse_quote
from bot.people import first_notice, liaisons_with_units
from bot.relay import record_confirmation, unconfirmed_open_pushes
from bot.textnorm import clean, squeeze
from bot.transport.base import Incoming, MessageKind
from handlers.filters import command, kind, not_from_admin, room_kind

log = logging.getLogger(__name__)
router = Router("liaison")


@dataclass(frozen=True)
class UnitNames:
    """The active units' names, and what `is_confirmation` makes of each: its squeezed form's characters."""

    names: tuple[str, ...]
    chars: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, names: tuple[str, ...]) -> UnitNames:
        return cls(names, tuple(frozenset(squeeze(n)) for n in names))

    def that_can_occur_in(self, squeezed_text: str) -> tuple[str, ...]:
        """The names, in order, whose squeezed form has no character missing from `squeezed_text`.

        `is_confirmation` removes names (squeezed, longest first) from the squeezed text; removing only ever
        deletes characters, so a name with a character the text lacks is never found at any step and its
        removal changes nothing. Passing only the others gives the same answer for much less work.
        """
        have = set(squeezed_text)
        return tuple(n for n, c in zip(self.names, self.chars) if c <= have)


# The last roster's UnitNames. The names are read from the database in every unit of work (one small query,
# so a roster imported by another process counts at once) and are the cache's key: any change to the active
# units' names, an import, a rename, a unit (de)activated, makes a new entry.
_unit_names_cache: UnitNames | None = None
_ACTIVE_UNIT_NAMES = select(Unit.name).where(Unit.active == True)  # noqa: E712  (built once)


def _unit_names(ctx: Context) -> UnitNames:
    global _unit_names_cache
    names = tuple(ctx.session.exec(_ACTIVE_UNIT_NAMES))
    cached = _unit_names_cache
    if cached is None or cached.names != names:
        cached = _unit_names_cache = UnitNames.of(names)
    return cached


def _is_confirmation(text: str, units: UnitNames, sender_names: tuple[str, str]) -> bool:
    """`is_confirmation(text, unit names + sender names)`, with only the unit names that can matter."""
    return is_confirmation(text, units.that_can_occur_in(squeeze(clean(text))) + sender_names)


def _read_confirmation(msg: Incoming, ctx: Context) -> tuple[str, int | None] | None:
    """(method, explicit push number) if the text confirms a relay, else None."""
    units = _unit_names(ctx)
    sender_names = (msg.sender.name, msg.sender.group_nickname)
    quote = parse_quote(msg.text)
    if quote is not None:
        if not (_is_confirmation(quote.reply, units, sender_names) or is_bare_ack(quote.reply)):
            return None
        ref = parse_push_ref(quote.reply) or parse_push_ref(quote.quoted)
        if ref is None and "反诈预警" not in quote.quoted:
            # A reply quoting some other chat message is an ordinary text confirmation.
            return (ConfirmMethod.TEXT.value, None) if _is_confirmation(quote.reply, units, sender_names) else None
        return ConfirmMethod.QUOTE.value, ref
    if not _is_confirmation(msg.text, units, sender_names):
        return None
    return ConfirmMethod.TEXT.value, parse_push_ref(msg.text)


def _units_meant(msg: Incoming, liaisons: list[tuple[Liaison, Unit]]) -> list[tuple[Unit, Liaison]]:
    """The sender's units; if they serve several and name one in the text, only that one."""
    pairs = [(u, l) for l, u in liaisons if u.active]
    text = squeeze(msg.text)
    named = [(u, l) for u, l in pairs if squeeze(u.name) in text]
    return named or pairs


def _confirm(msg: Incoming, ctx: Context, method: str, ref: int | None) -> None:
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    if not liaisons:
        if method != ConfirmMethod.IMAGE.value and first_notice(
            ctx.session, kind="unregistered", key=msg.sender.contact_id, now=ctx.now
        ):
            ctx.reply(msg, ctx.t("confirm.unregistered"), mention_ids=(msg.sender.contact_id,))
        log.info("confirmation from %s who is not on the roster: ignored", msg.sender.contact_id)
        return
    for unit, liaison in _units_meant(msg, liaisons):
        if method == ConfirmMethod.IMAGE.value and _attach_to_recent(msg, ctx, unit):
            continue
        if ref is not None:
            push = ctx.session.get(Push, ref)
            if push is None or push.state == PushState.WITHDRAWN.value:
                ctx.reply(msg, ctx.t("confirm.no_such_push", n=ref), mention_ids=(msg.sender.contact_id,))
                return
        else:
            open_pushes = unconfirmed_open_pushes(ctx.session, unit.id, now=ctx.now, limit=1)
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
            known_unconfirmed=ref is None,  # found just above by unconfirmed_open_pushes
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

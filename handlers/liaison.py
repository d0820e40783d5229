"""Liaisons in liaison groups: confirmations (text, quote-replies, 接龙, screenshots, 是 to a question), recalls,
and the questions and hints the bot adds to its next coalesced message."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from bot.chat.dispatch import CommandObject, Context, Router, command_filter
from bot.chat.filters import kind, not_from_admin, room_kind
from bot.chat.parsing import parse_command, parse_push_ref, read_message
from bot.chat.reading import OTHER_CONTENT, Reading, Verdict, read_reply
from bot.chat.wechat_formats import GroupNote, group_note, is_rate_limit_notice, is_xml, sysmsg, xml_quote
from bot.domain import evidence as evidence_store
from bot.domain import notes
from bot.domain.people import claimed_by_another, first_notice, liaisons_with_units
from bot.domain.relay import LATE_WINDOW, aimed_at, latest_push, record_confirmation, unconfirmed_open_pushes
from bot.storage.models import (
    Alert,
    Confirmation,
    ConfirmMethod,
    GroupKind,
    Liaison,
    NoteKind,
    Push,
    PushState,
    Unit,
    pk,
)
from bot.textnorm import clean, squeeze
from bot.transport.base import Incoming, MessageKind

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
        return tuple(n for n, c in zip(self.names, self.chars, strict=True) if c <= have)


# The last roster's UnitNames. The names are read from the database in every unit of work (one small query,
# so a roster imported by another process counts at once) and are the cache's key: any change to the active
# units' names, an import, a rename, a unit (de)activated, makes a new entry.
_unit_names_cache: UnitNames | None = None
_ACTIVE_UNIT_NAMES = select(Unit.name).where(Unit.active == True)  # noqa: E712  (built once)


def _unit_names(ctx: Context) -> UnitNames:
    global _unit_names_cache
    if "unit_names" in ctx.session.info:  # read once per unit of work
        return ctx.session.info["unit_names"]
    names = tuple(ctx.session.exec(_ACTIVE_UNIT_NAMES))
    cached = _unit_names_cache
    if cached is None or cached.names != names:
        cached = _unit_names_cache = UnitNames.of(names)
    ctx.session.info["unit_names"] = cached
    return cached


def _reading(text: str, units: UnitNames, sender_names: tuple[str, str]) -> Reading:
    """`read_reply(text, unit names + sender names)`, with only the unit names that can matter."""
    return read_reply(text, units.that_can_occur_in(squeeze(clean(text))) + sender_names)


@dataclass(frozen=True)
class Said:
    """What a liaison's message said: how it confirms (if it does), the reading, and the pushes it names."""

    method: str
    reading: Reading
    refs: tuple[int, ...]
    about_push: bool  # it quoted a push or named one: worth a hint if it did not confirm
    reply: str = ""  # the words that were read (under a quote, only the reply)


def _read_message(msg: Incoming, ctx: Context) -> Said:
    """Read a text or a quote reply (pad-style text or type-57 XML) from a liaison group."""
    if msg.kind != MessageKind.TEXT and xml_quote(msg.text) is None:
        return Said(ConfirmMethod.TEXT.value, Reading(Verdict.UNRELATED, ""), (), False, "")
    units = _unit_names(ctx)
    names = units.that_can_occur_in(squeeze(clean(msg.text))) + (msg.sender.name, msg.sender.group_nickname)
    said = read_message(msg.text, names)
    method = ConfirmMethod.QUOTE.value if said.quote_of_push else ConfirmMethod.TEXT.value
    reading, refs = said.reading, said.refs
    if not refs and reading.verdict in (Verdict.YES, Verdict.UNSURE):
        named = _pushes_named(ctx, msg.text)
        if named:
            # 刷单返利那条已转: the alert's case type names the push.
            refs = tuple(pk(p) for p in named)
            if reading.why == OTHER_CONTENT:
                reading = Reading(Verdict.YES, "按案件类型找到推送", reading.clause, refs)
    return Said(method, reading, refs, said.about_push or bool(refs), said.reply)


def _pushes_named(ctx: Context, text: str) -> list[Push]:
    """Recent pushes (still confirmable) whose case type or one of its short names the text contains."""
    said = squeeze(text)
    if not any(len(name) >= 2 and name in said for name in ctx.library.names()):
        return []  # no case type named (most replies): no query
    found: dict[str, list[Push]] = {}  # case type -> the pushes of it that the text names
    for push in ctx.session.exec(
        select(Push)
        .where(
            col(Push.state).in_([PushState.OPEN.value, PushState.CLOSED.value]), Push.created_at > ctx.now - LATE_WINDOW
        )
        .order_by(col(Push.id).desc())
        .limit(20)
    ):
        alert = ctx.session.get(Alert, push.alert_id)
        if alert is None or not alert.case_type:
            continue
        item = ctx.library.find(alert.case_type)
        words = {alert.case_type, *(item.aliases if item else ())}
        if any(len(w) >= 2 and squeeze(w) in said for w in words):
            found.setdefault(alert.case_type, []).append(push)
    # One name can fit several pushes of the same type; only an unambiguous one is used.
    return [pushes[0] for pushes in found.values()] if all(len(p) == 1 for p in found.values()) else []


def _units_meant(
    msg: Incoming, liaisons: list[tuple[Liaison, Unit]], text: str | None = None
) -> list[tuple[Unit, Liaison]]:
    """The sender's units; if they serve several and name one in the text, only that one."""
    pairs = [(unit, liaison) for liaison, unit in liaisons if unit.active]
    said = squeeze(msg.text if text is None else text)
    named = [(unit, liaison) for unit, liaison in pairs if squeeze(unit.name) in said]
    return named or pairs


# Pushes sent within this long of each other went out together: one bare 已转发 answers all of them.
BATCH = timedelta(minutes=10)


def _pushes_for(ctx: Context, unit: Unit, said: Said) -> tuple[list[Push], str]:
    """The pushes a confirmation is for; else "which" (ask which one) or a sentence to answer with."""
    if said.refs:
        pushes, unknown, withdrawn = [], [], []
        for ref in said.refs:
            push = ctx.session.get(Push, ref)
            if push is None:
                unknown.append(ref)
            elif push.state == PushState.WITHDRAWN.value:
                withdrawn.append(ref)
            else:
                pushes.append(push)
        # #1 #2 已转发 with no #2: #1 is recorded all the same, and the liaison is told about #2.
        problems = [ctx.t("confirm.no_such_push", n="、#".join(map(str, unknown)))] if unknown else []
        problems += [ctx.t("push_withdrawn.confirm", n="、#".join(map(str, withdrawn)))] if withdrawn else []
        return pushes, "".join(problems)
    owed = unconfirmed_open_pushes(ctx.session, pk(unit), now=ctx.now)
    if said.reading.all_pushes:
        return owed, ""
    # Pushes past their deadline still take late confirmations, but a bare 已转发 is about a push still open;
    # only when none is open does it go to the newest late one.
    running = [p for p in owed if p.state == PushState.OPEN.value]
    if len(running) <= 1:
        return (running or owed)[:1], ""
    newest = running[0].created_at
    if all(newest - p.created_at <= BATCH for p in running):
        return running, ""
    return [], "which"


def _confirm_text(msg: Incoming, ctx: Context, said: Said, text: str) -> None:
    """A confirmation in words: record it for each push meant, or ask which push."""
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    if not liaisons:
        _tell_unregistered(msg, ctx)
        return
    if _names_only_other_units(ctx, liaisons, text):
        log.info("%s confirmed for another unit (%r): not counted", msg.sender.contact_id, text[:80])
        return
    if _names_another_unit(ctx, liaisons, squeeze(text)):
        # 东城街道已转发 from 城关镇's liaison: never credited across units; ask about the sender's own unit.
        _ask_or_hint(msg, ctx, Said(said.method, Reading(Verdict.UNSURE, "说的是别的单位"), said.refs, True, text))
        return
    for unit, liaison in _units_meant(msg, liaisons, text):
        pushes, problem = _pushes_for(ctx, unit, said)
        # No open push of its own (nothing owed, or only a late one): a bare word may be about a push for others.
        late_only = all(p.state != PushState.OPEN.value for p in pushes) and problem != "which"
        if late_only and not (said.refs or said.reading.all_pushes) and _newest_is_for_others(msg, ctx, unit):
            continue
        if problem == "which":
            owed = sorted(
                (
                    p
                    for p in unconfirmed_open_pushes(ctx.session, pk(unit), now=ctx.now)
                    if p.state == PushState.OPEN.value
                ),
                key=pk,
            )
            key = f"{unit.id}:{','.join(str(p.id) for p in owed)}"
            if not first_notice(ctx.session, kind="which", key=key, now=ctx.now):
                continue  # asked already: a repeated 已转发 does not ask again
            _note(
                msg,
                ctx,
                NoteKind.WHICH,
                unit,
                push_ids=[pk(p) for p in owed],
                text=ctx.t("confirm.which", unit=unit.name, refs="、".join(f"#{p.id}" for p in owed)),
            )
        else:
            if problem:
                # About a confirmation recorded all the same (#1 #2 已转发, no #2): not a courtesy reply.
                ctx.reply(msg, problem, mention_ids=(msg.sender.contact_id,), courtesy=False)
            _record(
                msg,
                ctx,
                unit,
                liaison,
                pushes,
                said.method,
                text,
                explicit=bool(said.refs),
                known_unconfirmed=not said.refs,
            )


def _note(
    msg: Incoming,
    ctx: Context,
    kind: NoteKind,
    unit: Unit,
    *,
    push_ids: list[int],
    text: str,
    contact_id: str | None = None,
) -> None:
    """A line about `unit` and `push_ids` for the group's next coalesced message, about (or to) the sender."""
    notes.add(
        ctx.session,
        room_id=msg.chat_id,
        kind=kind,
        contact_id=msg.sender.contact_id if contact_id is None else contact_id,
        unit_id=unit.id,
        push_ids=push_ids,
        now=ctx.now,
        message_id=msg.message_id,
        text=text,
    )


def _newest_is_for_others(msg: Incoming, ctx: Context, unit: Unit) -> bool:
    """A bare 已转发 (or a screenshot) from a unit that owes no open push (the caller knows), just after a
    targeted push aimed at other units: it is about that push, not a late word on an older one. Nothing is
    recorded; the group's next message says once that the unit need not relay it."""
    newest = _newest_open_push(ctx)
    if newest is None or aimed_at(ctx.session, pk(newest), pk(unit)):
        return False
    if first_notice(ctx.session, kind="not_aimed", key=f"{unit.id}:{newest.id}", now=ctx.now):
        _note(
            msg,
            ctx,
            NoteKind.HINT,
            unit,
            push_ids=[pk(newest)],
            text=ctx.t("confirm.not_aimed", unit=unit.name, n=newest.id, target=newest.target),
        )
    log.info("%s: #%s is not aimed at %s; nothing recorded", msg.sender.contact_id, newest.id, unit.name)
    return True


def _names_only_other_units(ctx: Context, liaisons: list[tuple[Liaison, Unit]], text: str) -> bool:
    """`代城关镇、西湖镇已转发` from another unit's liaison: a confirmation is never credited across units."""
    said = squeeze(text)
    if not re.search(r"[代替帮]", said):
        return False
    return _names_another_unit(ctx, liaisons, said)


def _names_another_unit(ctx: Context, liaisons: list[tuple[Liaison, Unit]], squeezed: str) -> bool:
    """The text names an active unit that is not the sender's, and none of the sender's."""
    own = {u.name for _, u in liaisons}
    if any(squeeze(name) in squeezed for name in own):
        return False
    return any(squeeze(name) in squeezed for name in _unit_names(ctx).names if name not in own)


def _record(
    msg: Incoming,
    ctx: Context,
    unit: Unit,
    liaison: Liaison,
    pushes: list[Push],
    method: str,
    text: str,
    *,
    explicit: bool,
    known_unconfirmed: bool = False,
) -> None:
    """Record the unit's confirmation of each push; `known_unconfirmed`: they came from unconfirmed_open_pushes."""
    newest = None if explicit or len(pushes) != 1 else _newest_open_push(ctx)
    for push in pushes:
        conf = record_confirmation(
            ctx.session,
            push=push,
            unit=unit,
            liaison=liaison,
            method=method,
            now=ctx.now,
            room_id=msg.chat_id,
            message_id=msg.message_id,
            text=text,
            known_unconfirmed=known_unconfirmed,
        )
        if conf is not None and newest is not None and push.id != newest.id:
            # A bare 已转发 (say a backup liaison's, after the main one confirmed the newest) landed on an
            # older push: the coalesced message says so.
            _note(
                msg,
                ctx,
                NoteKind.MOVED,
                unit,
                push_ids=[pk(push)],
                contact_id="",
                text=ctx.t(
                    "confirm.moved" if aimed_at(ctx.session, pk(newest), pk(unit)) else "confirm.moved_not_aimed",
                    unit=unit.name,
                    n=push.id,
                    newest=newest.id,
                ),
            )


def _newest_open_push(ctx: Context) -> Push | None:
    return ctx.session.exec(
        select(Push).where(Push.state == PushState.OPEN.value).order_by(col(Push.id).desc()).limit(1)
    ).first()


def _tell_unregistered(msg: Incoming, ctx: Context) -> None:
    if claimed_by_another(ctx.session, msg.sender.contact_id):
        # Same name as a roster person recognised earlier as someone else: the office was told and decides.
        if first_notice(ctx.session, kind="claimant", key=msg.sender.contact_id, now=ctx.now):
            ctx.reply(msg, ctx.t("confirm.claim_pending"), mention_ids=(msg.sender.contact_id,))
        log.info("confirmation from %s who claims a roster entry bound to someone else: ignored", msg.sender.contact_id)
        return
    if first_notice(ctx.session, kind="unregistered", key=msg.sender.contact_id, now=ctx.now):
        # Once per person ever: never dropped for having asked 帮助 within the hour, or he would think it counted.
        ctx.reply(msg, ctx.t("confirm.unregistered"), mention_ids=(msg.sender.contact_id,), given_once=True)
    log.info("confirmation from %s who is not on the roster: ignored", msg.sender.contact_id)


def _ask_or_hint(msg: Incoming, ctx: Context, said: Said) -> bool:
    """Not a confirmation: ask once if it was unsure, or say once how to confirm if it was about a push."""
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    if not liaisons:
        return False
    unit = _units_meant(msg, liaisons)[0][0]
    if said.reading.verdict is Verdict.UNSURE:
        pushes, problem = _pushes_for(ctx, unit, said)
        if problem == "which":
            pushes = unconfirmed_open_pushes(ctx.session, pk(unit), now=ctx.now, limit=1)
        elif problem and not pushes:
            return False
        if not pushes:
            return False
        push = pushes[0]
        if first_notice(ctx.session, kind="ask", key=f"{msg.sender.contact_id}:{push.id}", now=ctx.now):
            _note(
                msg,
                ctx,
                NoteKind.ASK,
                unit,
                push_ids=[pk(push)],
                text=ctx.t("confirm.ask", unit=unit.name, n=push.id),
            )
        log.info(
            "asked %s whether #%s was relayed: %s「%s」",
            msg.sender.contact_id,
            push.id,
            said.reading.why,
            said.reading.clause,
        )
        return True
    if said.about_push:
        about = ctx.session.get(Push, said.refs[0]) if said.refs else latest_push(ctx.session)
        if about is None or about.state == PushState.WITHDRAWN.value:
            return False
        if ctx.session.exec(
            select(Confirmation.id).where(Confirmation.push_id == about.id, Confirmation.unit_id == unit.id)
        ).first():
            return True  # 收到 after the unit confirmed: nothing to explain
        if first_notice(ctx.session, kind="hint", key=f"{msg.sender.contact_id}:{about.id}", now=ctx.now):
            _note(
                msg,
                ctx,
                NoteKind.HINT,
                unit,
                push_ids=[pk(about)],
                text=ctx.t("confirm.hint", unit=unit.name, n=about.id),
            )
        return True
    return False


# 已转发 itself is read as a confirmation anyway; these only count as the answer to a question.
_YES = re.compile(r"(?:是|是的|对|对的|嗯|嗯嗯|恩|yes|确认)[啊呀的了哈]*")
_ALL = re.compile(r"(?:都|均|全部|全都|两条都|都是)(?:已)?(?:转发?|发|是)?(?:了)?")


def _answer(msg: Incoming, ctx: Context) -> bool:
    """A short answer to the bot's open question to this liaison in this room: 是 / #3 / 都已转发."""
    body = re.sub(r"[^\w#]|_", "", clean(msg.text).lower())
    if not (_YES.fullmatch(body) or _ALL.fullmatch(body) or re.fullmatch(r"(?:#?\d{1,7})+", body)):
        return False  # not a short answer: no need to look for a question
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    note = notes.open_question(ctx.session, room_id=msg.chat_id, unit_ids=[pk(u) for _, u in liaisons])
    if note is None:
        return False
    asked = [int(p) for p in note.push_ids.split(",") if p]
    if (
        note.kind == NoteKind.ASK.value
        and _YES.fullmatch(body)
        or note.kind == NoteKind.WHICH.value
        and _ALL.fullmatch(body)
    ):
        chosen = asked
    elif note.kind == NoteKind.WHICH.value and re.fullmatch(r"(?:#?\d{1,7})+", body):
        chosen = [n for n in map(int, re.findall(r"\d{1,7}", body)) if n in asked]
    else:
        return False
    unit = ctx.session.get(Unit, note.unit_id) if note.unit_id else None
    liaison = next((own for own, u in liaisons if unit is not None and u.id == unit.id), None)
    if not chosen or unit is None or liaison is None:
        return False
    pushes = [p for p in (ctx.session.get(Push, n) for n in chosen) if p and p.state != PushState.WITHDRAWN.value]
    _record(msg, ctx, unit, liaison, pushes, ConfirmMethod.ANSWER.value, msg.text, explicit=True)
    notes.answered(ctx.session, note, now=ctx.now)
    return True


def _confirm_image(msg: Incoming, ctx: Context) -> None:
    """A screenshot: evidence of a recent text confirmation, or a confirmation of the unit's newest open push."""
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    if not liaisons:
        log.info("screenshot from %s who is not on the roster: ignored", msg.sender.contact_id)
        return
    for unit, liaison in _units_meant(msg, liaisons):
        if _attach_to_recent(msg, ctx, unit):
            continue
        open_pushes = unconfirmed_open_pushes(ctx.session, pk(unit), now=ctx.now, limit=1)
        if (not open_pushes or open_pushes[0].state != PushState.OPEN.value) and _newest_is_for_others(msg, ctx, unit):
            continue
        if not open_pushes:
            continue  # nothing left to confirm: a repeat, which changes nothing
        conf = record_confirmation(
            ctx.session,
            push=open_pushes[0],
            unit=unit,
            liaison=liaison,
            method=ConfirmMethod.IMAGE.value,
            now=ctx.now,
            room_id=msg.chat_id,
            message_id=msg.message_id,
            text=msg.image.name if msg.image else "",
            known_unconfirmed=True,
        )
        if conf is not None:
            _store_screenshot(msg, ctx, conf)


def _store_screenshot(msg: Incoming, ctx: Context, conf) -> None:
    """Keep the image as the confirmation's evidence; the check runs later, off the chat's path.

    An image that cannot be kept (over the size limit: a photo sent as 原图; or one the transport could not
    fetch) leaves the confirmation standing as 未核验 with the reason, and the sender is told once a day."""
    if msg.image is None:
        _not_kept(msg, ctx, conf, "not_received")
        return
    if not msg.image.data or len(msg.image.data) > evidence_store.MAX_IMAGE_BYTES:
        _not_kept(msg, ctx, conf, "too_big")
        return
    try:
        name = evidence_store.save_image(Path(ctx.settings.evidence_dir), msg.image.data)
    except (OSError, ValueError):
        log.exception("could not store the screenshot of message %s", msg.message_id)
        return
    evidence_store.attach(ctx.session, conf, name, now=ctx.now)


def _not_kept(msg: Incoming, ctx: Context, conf, why: str) -> None:
    log.warning("the image of message %s is not kept as evidence: %s", msg.message_id, why)
    reason = ctx.t(f"evidence.{why}", mb=evidence_store.MAX_IMAGE_BYTES // 1_000_000)
    evidence_store.mark_unchecked(ctx.session, conf, reason, now=ctx.now)
    key = f"{msg.sender.contact_id}:{ctx.today.isoformat()}"
    if first_notice(ctx.session, kind="evidence_not_kept", key=key, now=ctx.now):
        ctx.reply(msg, ctx.t("evidence.not_kept", reason=reason), mention_ids=(msg.sender.contact_id,))


def _attach_to_recent(msg: Incoming, ctx: Context, unit: Unit) -> bool:
    """A screenshot shortly after the unit's text confirmation is that confirmation's evidence."""
    window = timedelta(minutes=ctx.settings.evidence_window_minutes)
    conf = evidence_store.recent_without_evidence(ctx.session, pk(unit), now=ctx.now, window=window)
    if conf is None:
        return False
    _store_screenshot(msg, ctx, conf)
    return True


@router.message(room_kind(GroupKind.LIAISON), kind(MessageKind.TEXT, MessageKind.UNKNOWN))
def on_confirmation(msg: Incoming, ctx: Context) -> bool:
    """已转发 / 已转 #3 / a quote of a push / a 接龙 entry / 是 to the bot's question: record it, or ask, or hint."""
    note = group_note(msg.text)
    if note is not None:
        return on_group_note(msg, ctx, note)
    if msg.kind == MessageKind.UNKNOWN and xml_quote(msg.text) is None:
        return False  # another app message (a 视频号 share, a mini program): nothing to read here
    if msg.kind == MessageKind.TEXT and _answer(msg, ctx):
        return True
    said = _read_message(msg, ctx)
    if said.reading.confirmed:
        _confirm_text(msg, ctx, said, said.reply or msg.text)
        return True
    if msg.kind == MessageKind.TEXT and parse_command(msg.text) is not None:
        return False  # 提醒 #1 typed by a liaison: the command routes answer it (单位群已转发 was read above)
    return _ask_or_hint(msg, ctx, said)


def on_group_note(msg: Incoming, ctx: Context, note: GroupNote) -> bool:
    """A 群接龙: the sender's own new entries count for the sender's unit; other people's entries never do."""
    liaisons = liaisons_with_units(ctx.session, msg.sender.contact_id)
    new = notes.new_entries(ctx.session, room_id=msg.chat_id, entries=[e.text for e in note.entries], now=ctx.now)
    if not liaisons:
        return True
    if note.has_authors:
        mine = [e.text for e in note.entries if e.author_id == msg.sender.contact_id]
    else:
        mine = new  # title-only puppets: the sender's line is the one that was not there before
    header_ref = parse_push_ref(note.header)
    units = _unit_names(ctx)
    sender_names = (msg.sender.name, msg.sender.group_nickname)
    for text in mine:
        if _names_another_unit(ctx, liaisons, squeeze(text)):
            continue  # a line naming another unit is never credited to the sender
        reading = _reading(text, units, sender_names)
        refs = reading.refs or ((header_ref,) if header_ref else ())
        if reading.confirmed:
            _confirm_text(msg, ctx, Said(ConfirmMethod.NOTE.value, reading, refs, True), text)
        elif reading.verdict is Verdict.UNSURE:
            _ask_or_hint(msg, ctx, Said(ConfirmMethod.NOTE.value, reading, refs, True))  # 8. 白沙镇 转了一部分
    return True


@router.message(room_kind(GroupKind.LIAISON), kind(MessageKind.RECALL))
def on_recall(msg: Incoming, ctx: Context) -> bool:
    """A liaison recalled the message that confirmed: the confirmation goes. A pat (拍一拍) is ignored."""
    found = sysmsg(msg.text)
    if found is None or found.kind != "revokemsg" or not found.recalled_id:
        return True
    recalled = ctx.session.exec(
        select(Confirmation).where(
            Confirmation.evidence_message_id == found.recalled_id, Confirmation.room_id == msg.chat_id
        )
    ).all()
    for conf in recalled:
        liaison = ctx.session.get(Liaison, conf.liaison_id) if conf.liaison_id else None
        if liaison is None or liaison.contact_id != msg.sender.contact_id:
            continue  # only the person who confirmed can take it back
        unit = ctx.session.get_one(Unit, conf.unit_id)  # a confirmation's unit is never deleted
        _note(
            msg,
            ctx,
            NoteKind.RECALL,
            unit,
            push_ids=[conf.push_id],
            text=ctx.t("confirm.recalled", unit=unit.name, n=conf.push_id),
        )
        ctx.audit(msg, "recall", f"#{conf.push_id} {unit.name}: message {found.recalled_id} recalled")
        ctx.session.delete(conf)
    return True


@router.message(kind(MessageKind.SYSTEM, MessageKind.UNKNOWN))
def on_system_notice(msg: Incoming, ctx: Context) -> bool:
    """WeChat's silent rate limit: a send was reported as done, then this notice came. Pause as for a refusal."""
    if is_xml(msg.text) or not is_rate_limit_notice(msg.text):
        return False
    ctx.rate_limit_notice = msg.text[:200]
    return True


@router.message(room_kind(GroupKind.LIAISON), kind(MessageKind.IMAGE))
def on_screenshot(msg: Incoming, ctx: Context) -> bool:
    """A screenshot from a liaison whose unit has an open push counts as a confirmation of the latest one."""
    _confirm_image(msg, ctx)
    return True


@router.message(not_from_admin, command_filter("帮助"))
def on_liaison_help(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """帮助 from anyone but an admin: how to confirm."""
    ctx.reply(msg, ctx.t("help.liaison"))

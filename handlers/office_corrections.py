"""Office commands that correct the record: 补登, 撤销, 免转 and 认错 (admins only, like the other office commands)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import col, select

from bot.chat.dispatch import CommandObject, Context
from bot.chat.parsing import parse_correction
from bot.domain import corrections
from bot.domain.corrections import Outcome
from bot.domain.people import bound_by_name, unbind
from bot.operations import office as office_actions
from bot.operations.office import Actor
from bot.storage.models import Confirmation, Membership, Push, Unit
from bot.transport.base import Incoming
from handlers.office_records import find_unit


def _target(
    msg: Incoming, ctx: Context, cmd: CommandObject, *, usage: str, reason_required: bool
) -> tuple[Push, Unit, str] | None:
    """The push, unit and reason an admin named; None after answering why they cannot be used."""
    parsed = parse_correction(cmd.arg)
    if parsed is None:
        ctx.reply(msg, ctx.t(f"corrections.{usage}"))
        return None
    if reason_required and not parsed.reason:
        ctx.reply(msg, ctx.t("corrections.need_reason", usage=ctx.t(f"corrections.{usage}")))
        return None
    unit, error = find_unit(ctx, parsed.unit)
    if unit is None:
        ctx.reply(msg, error)
        return None
    push = ctx.session.get(Push, parsed.n)
    if push is None:
        ctx.reply(msg, ctx.t("push.not_found", n=parsed.n))
        return None
    return push, unit, parsed.reason[: corrections.MAX_REASON]


def _correct(msg: Incoming, ctx: Context, cmd: CommandObject, *, adding: bool) -> None:
    """补登 or 免转 <单位> #N <理由>: bot/operations/office.py's correct, as the web console's buttons do it."""
    target = _target(msg, ctx, cmd, usage="add_usage" if adding else "exempt_usage", reason_required=True)
    if target is None:
        return
    push, unit, reason = target
    actor = Actor(msg.sender.contact_id, msg.sender.name)
    answer = office_actions.correct(
        ctx.session, push, unit, reason, adding=adding, now=ctx.now, tz=ctx.tz, texts=ctx.texts, actor=actor
    )
    ctx.reply(msg, answer.message)


def on_add(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """补登 <单位> #N <理由>: record the unit's confirmation on its behalf (on time unless the reason says 迟报)."""
    _correct(msg, ctx, cmd, adding=True)


def on_revoke(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """撤销 <单位> #N [理由]: take back a confirmation recorded by mistake, or else the unit's exemption."""
    target = _target(msg, ctx, cmd, usage="revoke_usage", reason_required=False)
    if target is None:
        return
    push, unit, reason = target
    result = corrections.revoke(
        session=ctx.session,
        push=push,
        unit=unit,
        reason=reason,
        by_id=msg.sender.contact_id,
        by_name=msg.sender.name,
        now=ctx.now,
        evidence_dir=Path(ctx.settings.evidence_dir),
    )
    if result.outcome == Outcome.WITHDRAWN:
        ctx.reply(msg, ctx.t("push_withdrawn.revoke", n=push.id))
    elif result.outcome == Outcome.NOT_AIMED:
        ctx.reply(msg, office_actions.not_aimed_text(ctx.session, ctx.texts, push, unit))
    elif result.outcome == Outcome.NOTHING:
        ctx.reply(msg, ctx.t("corrections.nothing", unit=unit.name, n=push.id))
    else:
        key = "corrections.revoked" if result.revoked == "confirmation" else "corrections.unexempted"
        missed = ctx.t("corrections.now_missed") if result.missed else ""
        ctx.reply(msg, ctx.t(key, unit=unit.name, n=push.id, missed=missed, **office_actions.counts(ctx.session, push)))


def on_exempt(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """免转 <单位> #N <理由>: the unit is not expected to relay this push."""
    _correct(msg, ctx, cmd, adding=False)


# 认错 赵磊 / 认错 城关镇 赵磊 / 认错 赵磊（城关镇） (as the 已认出 line shows it).
_PERSON_IN_UNIT = re.compile(r"^(?P<name>[^（(]+)[（(](?P<unit>[^）)]+)[）)]$")


def on_unbind(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """认错 <姓名>: undo a binding by name (a stranger with the roster nickname): the contact is never bound to
    that roster person by name again, and the confirmations recorded through that binding are revoked (the
    office can 补登 what the unit really relayed)."""
    arg = cmd.arg.strip()
    parts = arg.split()
    unit_name, name = "", arg
    matched = _PERSON_IN_UNIT.match(arg)
    if matched:
        name, unit_name = matched["name"].strip(), matched["unit"].strip()
    elif len(parts) == 2:
        unit_name, name = parts
    if not name or " " in name:
        ctx.reply(msg, ctx.t("corrections.unbind_usage"))
        return
    rows = bound_by_name(ctx.session, name)
    if unit_name:
        unit, error = find_unit(ctx, unit_name)
        if unit is None:
            ctx.reply(msg, error)
            return
        rows = [(li, u) for li, u in rows if u.id == unit.id]
    by_name = [(li, u) for li, u in rows if li.bound_at is not None]
    if not by_name:
        if rows:
            ctx.reply(msg, ctx.t("corrections.unbind_by_roster", name=name, unit=rows[0][1].name))
        else:
            ctx.reply(msg, ctx.t("corrections.unbind_none", name=name))
        return
    contacts = {li.contact_id for li, _ in by_name}
    if len(contacts) > 1:
        units = "、".join(u.name for _, u in by_name)
        ctx.reply(msg, ctx.t("corrections.unbind_which", name=name, units=units, unit=by_name[0][1].name))
        return
    contact_id = by_name[0][0].contact_id or ""
    seen = ctx.session.exec(
        select(Membership).where(Membership.contact_id == contact_id).order_by(col(Membership.seen_at).desc())
    ).first()
    who = f"{seen.group_nickname or seen.name}（{contact_id}）" if seen else contact_id
    since = unbind(
        ctx.session, [li for li, _ in by_name], by_id=msg.sender.contact_id, by_name=msg.sender.name, now=ctx.now
    )
    revoked = _revoke_through(msg, ctx, since, reason=ctx.t("corrections.unbind_reason", name=name, who=contact_id))
    ctx.audit(msg, "unbind", f"{name} {contact_id}: {len(revoked)} confirmations revoked")
    done = (
        ctx.t("corrections.unbind_revoked", items="、".join(revoked))
        if revoked
        else ctx.t("corrections.unbind_nothing")
    )
    units = "、".join(u.name for _, u in by_name)
    ctx.reply(msg, ctx.t("corrections.unbound", name=name, units=units, who=who, revoked=done))


def _revoke_through(msg: Incoming, ctx: Context, since: dict, *, reason: str) -> list[str]:
    """Revoke the confirmations recorded through the undone bindings (made since each was bound); returns
    "单位 #N" of each one revoked."""
    confs = ctx.session.exec(
        select(Confirmation).where(col(Confirmation.liaison_id).in_(list(since))).order_by(col(Confirmation.push_id))
    ).all()
    done: list[str] = []
    for conf in confs:
        bound_at = since.get(conf.liaison_id)
        if bound_at is not None and conf.at < bound_at:
            continue  # recorded before this binding: by someone else
        push, unit = ctx.session.get_one(Push, conf.push_id), ctx.session.get_one(Unit, conf.unit_id)
        result = corrections.revoke(
            session=ctx.session,
            push=push,
            unit=unit,
            reason=reason[: corrections.MAX_REASON],
            by_id=msg.sender.contact_id,
            by_name=msg.sender.name,
            now=ctx.now,
            evidence_dir=Path(ctx.settings.evidence_dir),
        )
        if result.outcome == Outcome.DONE:
            done.append(f"{unit.name} #{push.id}")
    return done

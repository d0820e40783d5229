"""Office commands that correct the record: 补登, 撤销 and 免转 (admins only, like the other office commands)."""

from __future__ import annotations

from pathlib import Path

from bot.chat.dispatch import CommandObject, Context
from bot.chat.parsing import parse_correction
from bot.clock import show
from bot.domain import corrections
from bot.domain.corrections import Outcome
from bot.domain.relay import progress
from bot.storage.models import Confirmation, ConfirmMethod, Push, Unit
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


def _counts(ctx: Context, push: Push) -> dict[str, int]:
    """`done` and `total` of the push after the change, for the answer."""
    p = progress(ctx.session, push)
    return {"done": len(p.confirmed), "total": p.total}


def _already_confirmed(ctx: Context, unit: Unit, push: Push, conf: Confirmation) -> str:
    how = ctx.t("corrections.how_added") if conf.method == ConfirmMethod.OFFICE.value else ""
    return ctx.t("corrections.already_confirmed", unit=unit.name, n=push.id, when=show(conf.at, ctx.tz), how=how)


def on_add(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """补登 <单位> #N <理由>: record the unit's confirmation on its behalf (on time unless the reason says 迟报)."""
    target = _target(msg, ctx, cmd, usage="add_usage", reason_required=True)
    if target is None:
        return
    push, unit, reason = target
    result = corrections.add_confirmation(
        session=ctx.session,
        push=push,
        unit=unit,
        reason=reason,
        by_id=msg.sender.contact_id,
        by_name=msg.sender.name,
        now=ctx.now,
    )
    if result.outcome == Outcome.WITHDRAWN:
        ctx.reply(msg, ctx.t("push.already_withdrawn", n=push.id))
    elif result.outcome == Outcome.CONFIRMED:
        assert result.confirmation is not None  # CONFIRMED comes with the confirmation found
        ctx.reply(msg, _already_confirmed(ctx, unit, push, result.confirmation))
    elif result.outcome == Outcome.EXEMPTED:
        ctx.reply(msg, ctx.t("corrections.add_exempted", unit=unit.name, n=push.id))
    else:
        assert result.confirmation is not None  # a 补登 done comes with the confirmation recorded
        key = "corrections.added_late" if result.confirmation.late else "corrections.added"
        ctx.reply(msg, ctx.t(key, unit=unit.name, n=push.id, reason=reason, **_counts(ctx, push)))


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
        ctx.reply(msg, ctx.t("push.already_withdrawn", n=push.id))
    elif result.outcome == Outcome.NOTHING:
        ctx.reply(msg, ctx.t("corrections.nothing", unit=unit.name, n=push.id))
    else:
        key = "corrections.revoked" if result.revoked == "confirmation" else "corrections.unexempted"
        missed = ctx.t("corrections.now_missed") if result.missed else ""
        ctx.reply(msg, ctx.t(key, unit=unit.name, n=push.id, missed=missed, **_counts(ctx, push)))


def on_exempt(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """免转 <单位> #N <理由>: the unit is not expected to relay this push."""
    target = _target(msg, ctx, cmd, usage="exempt_usage", reason_required=True)
    if target is None:
        return
    push, unit, reason = target
    result = corrections.exempt(
        session=ctx.session,
        push=push,
        unit=unit,
        reason=reason,
        by_id=msg.sender.contact_id,
        by_name=msg.sender.name,
        now=ctx.now,
    )
    if result.outcome == Outcome.WITHDRAWN:
        ctx.reply(msg, ctx.t("push.already_withdrawn", n=push.id))
    elif result.outcome == Outcome.CONFIRMED:
        assert result.confirmation is not None  # CONFIRMED comes with the confirmation found
        ctx.reply(msg, _already_confirmed(ctx, unit, push, result.confirmation))
    elif result.outcome == Outcome.EXEMPTED:
        assert result.exemption is not None  # EXEMPTED comes with the exemption found
        ctx.reply(msg, ctx.t("corrections.already_exempted", unit=unit.name, n=push.id, reason=result.exemption.reason))
    else:
        ctx.reply(msg, ctx.t("corrections.exempted", unit=unit.name, n=push.id, reason=reason, **_counts(ctx, push)))

"""Office commands (admins only, in the office group or a private chat) and items sent to be pushed."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import col, select

from bot.adapters.link_preview import RefusedLink
from bot.chat import compose
from bot.chat.dispatch import CommandObject, CommandRegistry, Context, Router, command_filter
from bot.chat.filters import from_admin, in_private, kind, not_from_admin, office_place
from bot.chat.parsing import (
    DeadlineError,
    DeadlinePassed,
    PushArgs,
    TimeMissing,
    parse_push_args,
    parse_push_ref,
    parse_send_time,
    strip_mentions,
)
from bot.clock import show
from bot.domain import targets
from bot.domain.people import first_notice
from bot.domain.reach import reach_of_push
from bot.domain.relay import (
    latest_push,
    progress,
)
from bot.operations import office as office_actions
from bot.operations import scheduled
from bot.operations.office import Actor
from bot.operations.pushing import (
    PushOutcome,
    library_alert,
    push_alert,
    push_candidate,
    release_link_drafts,
    title_from_earlier,
    unknown_target_text,
    untitled,
)
from bot.storage.models import Alert, Push, PushState, pk
from bot.transport.base import Incoming, LinkCard, MessageKind
from handlers import groups, office_corrections, office_records, office_verify, reach
from handlers.groups import SETTING_COMMANDS

router = Router("office")

_URL = re.compile(r"^https?://\S+$")
_CANDIDATE = re.compile(r"^候选\s*(\d{1,9})$")
_CORRECTION_COMMANDS = ("补登", "撤销", "免转")


def looks_like_command(msg: Incoming, ctx: Context) -> bool | dict:
    """A command as a non-admin would type it by mistake, not a sentence that starts with 提醒 or 推送."""
    cmd = ctx.command(msg)
    if cmd is None:
        return False
    mistaken = (
        cmd.arg == ""
        or cmd.arg.startswith("#")
        or cmd.name in SETTING_COMMANDS
        or (cmd.name in _CORRECTION_COMMANDS and parse_push_ref(cmd.arg) is not None)
        or (cmd.name == "推送" and (ctx.library.find(cmd.arg) is not None or _CANDIDATE.match(cmd.arg) is not None))
    )
    return {"cmd": cmd} if mistaken else False


def _resolve(ctx: Context, arg: str) -> tuple[Push | None, str]:
    """The push named by #N in `arg` (or the latest) and ""; otherwise None and the sentence to answer with."""
    ref = parse_push_ref(arg)
    if ref is None:
        push = latest_push(ctx.session)
        return (push, "") if push else (None, ctx.t("push.none_yet"))
    push = ctx.session.get(Push, ref)
    return (push, "") if push else (None, ctx.t("push.not_found", n=ref))


# ---- pushing ---------------------------------------------------------------------------------------------


def _pushed(msg: Incoming, ctx: Context, alert: Alert, *, again: bool, again_command: str, to: str = "") -> PushOutcome:
    """push_alert for the admin who asked: the same case type or link pushed earlier today waits for 确认."""
    return push_alert(
        ctx.session,
        alert,
        now=ctx.now,
        actor_id=msg.sender.contact_id,
        actor_name=msg.sender.name,
        settings=ctx.settings,
        texts=ctx.texts,
        again=again,
        again_command=again_command,
        target=to,
    )


def _push(
    msg: Incoming,
    ctx: Context,
    alert: Alert,
    *,
    again: bool,
    again_command: str,
    send_at: datetime | None = None,
    to: str = "",
) -> Push | None:
    """Push `alert` and answer; the same case type or link pushed earlier today waits for 确认 (`again`). With
    `send_at`, store it to be pushed then (a scheduled push) and answer with its number."""
    if send_at is not None:
        done = scheduled.schedule_push(
            ctx.session,
            alert,
            send_at=send_at,
            now=ctx.now,
            actor_id=msg.sender.contact_id,
            actor_name=msg.sender.name,
            again=again,
            chat_kind=msg.chat_kind.value,
            chat_id=msg.chat_id,
            settings=ctx.settings,
            texts=ctx.texts,
            target=to,
        )
        ctx.reply(msg, done.message)
        return None
    outcome = _pushed(msg, ctx, alert, again=again, again_command=again_command, to=to)
    ctx.reply(msg, outcome.message)
    return outcome.push


def _push_library(
    msg: Incoming, ctx: Context, name: str, *, again: bool, send_at: datetime | None, to: str = ""
) -> None:
    item = ctx.library.find(name)
    if item is None:
        ctx.reply(msg, ctx.t("push.unknown_type", name=name, types="、".join(ctx.library.case_types())))
        return
    _push(
        msg,
        ctx,
        library_alert(item, now=ctx.now),
        again=again,
        again_command=ctx.t("push_repeat.chat", what=_with_target(name, to)),
        send_at=send_at,
        to=to,
    )


def _push_draft(
    msg: Incoming, ctx: Context, quoted: str, *, title: str, again: bool, send_at: datetime | None, to: str = ""
) -> None:
    drafts = list(
        ctx.session.exec(
            select(Alert).where(Alert.draft_of == msg.sender.contact_id).order_by(col(Alert.id).desc()).limit(20)
        )
    )
    if not drafts:
        ctx.reply(msg, ctx.t("push.no_draft"))
        return
    chosen = drafts[0]
    if quoted:
        # The quote shows "name：content"; pick the draft whose content it shows.
        for draft in drafts:
            shown = [v for v in (draft.link_url, draft.title, draft.text[:20]) if v]
            if any(v in quoted for v in shown):
                chosen = draft
                break
    if title:
        chosen.title = title
    elif untitled(chosen) and not title_from_earlier(ctx.session, chosen, now=ctx.now, tz=ctx.tz, again=again):
        ctx.reply(msg, ctx.t("push_title.need_draft"))
        return
    _push(msg, ctx, chosen, again=again, again_command=ctx.t("push_repeat.chat_draft"), send_at=send_at, to=to)


# ---- command handlers --------------------------------------------------------------------------


def _link_card(ctx: Context, url: str) -> LinkCard | None:
    """The title and description the app fetched for `url`; None when the page gave no title (or was refused)."""
    card = ctx.previews.get(url)
    if card is None or isinstance(card, RefusedLink) or not card.title.strip() or card.title == url:
        return None
    return card


def _why_untitled(ctx: Context, url: str) -> str:
    """Why a link has no title: the app refused an internal address, or the page could not be read."""
    refused = isinstance(ctx.previews.get(url), RefusedLink)
    return ctx.t("push_title.why_internal") if refused else ctx.t("push_title.why_unread")


def _push_link(
    msg: Incoming, ctx: Context, url: str, *, title: str, again: bool, send_at: datetime | None, to: str = ""
) -> None:
    """推送 <链接> [标题 <标题>] [确认]: a link card with the page's title or the one given; none is asked for."""
    card = _link_card(ctx, url)
    alert = Alert(link_url=url, created_at=ctx.now)
    if card is not None:
        alert.title, alert.link_description = card.title[:200], card.description[:500]
        alert.link_thumbnail = card.thumbnail_url
    if title:
        alert.title = title
    if not alert.title and not title_from_earlier(ctx.session, alert, now=ctx.now, tz=ctx.tz, again=again):
        ctx.audit(msg, "push_untitled", url[:200])
        ctx.reply(msg, ctx.t("push_title.need", why=_why_untitled(ctx, url), url=url))
        return
    again_command = ctx.t("push_repeat.chat", what=_with_target(url, to))
    if _push(msg, ctx, alert, again=again, again_command=again_command, send_at=send_at, to=to) is not None:
        release_link_drafts(ctx.session, contact_id=msg.sender.contact_id, url=url)


def _push_candidate(msg: Incoming, ctx: Context, n: int, *, again: bool, to: str = "") -> None:
    again_command = ctx.t("push_repeat.chat", what=_with_target(f"候选{n}", to))
    outcome = push_candidate(
        ctx.session,
        n,
        now=ctx.now,
        texts=ctx.texts,
        push=lambda alert: _pushed(msg, ctx, alert, again=again, again_command=again_command, to=to),
    )
    ctx.reply(msg, outcome.message)


def _send_time(msg: Incoming, ctx: Context, args: PushArgs) -> datetime | None:
    """The time a scheduled push goes out, or None after answering why it cannot be scheduled then."""
    try:
        send_at = parse_send_time(args.when, now=ctx.now, tz=ctx.tz)
    except TimeMissing:
        ctx.reply(msg, ctx.t("scheduled.need_time"))
        return None
    except DeadlinePassed as passed:
        what = " ".join(w for w in (args.target, "确认" if args.again else "") if w)
        ctx.reply(msg, ctx.t("scheduled.passed", when=show(passed.at, ctx.tz), what=what))
        return None
    except DeadlineError:
        ctx.reply(msg, ctx.t("scheduled.bad_time", text=args.when))
        return None
    if scheduled.too_far(send_at, now=ctx.now):
        ctx.reply(msg, ctx.t("scheduled.too_far", when=show(send_at, ctx.tz), days=scheduled.MAX_AHEAD.days))
        return None
    return send_at


def _with_target(what: str, to: str) -> str:
    """What to push again, with its 给 … (`推送 刷单 给 学校 确认`)."""
    return f"{what} 给 {to}" if to else what


def _target_typed_together(ctx: Context, args: PushArgs) -> PushArgs:
    """`推送刷单给学校` / `推送 刷单给学校` / `推送 刷单 给` typed on a phone: a library case type, 给, whom (perhaps
    nothing: then `to` is "给", and the office is asked whom). Only when the words before 给 are a case type: a
    link or a draft's title may hold a 给 of their own."""
    if args.to or "给" not in args.target or _URL.match(args.target) or _CANDIDATE.match(args.target):
        return args
    name, _, to = args.target.rpartition("给")
    name = name.strip()
    if not name or ctx.library.find(name) is None:
        return args
    return PushArgs(name, args.title, args.again, args.when, to.strip(" :：") or "给")


@router.command("推送", usage="push", who=from_admin, where=office_place)
def _on_push(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    args = parse_push_args(cmd.arg)
    candidate = _CANDIDATE.match(args.target)
    send_at = None
    if args.when:
        if candidate:
            ctx.reply(msg, ctx.t("scheduled.no_candidate", n=candidate.group(1)))
            return
        send_at = _send_time(msg, ctx, args)
        if send_at is None:
            return
    args = _target_typed_together(ctx, args)
    if args.to == "给":
        ctx.reply(msg, ctx.t("targets.need_who", what=args.target or ""))
        return
    if args.to:
        # A target that names nothing is answered before anything is stored or scheduled.
        try:
            targets.resolve(ctx.session, args.to)
        except targets.TargetError as exc:
            ctx.reply(msg, unknown_target_text(ctx.session, ctx.texts, exc))
            return
    to = args.to
    if candidate:
        _push_candidate(msg, ctx, int(candidate.group(1)), again=args.again, to=to)
    elif _URL.match(args.target):
        _push_link(msg, ctx, args.target, title=args.title, again=args.again, send_at=send_at, to=to)
    elif args.target:
        _push_library(msg, ctx, args.target, again=args.again, send_at=send_at, to=to)
    else:
        _push_draft(msg, ctx, cmd.quoted, title=args.title, again=args.again, send_at=send_at, to=to)


@router.command("进度", usage="progress", who=from_admin, where=office_place)
def _on_progress(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    push, error = _resolve(ctx, cmd.arg or cmd.quoted)
    if push is None:
        ctx.reply(msg, error)
        return
    p = progress(ctx.session, push)
    ctx.audit(msg, "progress", f"#{push.id}: {len(p.confirmed)}/{p.total}")
    text = compose.progress_text(ctx.texts, p, now=ctx.now, tz=ctx.tz, evidence_required=ctx.settings.evidence_required)
    units, people = reach_of_push(ctx.session, pk(push))
    if units:
        text += "\n" + ctx.t("reach_progress.line", units=units, people=people)
    ctx.reply(msg, text)


def _actor(msg: Incoming) -> Actor:
    return Actor(msg.sender.contact_id, msg.sender.name)


@router.command("提醒", usage="remind", who=from_admin, where=office_place)
def _on_remind(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    push, error = _resolve(ctx, cmd.arg or cmd.quoted)
    if push is None:
        ctx.reply(msg, error)
        return
    if push.state == PushState.WITHDRAWN.value:
        ctx.reply(msg, ctx.t("push_withdrawn.remind", n=push.id))
        return
    result = office_actions.remind(
        ctx.session, push, now=ctx.now, settings=ctx.settings, texts=ctx.texts, actor=_actor(msg)
    )
    if not result.units:
        ctx.reply(msg, ctx.t("remind.nothing", n=push.id))
        return
    ctx.reply(msg, ctx.t("remind.done", groups=result.groups, n=push.id, units=result.units, people=result.people))


@router.command("截止", usage="deadline", who=from_admin, where=office_place)
def _on_deadline(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    ref = parse_push_ref(cmd.arg)
    when_text = re.sub(r"#\s*\d+", "", cmd.arg).strip()
    if ref is None or not when_text:
        ctx.reply(msg, ctx.t("push.deadline_usage"))
        return
    push = ctx.session.get(Push, ref)
    refused = office_actions.deadline_refused(push, ref, ctx.texts)
    if push is None or refused:
        ctx.reply(msg, refused)
        return
    deadline, why = office_actions.read_deadline(when_text, now=ctx.now, settings=ctx.settings, texts=ctx.texts, n=ref)
    if deadline is None:
        ctx.reply(msg, why)
        return
    answer = office_actions.change_deadline(
        ctx.session, push, deadline, now=ctx.now, tz=ctx.tz, texts=ctx.texts, actor=_actor(msg)
    )
    ctx.reply(msg, answer)


@router.command("撤回", usage="withdraw", who=from_admin, where=office_place)
def _on_withdraw(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    ref = parse_push_ref(cmd.arg)
    if ref is None:
        ctx.reply(msg, ctx.t("push.need_ref", command="撤回"))
        return
    push = ctx.session.get(Push, ref)
    refused = office_actions.withdraw_refused(push, ref, ctx.texts)
    if push is None or refused:
        ctx.reply(msg, refused)
        return
    ctx.reply(msg, office_actions.withdraw(ctx.session, push, now=ctx.now, texts=ctx.texts, actor=_actor(msg)))


router.command("补登", usage="add", who=from_admin, where=office_place)(office_corrections.on_add)
router.command("撤销", usage="revoke", who=from_admin, where=office_place)(office_corrections.on_revoke)
router.command("免转", usage="exempt", who=from_admin, where=office_place)(office_corrections.on_exempt)
router.command("认错", "解绑", usage="unbind", who=from_admin, where=office_place)(office_corrections.on_unbind)
router.command("报表", usage="report", who=from_admin, where=office_place)(office_records.on_report)
router.command("单位", usage="unit", who=from_admin, where=office_place)(office_records.on_unit)
router.command("请假", usage="leave", who=from_admin, where=office_place)(office_records.on_leave)
router.command("销假", usage="leave_end", who=from_admin, where=office_place)(office_records.on_leave_end)
router.command("休息日", "工作日", usage="calendar", who=from_admin, where=office_place)(office_records.on_calendar)
router.command("警情", usage="incidents", who=from_admin, where=office_place)(office_records.on_incidents)
router.command("核查", usage="verify", who=from_admin, where=office_place)(office_verify.on_verify)
router.command("单位群", "移除单位群", usage="reach_commands.unit_groups", who=from_admin, where=office_place)(
    reach.on_unit_groups
)


@router.command("定时", "定时推送", usage="scheduled", who=from_admin, where=office_place)
def _on_scheduled(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    ctx.audit(msg, "push_schedule_list", f"{len(scheduled.waiting(ctx.session))} waiting")
    ctx.reply(msg, scheduled.list_text(ctx.session, texts=ctx.texts, settings=ctx.settings))


@router.command("取消定时", usage="scheduled_cancel", who=from_admin, where=office_place)
def _on_scheduled_cancel(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    m = re.fullmatch(r"(?:定时)?\s*[#＃]?\s*(\d{1,9})", cmd.arg.strip())
    if m is None:
        ctx.reply(msg, ctx.t("scheduled.cancel_usage"))
        return
    _, answer = scheduled.cancel(
        ctx.session,
        int(m.group(1)),
        now=ctx.now,
        actor_id=msg.sender.contact_id,
        actor_name=msg.sender.name,
        texts=ctx.texts,
        settings=ctx.settings,
    )
    ctx.reply(msg, answer)


@router.command("帮助", usage="help", who=from_admin, where=office_place)
def _on_help(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    ctx.reply(msg, help_text(ctx))


# Every office command, for `帮助`: this router's, then the group settings sent inside the room they set
# (handlers/groups.py answers them there).
COMMANDS = CommandRegistry().extend(router.commands).extend(groups.router.commands)


def help_text(ctx: Context) -> str:
    """`帮助` for admins: every registered command's usage, then the alert types that can be pushed."""
    return COMMANDS.help_text(
        ctx.texts,
        head=ctx.t("help.office_head"),
        foot=ctx.t("help.office_foot", types="、".join(ctx.library.case_types())),
    )


@router.message(from_admin, command_filter())
def on_command_elsewhere(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """An admin's office command typed in a liaison group (or a room the bot does not serve)."""
    ctx.reply(msg, ctx.t("access.wrong_place"))


@router.message(not_from_admin, looks_like_command)
def on_refused(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """Anyone else: a short refusal, logged; nothing changes."""
    ctx.audit(
        msg,
        f"refused:{cmd.name}",
        f"{msg.chat_kind.value}:{msg.chat_id} {strip_mentions(msg.text)[:200]}",
        allowed=False,
    )
    ctx.reply(msg, ctx.t("access.refused"))


@router.message(from_admin, office_place, kind(MessageKind.FILE))
def on_file_from_admin(msg: Incoming, ctx: Context) -> None:
    """A spreadsheet from an admin is the incident figures (警情数据)."""
    office_records.on_incident_file(msg, ctx)


# What a person writes; system notices and recalls in a private chat are WeChat's, not the person's.
_WRITTEN = (
    MessageKind.TEXT,
    MessageKind.IMAGE,
    MessageKind.LINK,
    MessageKind.FILE,
    MessageKind.UNKNOWN,
    MessageKind.OTHER,
)


@router.message(not_from_admin, in_private, kind(*_WRITTEN))
def on_private_from_others(msg: Incoming, ctx: Context) -> None:
    """Anyone else writing to the bot privately is told once how confirming works."""
    if first_notice(ctx.session, kind="private_intro", key=msg.sender.contact_id, now=ctx.now):
        ctx.reply(msg, ctx.t("help.liaison"))


@router.message(from_admin, in_private, kind(MessageKind.TEXT, MessageKind.LINK, MessageKind.IMAGE))
def on_item_for_push(msg: Incoming, ctx: Context) -> None:
    """An article link, image or text an admin sends privately: kept as a draft until `推送`."""
    alert = Alert(draft_of=msg.sender.contact_id, source_message_id=msg.message_id, created_at=ctx.now)
    text = strip_mentions(msg.text)
    why = ""  # why a link has no title: the answer asks for one
    if msg.kind == MessageKind.LINK and msg.link is not None:
        alert.link_url, alert.title = msg.link.url, msg.link.title or msg.link.url
        alert.link_description, alert.link_thumbnail = msg.link.description, msg.link.thumbnail_url
        what = ctx.t("push.draft_link")
        why = ctx.t("push_title.why_unread") if untitled(alert) else ""
    elif msg.kind == MessageKind.IMAGE and msg.image is not None:
        alert.image_name, alert.image_data = msg.image.name, msg.image.data
        alert.title = ctx.t("push.image_title")
        what = ctx.t("push.draft_image")
    elif _URL.match(text):
        card = _link_card(ctx, text)
        alert.link_url, alert.title = text, card.title[:200] if card else text
        if card is not None:
            alert.link_description, alert.link_thumbnail = card.description[:500], card.thumbnail_url
        what = ctx.t("push.draft_link")
        why = "" if card else _why_untitled(ctx, text)
    elif text:
        alert.title, alert.text = text.splitlines()[0][:30], text[:2000]
        what = ctx.t("push.draft_text")
    else:
        return
    ctx.session.add(alert)
    ctx.audit(msg, "draft", f"{msg.kind.value} {alert.title[:100]}")
    ctx.reply(msg, ctx.t("push_title.draft_saved", why=why) if why else ctx.t("push.draft_saved", what=what))

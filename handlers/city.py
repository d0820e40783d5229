"""The city's anti-fraud centre in chat (issue 16): `推送 刷单 全市` and `进度 全市 #N`, from a city admin
(`city_admin_ids`) in the city office group (`city_office_group`, served by any one district's bot), a private chat
or the district's office group. In the city office group the 全市 may be left out."""

from __future__ import annotations

import re

from bot.chat.dispatch import CommandObject, Context, Router, command_filter
from bot.chat.filters import office_place
from bot.chat.parsing import clean, parse_push_args
from bot.domain.periods import parse_period, period_code, period_of, previous_period
from bot.operations.city import (
    CityError,
    CityRepeat,
    city_progress,
    latest_number,
    progress_text,
    push_to_city,
    repeat_text,
)
from bot.storage.models import GroupKind, Priority
from bot.textnorm import squeeze
from bot.transport.base import ChatKind, Incoming

router = Router("city")

# 全市 first or last in what follows the command, spaced or not (`推送 刷单 全市`, `推送刷单全市`, `进度全市#3`).
_CITY_WORD = re.compile(r"^\s*全市|全市(?=\s*(?:确认)?\s*$)")  # (before a closing 确认 too)
_NUMBER = re.compile(r"^[#＃]?\s*(\d+)$")


def from_city_admin(msg: Incoming, ctx: Context) -> bool:
    return bool(msg.sender.contact_id) and msg.sender.contact_id in ctx.settings.city_admin_ids


def in_city_group(msg: Incoming, ctx: Context) -> bool:
    return msg.chat_kind == ChatKind.ROOM and ctx.group_kind(msg.chat_id) == GroupKind.CITY


def city_place(msg: Incoming, ctx: Context) -> bool:
    """Where a city admin's city commands are taken: the city group, a private chat, the office group."""
    return msg.chat_kind == ChatKind.PRIVATE or ctx.group_kind(msg.chat_id) in (GroupKind.OFFICE, GroupKind.CITY)


def city_scoped(msg: Incoming, ctx: Context) -> bool:
    """The command is for the whole city: it says 全市, or it is typed in the city office group."""
    cmd = ctx.command(msg)
    return cmd is not None and (bool(_CITY_WORD.search(cmd.arg)) or in_city_group(msg, ctx))


def _without_city_word(arg: str) -> str:
    return clean(_CITY_WORD.sub(" ", arg)).strip()


def _answer(msg: Incoming, ctx: Context, text: str) -> None:
    # A city admin is not the district's admin, but every answer to one is owed, never a rationed courtesy.
    ctx.reply(msg, text, courtesy=False)


def _no_city(msg: Incoming, ctx: Context) -> bool:
    if ctx.city is None:
        _answer(msg, ctx, ctx.t("city.no_city_login" if ctx.settings.district else "city.not_a_city"))
        return True
    return False


@router.message(from_city_admin, city_place, command_filter("推送"), city_scoped)
def on_city_push(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """`推送 刷单 全市` (`确认` to push the same type again the same day): a library alert to every district."""
    if _no_city(msg, ctx):
        return
    args = parse_push_args(_without_city_word(cmd.arg))
    if args.to or args.when or args.title:  # 给 …, a time, a link's title: not for the whole city (yet)
        _answer(msg, ctx, ctx.t("city.push_plain"))
        return
    # Exactly a type or alias of the library: a loose reading could push the wrong alert to the whole city.
    item = ctx.library.find(args.target) if squeeze(args.target) in ctx.library.names() else None
    if item is None:
        _answer(msg, ctx, ctx.t("city.push_what", types="、".join(ctx.library.case_types())))
        return
    assert ctx.city is not None
    try:
        with ctx.city.begin() as conn:
            done = push_to_city(
                conn,
                item,
                now=ctx.now,
                actor_id=msg.sender.contact_id,
                actor_name=msg.sender.name,
                settings=ctx.settings,
                texts=ctx.texts,
                again=args.again,
                read_twice=True,
            )
    except CityRepeat as repeat:
        _answer(msg, ctx, repeat_text(ctx.texts, repeat, case=item.case_type, tz=ctx.tz))
        return
    except CityError as exc:
        _answer(msg, ctx, str(exc))
        return
    ctx.audit(msg, "city_push", f"全市第{done.number}号 {item.case_type} {len(done.districts)} 个区")
    _answer(msg, ctx, ctx.t("city.pushed", n=done.number, title=done.title, count=len(done.districts)))


@router.message(from_city_admin, city_place, command_filter("进度"), city_scoped)
def on_city_progress(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """`进度 全市 #N` (the newest city push without a number)."""
    if _no_city(msg, ctx):
        return
    rest = _without_city_word(cmd.arg)
    found = _NUMBER.match(rest)
    if rest and found is None:
        _answer(msg, ctx, ctx.t("city.progress_usage"))
        return
    assert ctx.city is not None
    try:
        with ctx.city.begin() as conn:
            n = int(found.group(1)) if found else latest_number(conn)
            if n is None:
                _answer(msg, ctx, ctx.t("city.nothing_pushed"))
                return
            result = city_progress(conn, n, texts=ctx.texts)
    except CityError as exc:
        _answer(msg, ctx, str(exc))
        return
    ctx.audit(msg, "city_progress", f"全市第{n}号 {result.confirmed}/{result.total}")
    _answer(msg, ctx, progress_text(ctx.texts, result, tz=ctx.tz))


@router.message(from_city_admin, city_place, command_filter("报表"), city_scoped)
def on_city_report(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """`报表 全市` (last month), `报表 全市 2026-11` (or 本月, a week, a span of days): the districts ranked and the
    units that missed most, with the .xlsx, in this chat. Built here: about a second for a city of 10 districts
    (benchmarks/city.py), once a month."""
    if _no_city(msg, ctx):
        return
    wanted = _without_city_word(cmd.arg)
    today = ctx.today
    if not wanted or wanted in ("上月", "上个月"):
        span = previous_period("month", today)
    elif wanted in ("本月", "这个月", "月"):
        span = period_of("month", today)
    else:
        found = parse_period(wanted, today=today)
        if found is None or found[0] > today:
            _answer(msg, ctx, ctx.t("city.report_usage"))
            return
        span = found
    # Here, not at the top: the report's module brings openpyxl, which the bot process loads only when it must.
    from bot.operations.city_report import city_month_report

    assert ctx.city is not None
    try:
        with ctx.city.begin() as conn:
            text, xlsx = city_month_report(conn, span, now=ctx.now, texts=ctx.texts, settings=ctx.settings)
    except CityError as exc:
        _answer(msg, ctx, str(exc))
        return
    ctx.audit(msg, "city_report", f"{span[0]}..{span[1]}")
    _answer(msg, ctx, text)
    if xlsx is not None:
        ctx.send(
            msg.chat_kind,
            msg.chat_id,
            file_name=f"全市通报_{period_code(*span)}.xlsx",
            file_data=xlsx,
            priority=Priority.REPLY,
        )


def _district_admin_only(msg: Incoming, ctx: Context) -> bool:
    return ctx.is_admin(msg.sender.contact_id) and not from_city_admin(msg, ctx)


def _says_city(msg: Incoming, ctx: Context) -> bool:
    cmd = ctx.command(msg)
    return cmd is not None and bool(_CITY_WORD.search(cmd.arg))


@router.message(_district_admin_only, office_place, command_filter("推送", "进度", "报表"), _says_city)
def on_city_word_from_district_admin(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """A district admin's `推送 刷单 全市`: said plainly that it is the city's, nothing pushed (not quietly a
    district push)."""
    ctx.reply(msg, ctx.t("city.only_city_admins", command=cmd.name))


def _city_admin_only(msg: Incoming, ctx: Context) -> bool:
    return from_city_admin(msg, ctx) and not ctx.is_admin(msg.sender.contact_id)


@router.message(_city_admin_only, office_place, command_filter("推送", "进度", "报表"))
def on_district_command_from_city_admin(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """A city admin's 推送/进度 without 全市 outside the city's group: the district's commands are not theirs;
    said how to write the city's."""
    _answer(msg, ctx, ctx.t("city.help"))


@router.message(in_city_group)
def on_city_group_other(msg: Incoming, ctx: Context) -> bool:
    """Anything else in the city office group: a city admin's unknown command gets the city's commands; the rest
    of the talk there is left alone (returns False: not taken, no district handler answers in the city's group)."""
    cmd = ctx.command(msg)
    if cmd is not None and from_city_admin(msg, ctx):
        _answer(msg, ctx, ctx.t("city.help"))
    return True

"""Parsers for what people type: commands, #N references, quote-replies, confirmations, deadlines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.chat.reading import Reading, Verdict, is_bare_ack, read_reply
from bot.chat.wechat_formats import xml_quote
from bot.domain.periods import DeadlineError, parse_day, parse_day_range  # noqa: F401 - the chat's day parser
from bot.textnorm import clean

MAX_INPUT = 2000  # longer messages are not commands or confirmations; cut before any regex runs

COMMANDS = (
    "设为联络员群",
    "取消联络员群",
    "设为办公群",
    "取消办公群",
    "推送",
    "进度",
    "提醒",
    "截止",
    "撤回",
    "补登",
    "撤销",
    "免转",
    "认错",
    "解绑",
    "帮助",
    "报表",
    "单位群",
    "移除单位群",
    "单位",
    "请假",
    "销假",
    "工作日",
    "休息日",
    "警情",
    "定时推送",
    "定时",
    "取消定时",
    "核查",
)

_LEADING_MENTIONS = re.compile(r"^(?:@[^\s@]+[\s\u2005]*)+")
_PUSH_REF = re.compile(r"#\s*(\d{1,7})")
_COMMAND = re.compile(r"^(" + "|".join(COMMANDS) + r")(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    name: str
    arg: str  # the rest of the line, cleaned


def strip_mentions(text: str) -> str:
    """Drop leading @Name mentions (people @ the bot before a command)."""
    return _LEADING_MENTIONS.sub("", clean(text)[:MAX_INPUT]).strip()


def parse_command(text: str) -> Command | None:
    """A command at the start of the message, e.g. `推送 刷单` or `进度#3`; None if there is none."""
    body = strip_mentions(text)
    if "\n" in body:
        return None
    m = _COMMAND.match(body)
    if not m:
        return None
    return Command(m.group(1), m.group(2).strip())


@dataclass(frozen=True)
class CorrectionArgs:
    unit: str  # as typed; matched to a unit by the handler
    n: int
    reason: str  # "" when none was given


# Greedy up to the first '#': linear on any input (a lazy group before \s* backtracks quadratically).
_CORRECTION = re.compile(r"^(?P<unit>[^#]*)#\s*(?P<n>\d{1,7})(?P<reason>.*)$", re.DOTALL)
_REASON_EDGE = " \t，,：:；;。"


def parse_correction(arg: str) -> CorrectionArgs | None:
    """`区卫健局 #3 电话确认` as 补登/撤销/免转 take it; None without a unit before a #N."""
    m = _CORRECTION.match(clean(arg)[:MAX_INPUT])
    if not m or not m.group("unit").strip():
        return None
    return CorrectionArgs(m.group("unit").strip(), int(m.group("n")), m.group("reason").strip(_REASON_EDGE))


@dataclass(frozen=True)
class PushArgs:
    """What follows 推送: the thing to push, a title given for a link, 确认 (push even if pushed today), and the
    time to push it at (a scheduled push)."""

    target: str  # a case type, 候选N, a link, or "" for the admin's draft
    title: str  # `推送 <链接> 标题 <标题>` or `推送 标题 <标题>` (the draft); "" when none was given
    again: bool  # ends in 确认: push again what was already pushed today
    when: str = ""  # `推送 刷单 明天9:00`: the time as typed (read with parse_send_time); "" to push now
    to: str = ""  # `推送 刷单 给 学校,医院`: whom it is aimed at, as typed (targets.resolve); "" for the default


_LINK_AND_REST = re.compile(r"^(?P<url>https?://\S+)(?P<rest>.*)$", re.DOTALL)
_AGAIN_EDGE = " \t,，、。"
_TITLE_EDGE = " \t:：\"'“”‘’「」『』《》"


def _title(text: str) -> str:
    """The title after a link or 推送 (`标题 …`, `标题：…` or just the words), without quotes around it."""
    text = text.strip()
    if text.startswith("标题"):
        text = text[2:]
    return text.strip(_TITLE_EDGE)[:200]


def _strip_again(body: str) -> tuple[str, bool]:
    """The text without a closing 确认, and whether it had one."""
    bare = body.rstrip("。.!！")
    if bare.endswith("确认"):
        rest = bare[:-2]
        if not rest or rest[-1] in _AGAIN_EDGE:
            return rest.strip(_AGAIN_EDGE), True
        if not rest.startswith(("http://", "https://", "标题")):
            return rest.strip(), True  # 刷单确认, typed without a space
    return body, False


def split_when(body: str) -> tuple[str, str]:
    """`刷单 明天9:00` -> ("刷单", "明天9:00"): the words at the end that the deadline grammar reads as a moment
    (up to three, e.g. `12月3日 9:00`), apart from what comes before them. Bare numbers (`11`, `3.15`) stay with
    the text: they are more likely part of a title than a time."""
    words = body.split()
    for count in (3, 2, 1):
        if len(words) < count:
            continue
        tail = " ".join(words[-count:])
        if re.fullmatch(r"[\d\s./-]+", tail) or not _is_moment(tail):
            continue
        return " ".join(words[:-count]), tail
    return body, ""


# ` 给 学校,医院` (or `给：学校`) closing what follows 推送; 给 must start a word (写给家长的信 is a title).
_TO_WORD = re.compile(r"(?:^|(?<=\s))给")


def split_to(body: str) -> tuple[str, str]:
    """`刷单 给 学校,医院` -> ("刷单", "学校,医院"): the target after the last word-initial 给, apart. A 给 right
    after 标题 starts a title (标题 给孩子的一封信)."""
    for m in reversed(list(_TO_WORD.finditer(body))):
        before, to = body[: m.start()].strip(), body[m.end() :].strip().lstrip(":：").strip()
        if before.endswith("标题"):
            return body, ""
        if to:
            return before, to
    return body, ""


def parse_push_args(arg: str) -> PushArgs:
    """`刷单`, `刷单 确认`, `https://… 标题 警惕刷单`, `标题 警惕刷单`, `候选5 确认`, `刷单 明天9:00`,
    `刷单 给 学校,医院 明天9:00` as 推送 takes them."""
    body = clean(arg)[:MAX_INPUT].strip()
    body, again = _strip_again(body)
    body, when = split_when(body)
    if when and not again:
        body, again = _strip_again(body)  # 推送 刷单 确认 明天9:00
    body, to = split_to(body)
    if to:
        to, more_when = split_when(to)  # 推送 刷单 给 学校 明天9:00 (split above) or 给 学校 明天9:00 确认
        when = when or more_when
        if not again:
            to, again = _strip_again(to)
        if not again:
            body, again = _strip_again(body)  # 推送 刷单 确认 给 学校
        if not when:
            body, when = split_when(body)  # 推送 刷单 明天9:00 给 学校
    if m := _LINK_AND_REST.match(body):
        return PushArgs(m.group("url"), _title(m.group("rest")), again, when, to)
    if body.startswith("标题"):
        return PushArgs("", _title(body), again, when, to)
    return PushArgs(body, "", again, when, to)


def parse_push_ref(text: str) -> int | None:
    """The N of a `#N` (half- or full-width) in the text, if any."""
    m = _PUSH_REF.search(clean(text)[:MAX_INPUT])
    return int(m.group(1)) if m else None


_QUOTE = re.compile(r"^「(?P<quoted>.*)」\s*\n\s*-(?:[\s\u3000]*-){2,}[\s\u3000]*\n?(?P<reply>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Quote:
    quoted: str  # "sender: text" as the puppet renders it
    reply: str


def parse_quote(text: str) -> Quote | None:
    """A quote-reply as pad-protocol puppets deliver it: 「sender：quoted」, a dash line, the reply."""
    m = _QUOTE.match((text or "")[: MAX_INPUT * 4].strip())
    if not m:
        return None
    return Quote(quoted=m.group("quoted").strip(), reply=m.group("reply").strip())


@dataclass(frozen=True)
class Said:
    """What a message in a liaison group says: the reading, the pushes it names, and whether it is about a push."""

    reading: Reading
    refs: tuple[int, ...]
    reply: str  # the part that was read: the whole text, or the reply under a quote
    quote_of_push: bool  # a quote reply to a push (pad-style text or type-57 XML)
    about_push: bool  # quoted or numbered a push: worth a hint if it does not confirm


def read_message(text: str, names: tuple[str, ...] = ()) -> Said:
    """Read a text, a pad-style quote reply or a raw-XML quote reply (type 57): a quote of a push adds its number,
    and a face code alone under it (`[强]`, `[OK]`, 👍) confirms it."""
    quote = parse_quote(text)
    xml = xml_quote(text) if quote is None else None
    if xml is not None:
        quote = Quote(quoted=f"{xml.quoted_name}：{xml.quoted}", reply=xml.reply)
    if quote is None:
        reading = read_reply(text, names)
        return Said(reading, reading.refs, text, False, bool(reading.refs))
    reading = read_reply(quote.reply, names)
    quoted_ref = parse_push_ref(quote.quoted)
    of_push = quoted_ref is not None or "反诈预警" in quote.quoted
    refs = reading.refs or ((quoted_ref,) if quoted_ref else ())
    if of_push and is_bare_ack(quote.reply):
        reading = Reading(Verdict.YES, "引用推送回复表情", quote.reply, refs)
    return Said(reading, refs, quote.reply, of_push, of_push)


def is_confirmation(text: str, names: tuple[str, ...] = ()) -> bool:
    """True when the reply confirms a relay (`已转发`, `城关镇 已转 #3 👍`, `已转发至各村群，并要求…`); see bot.chat.reading."""
    return read_reply(text, names).confirmed


# ---- deadlines ---------------------------------------------------------------------------------


_TIME = r"(?P<h>\d{1,2})(?:(?::|点|时)(?P<m>\d{1,2}|半)?分?)?"
_WEEKDAY_NAMES = "一二三四五六日天"
_DEADLINE_FORMS = [
    re.compile(rf"^(?P<rel>今天|今日|今晚|明天|明日|后天|昨天|昨日|昨晚|前天)(?:上午|中午|下午|晚上)?(?:{_TIME})?$"),
    re.compile(
        rf"^(?:(?P<y>\d{{4}})年)?(?P<mo>\d{{1,2}})月(?P<d>\d{{1,2}})[日号](?:上午|中午|下午|晚上)?(?:{_TIME})?$"
    ),
    re.compile(rf"^(?:(?P<y>\d{{4}})[-/.])?(?P<mo>\d{{1,2}})[-/.](?P<d>\d{{1,2}})[T ]?(?:{_TIME})?$"),
    re.compile(rf"^(?P<next>下个?)?(?:周|星期|礼拜)(?P<wd>[{_WEEKDAY_NAMES}])(?:上午|中午|下午|晚上)?(?:{_TIME})?$"),
    re.compile(rf"^(?:上午|中午|下午|晚上)?{_TIME}$"),
]
_AFTERNOON = ("下午", "晚上", "今晚", "昨晚")
_DAY_OFFSETS = {
    "今天": 0,
    "今日": 0,
    "今晚": 0,
    "明天": 1,
    "明日": 1,
    "后天": 2,
    "昨天": -1,
    "昨日": -1,
    "昨晚": -1,
    "前天": -2,
}
# A year-less day this long before today was meant as a past day (refused as passed), an earlier one as next
# year's: 1月5日 typed in December is next January, 11月25日 typed on 11月26日 is yesterday.
_RECENT_PAST = timedelta(days=183)


class DeadlinePassed(DeadlineError):
    """The deadline was understood but is not in the future: `at` is the moment it was read as."""

    def __init__(self, at: datetime) -> None:
        super().__init__("in the past")
        self.at = at


class TimeMissing(DeadlineError):
    """A day without the time of day, where one is needed (a scheduled push: `明天` alone)."""


def _next_year(day: date) -> date:
    """The same day a year later (2月29日 becomes 2月28日 in a common year)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _compact(text: str) -> str:
    body = re.sub(r"\s+", " ", clean(text)).strip()
    return body.replace(" ", "") if not re.match(r"^\d{4}[-/.]\d", body) else body


def _is_moment(text: str) -> bool:
    """Whether the deadline grammar reads `text` as a moment (whether or not it is in the future)."""
    compact = _compact(text)
    return any(form.match(compact) for form in _DEADLINE_FORMS)


def _read_moment(text: str, *, now: datetime, tz: ZoneInfo, default_time: time | None) -> datetime:
    """The moment `text` names, in `tz`, past or future; DeadlineError if it names none (TimeMissing if it names
    a day but no time and `default_time` is None)."""
    compact = _compact(text)
    local_now = now.astimezone(tz)
    for form in _DEADLINE_FORMS:
        m = form.match(compact)
        if not m:
            continue
        parts = m.groupdict()
        if parts.get("rel"):
            day = local_now.date() + timedelta(days=_DAY_OFFSETS[parts["rel"]])
        elif parts.get("wd"):
            weekday = min(_WEEKDAY_NAMES.index(parts["wd"]), 6)  # 日 and 天 are both Sunday
            if parts.get("next"):  # 下周一: the Monday of next week
                day = local_now.date() + timedelta(days=7 - local_now.weekday() + weekday)
            else:  # 周一: the next Monday from today on
                day = local_now.date() + timedelta(days=(weekday - local_now.weekday()) % 7)
        elif parts.get("mo"):
            year = int(parts["y"]) if parts.get("y") else local_now.year
            try:
                day = date(year, int(parts["mo"]), int(parts["d"]))
            except ValueError as exc:
                raise DeadlineError(str(exc)) from exc
            if not parts.get("y") and day < local_now.date() - _RECENT_PAST:
                day = _next_year(day)
        else:
            day = local_now.date()
        if parts.get("h") is None:
            if default_time is None:
                raise TimeMissing("no time of day")
            at = default_time
        else:
            hour = int(parts["h"])
            minute = 30 if parts.get("m") == "半" else int(parts.get("m") or 0)
            if any(w in compact for w in _AFTERNOON) and hour < 12:
                hour += 12
            if not (0 <= hour <= 23 and 0 <= minute <= 59):
                raise DeadlineError("time out of range")
            at = time(hour, minute)
        result = datetime.combine(day, at, tzinfo=tz)
        if parts.get("wd") and not parts.get("next") and result <= local_now:
            result += timedelta(days=7)  # 周四 9:00 said on Thursday at 10:00: next Thursday
        return result
    raise DeadlineError("not understood")


def parse_deadline(text: str, *, now: datetime, tz: ZoneInfo, default_time: time) -> datetime:
    """A deadline like 今天18:00, 明天12点, 周五17:00, 11月30日17:00 or 2026-12-01 09:00, in `tz`; must be in the
    future. A bare time (下午5点, 17:00) is today's. Raises DeadlinePassed for a time understood but already past
    (今天17:00 at 21:41, 昨天, 11月25日), DeadlineError for anything else."""
    result = _read_moment(text, now=now, tz=tz, default_time=default_time)
    if result <= now:
        raise DeadlinePassed(result)
    return result


def parse_send_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """When a scheduled push goes out (`明天9:00`, `12月3日 9:00`, `周一 8:30`): the deadline grammar with the time
    of day required. Raises TimeMissing, DeadlinePassed or DeadlineError as parse_deadline does."""
    result = _read_moment(text, now=now, tz=tz, default_time=None)
    if result <= now:
        raise DeadlinePassed(result)
    return result

"""Pushing an alert to every liaison group: used by the office command and by `relaybot push`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.chat import compose
from bot.clock import show
from bot.config import Settings
from bot.content import AlertLibrary, LibraryAlert, Texts, load_library
from bot.domain import feeds as feed_watch
from bot.domain import targets
from bot.domain.relay import (
    active_units,
    audit,
    create_push,
    default_deadline,
    earlier_push_of,
    earlier_pushes_of,
    groups_of_kind,
    push_targets,
)
from bot.domain.workdays import load_calendar
from bot.storage import outbox
from bot.storage.models import Alert, FeedItem, Group, GroupKind, Liaison, Membership, Priority, Push, PushTarget, pk
from bot.transport.base import ChatKind


@dataclass(frozen=True)
class PushOutcome:
    push: Push | None
    message: str  # what to tell whoever asked: the confirmation, or why nothing was pushed
    earlier: Push | None = None  # the same alert's push earlier today, when that is why nothing was pushed
    found: bool = True  # False: what was to be pushed (a feed candidate) does not exist


def pushed_today(session: Session, alert: Alert, *, now: datetime, tz: ZoneInfo) -> Push | None:
    """The push earlier today (the local calendar day) of the same library case type or the same link, if any."""
    since = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    return earlier_push_of(session, case_type=alert.case_type, link_url=alert.link_url, since=since)


def same_push_today(
    session: Session, alert: Alert, aimed: targets.Target | None, *, now: datetime, tz: ZoneInfo
) -> Push | None:
    """The push earlier today of the same case type or link aimed at the same units (every unit, or the same
    set however written: 给 镇街 and 给 城关镇,东城街道,西湖镇 may be one set), if any: the one a push now repeats.
    The same alert for other units (刷单 给 学校, then 刷单 给 医院) is no repeat."""
    since = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    earlier = earlier_pushes_of(session, case_type=alert.case_type, link_url=alert.link_url, since=since)
    if not earlier:
        return None
    mine = set(aimed.unit_ids) if aimed is not None else None
    theirs = push_targets(session, [pk(p) for p in earlier])
    return next((p for p in earlier if theirs.get(pk(p)) == mine), None)


def push_deadline(session: Session, *, now: datetime, settings: Settings) -> datetime:
    """The deadline a push made now gets unless the office chooses one."""
    return default_deadline(
        now,
        tz=settings.tz,
        deadline_time=settings.deadline_time,
        late_push_after=settings.late_push_after,
        calendar=load_calendar(session, official=settings.official_calendar),
    )


def library_alert(item: LibraryAlert, *, now: datetime) -> Alert:
    """The alert pushed for a library case type (推送 <案件类型>, the console's 新推送)."""
    return Alert(case_type=item.case_type, title=item.title, text=item.body, created_at=now)


def untitled(alert: Alert) -> bool:
    """A link whose page gave no title: its URL stands in for one."""
    return bool(alert.link_url) and alert.title.strip() in ("", alert.link_url)


def title_from_earlier(session: Session, alert: Alert, *, now: datetime, tz: ZoneInfo, again: bool) -> bool:
    """For a link with no title: False when the office must give one. True when it can go on: pushed earlier
    today, push_alert answers that (without 确认), or with 确认 the earlier push's title serves again."""
    earlier = pushed_today(session, alert, now=now, tz=tz)
    if earlier is not None and not again:
        return True
    before = session.get(Alert, earlier.alert_id) if earlier is not None else None
    if before is None or untitled(before):
        return False
    alert.title = before.title
    alert.link_description = alert.link_description or before.link_description
    alert.link_thumbnail = alert.link_thumbnail or before.link_thumbnail
    return True


def release_link_drafts(session: Session, *, contact_id: str, url: str) -> None:
    """The same link sent privately before and now pushed: no longer left behind as a draft for a later 推送."""
    for draft in session.exec(select(Alert).where(Alert.draft_of == contact_id, Alert.link_url == url)):
        draft.draft_of = None
        session.add(draft)


def repeat_text(texts: Texts, earlier: Push, alert: Alert | None, *, tz: ZoneInfo, again_command: str) -> str:
    """Why the same alert was not pushed twice today, and what to send to push it all the same."""
    title = compose.push_title(alert) if alert is not None else ""
    at = f"{earlier.created_at.astimezone(tz):%H:%M}"
    return texts.t("push_repeat.asked", n=earlier.id, title=title, time=at, command=again_command)


def push_alert(
    session: Session,
    alert: Alert,
    *,
    now: datetime,
    actor_id: str,
    actor_name: str,
    settings: Settings,
    texts: Texts,
    again: bool = False,
    again_command: str = "",
    deadline: datetime | None = None,
    audit_note: str = "",
    target: str = "",
    city_no: int | None = None,
) -> PushOutcome:
    """Create a push of `alert` and queue it for every liaison group; nothing changes if it cannot be pushed.
    The same library case type or link pushed earlier today is pushed again only with `again` (the office's
    确认); otherwise the answer names the earlier push and `again_command`, the way to confirm (and the try is
    audited as push_repeat). `deadline`: one
    chosen by the office (the web console's 新推送), else the default; `audit_note` ends the audit row (where from).
    `target` (`给 学校,医院`, targets.resolve): aim the push at those units only, sent to the liaison groups they
    are in; "" (or 全部) for every unit. `city_no`: the city's push this one is made from (全市第N号)."""
    spec = target or default_target(settings, alert.case_type)
    try:
        aimed = targets.resolve(session, spec)
    except targets.TargetError as exc:
        if target:
            return PushOutcome(None, unknown_target_text(session, texts, exc))
        words = "、".join(exc.unknown)
        return PushOutcome(None, texts.t("targets.from_config", case=alert.case_type, spec=spec, words=words))
    label = aimed.label if aimed is not None else ""
    earlier = None if again else same_push_today(session, alert, aimed, now=now, tz=settings.tz)
    if earlier is not None:
        shown = session.get(Alert, earlier.alert_id)
        what = alert.case_type or alert.link_url or alert.title
        audit(
            session,
            now=now,
            actor_id=actor_id,
            actor_name=actor_name,
            action="push_repeat",
            detail=f"#{earlier.id} {what}{audit_note}",
        )
        return PushOutcome(
            None, repeat_text(texts, earlier, shown, tz=settings.tz, again_command=again_command), earlier
        )
    groups = groups_of_kind(session, GroupKind.LIAISON)
    if not groups:
        return PushOutcome(None, texts.t("push.no_groups"))
    units = active_units(session)
    if not units:
        return PushOutcome(None, texts.t("push.no_units"))
    if aimed is not None:
        units = [u for u in units if pk(u) in set(aimed.unit_ids)]
        groups = target_groups(session, groups, aimed.unit_ids)
    tz = settings.tz
    if deadline is None:
        deadline = push_deadline(session, now=now, settings=settings)
    alert.draft_of = None
    push = create_push(session, alert, now=now, by=actor_id, deadline=deadline)
    if city_no is not None:
        push.city_no = city_no
        session.add(push)
    if aimed is not None:
        push.target = aimed.label
        session.add(push)
        session.add_all(PushTarget(push_id=pk(push), unit_id=unit_id) for unit_id in aimed.unit_ids)
    text = compose.push_text(
        texts,
        n=pk(push),
        alert=alert,
        deadline=deadline,
        tz=tz,
        target=label,
        units=[u.name for u in units],
        city_no=city_no,
    )
    attachment = "link" if alert.link_url else "image" if alert.image_data else ""
    for group in groups:
        outbox.queue(
            session,
            now=now,
            chat_kind=ChatKind.ROOM,
            chat_id=group.room_id,
            text=text,
            alert_id=alert.id,
            attachment=attachment,
            push_id=push.id,
            priority=Priority.BROADCAST,
        )
    title = compose.push_title(alert)
    audit(
        session,
        now=now,
        actor_id=actor_id,
        actor_name=actor_name,
        action="push",
        detail=f"#{push.id} {alert.case_type} {title}{' 给 ' + label if label else ''}{audit_note}",
    )
    sent = texts.t(
        "push.sent", n=push.id, title=title, groups=len(groups), units=len(units), deadline=show(deadline, tz)
    )
    if label:
        sent += texts.t("targets.sent", target=label, units=len(units))
    return PushOutcome(push, sent)


def default_target(settings: Settings, case_type: str) -> str:
    """The target `default_targets` gives a library case type ("虚假征信=银行", or by a short name the library
    knows: "征信=银行"), or "" (every unit)."""
    if not case_type:
        return ""
    for entry in settings.default_targets:
        name, _, spec = entry.partition("=")
        item = _library().find(name.strip())
        if name.strip() == case_type or (item is not None and item.case_type == case_type):
            return spec.strip()
    return ""


@functools.cache
def _library() -> AlertLibrary:
    return load_library()


MAX_TAGS_SHOWN = 20  # tags listed when a target names nothing


def unknown_target_text(session: Session, texts: Texts, error: targets.TargetError) -> str:
    """A target with words that name nothing: which, and what can be written."""
    tags = targets.known_tags(session)
    shown = "、".join(tags[:MAX_TAGS_SHOWN]) + ("等" if len(tags) > MAX_TAGS_SHOWN else "")
    lines = [
        texts.t("targets.ambiguous", word=word, units="、".join(names[:8]) + ("等" if len(names) > 8 else ""))
        for word, names in error.ambiguous.items()
    ]
    unknown = [w for w in error.unknown if w not in error.ambiguous]
    if unknown or not lines:
        lines.insert(0, texts.t("targets.unknown", words="、".join(unknown), tags=shown or texts.t("targets.no_tags")))
    return "\n".join(lines)


def target_groups(session: Session, groups: list[Group], unit_ids: Sequence[int]) -> list[Group]:
    """The liaison groups a push aimed at `unit_ids` goes to: those where the bot has seen one of those units'
    liaisons. When some aimed unit has no liaison seen in any liaison group (not recognised yet), every liaison
    group gets it: better a push read by a few units it is not for than one a unit never sees."""
    rooms = {g.room_id for g in groups}
    seen: dict[int, set[str]] = {}
    for unit_id, room_id in session.exec(
        select(Liaison.unit_id, Membership.room_id)
        .join(Membership, col(Membership.contact_id) == Liaison.contact_id)
        .where(col(Liaison.unit_id).in_(list(unit_ids)), Liaison.active == True, col(Membership.room_id).in_(rooms))  # noqa: E712
    ):
        seen.setdefault(unit_id, set()).add(room_id)
    if any(unit_id not in seen for unit_id in unit_ids):
        return groups
    wanted = set().union(*seen.values())
    return [g for g in groups if g.room_id in wanted]


def push_candidate(
    session: Session, n: int, *, now: datetime, texts: Texts, push: Callable[[Alert], PushOutcome]
) -> PushOutcome:
    """推送 候选N: feed candidate N's alert pushed (once) by `push` (the caller's push_alert with who asks)."""
    item = session.get(FeedItem, n)
    if item is None:
        return PushOutcome(None, texts.t("feeds.unknown", n=n), found=False)
    if item.push_id is not None:
        return PushOutcome(None, texts.t("feeds.already", n=n, push=item.push_id))
    outcome = push(feed_watch.alert_for(item, now=now))
    if outcome.push is not None:
        item.push_id = outcome.push.id
        session.add(item)
    return outcome

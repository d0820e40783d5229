"""What the web console's pages show, read from the database with the same domain functions as the chat commands.

Every function takes an open session and returns plain data for a template; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.domain.escalation import standings
from bot.domain.relay import expected_counts, progress
from bot.runtime.health import health_snapshot
from bot.storage.models import (
    Alert,
    Confirmation,
    ConfirmMethod,
    Liaison,
    Outbox,
    OutboxState,
    Push,
    PushState,
    Unit,
)

METHODS = {
    ConfirmMethod.TEXT.value: "文字",
    ConfirmMethod.QUOTE.value: "引用回复",
    ConfirmMethod.IMAGE.value: "截图",
    ConfirmMethod.NOTE.value: "群接龙",
    ConfirmMethod.ANSWER.value: "回答提问",
    ConfirmMethod.OFFICE.value: "补登",
    ConfirmMethod.OBSERVED.value: "单位群看到",
}
PUSH_STATES = {PushState.OPEN.value: "进行中", PushState.CLOSED.value: "已截止", PushState.WITHDRAWN.value: "已撤回"}


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M") if moment is not None else ""


def title_of(alert: Alert) -> str:
    return alert.title or alert.case_type or (alert.text.splitlines()[0][:40] if alert.text else "") or "（无标题）"


@dataclass(frozen=True)
class PushRow:
    id: int
    title: str
    state: str
    created: str
    deadline: str
    confirmed: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.confirmed / self.total) if self.total else 100


def push_rows(session: Session, *, tz: ZoneInfo, only_open: bool = False, limit: int = 200) -> list[PushRow]:
    """The newest pushes first, each with how many of its expected units have confirmed."""
    stmt = select(Push, Alert).join(Alert, col(Alert.id) == Push.alert_id).order_by(col(Push.id).desc()).limit(limit)
    if only_open:
        stmt = stmt.where(Push.state == PushState.OPEN.value)
    rows = list(session.exec(stmt))
    if not rows:
        return []
    ids = [int(p.id or 0) for p, _ in rows]
    counts = expected_counts(session, ids)
    out = []
    for push, alert in rows:
        out.append(
            PushRow(
                id=int(push.id or 0),
                title=title_of(alert),
                state=PUSH_STATES.get(push.state, push.state),
                created=_local(push.created_at, tz),
                deadline=_local(push.deadline, tz),
                confirmed=counts[int(push.id or 0)][1],
                total=counts[int(push.id or 0)][0],
            )
        )
    return out


@dataclass(frozen=True)
class UnitState:
    unit_id: int
    unit: str
    state: str  # 已转发 / 迟报 / 补登 / 免转 / 未转发
    method: str
    at: str
    liaisons: str
    text: str
    verdict: str
    verdict_reason: str
    evidence_id: int | None  # the confirmation whose screenshot can be shown


@dataclass(frozen=True)
class PushPage:
    id: int
    title: str
    state: str
    open: bool
    created: str
    deadline: str
    text: str
    link_url: str
    confirmed: int
    total: int
    units: list[UnitState]
    target: str = ""  # a targeted push's 对象 ("学校、医院"); "" for every unit

    @property
    def percent(self) -> int:
        return round(100 * self.confirmed / self.total) if self.total else 100


def push_page(session: Session, push_id: int, *, tz: ZoneInfo) -> PushPage | None:
    push = session.get(Push, push_id)
    if push is None:
        return None
    p = progress(session, push)
    names: dict[int, list[str]] = {}
    for liaison in session.exec(select(Liaison).where(Liaison.active == True)):  # noqa: E712
        names.setdefault(liaison.unit_id, []).append(liaison.name)
    units: list[UnitState] = []
    for unit, conf in p.confirmed:
        office = conf.method == ConfirmMethod.OFFICE.value
        units.append(
            UnitState(
                unit_id=int(unit.id or 0),
                unit=unit.name,
                state="补登" if office else ("迟报" if conf.late else "已转发"),
                method=METHODS.get(conf.method, conf.method),
                at=_local(conf.at, tz),
                liaisons="、".join(names.get(int(unit.id or 0), [])),
                text=conf.evidence_text,
                verdict=conf.verdict,
                verdict_reason=conf.verdict_reason,
                evidence_id=conf.id if conf.evidence_file else None,
            )
        )
    for unit in p.missing:
        units.append(
            UnitState(
                int(unit.id or 0),
                unit.name,
                "未转发",
                "",
                "",
                "、".join(names.get(int(unit.id or 0), [])),
                "",
                "",
                "",
                None,
            )
        )
    for unit, exemption in p.exempted:
        units.append(
            UnitState(
                int(unit.id or 0), unit.name, "免转", "", _local(exemption.at, tz), "", exemption.reason, "", "", None
            )
        )
    order = {"未转发": 0, "迟报": 1, "已转发": 2, "补登": 3, "免转": 4}
    units.sort(key=lambda u: (order.get(u.state, 9), u.unit_id))
    return PushPage(
        id=push_id,
        title=title_of(p.alert),
        state=PUSH_STATES.get(push.state, push.state),
        open=push.state == PushState.OPEN.value,
        created=_local(push.created_at, tz),
        deadline=_local(push.deadline, tz),
        text=p.alert.text,
        link_url=p.alert.link_url,
        confirmed=len(p.confirmed),
        total=p.total,
        units=units,
        target=push.target,
    )


@dataclass(frozen=True)
class LadderRow:
    unit_id: int
    unit: str
    level: str  # 提醒 / 约谈 / 书面说明
    run: int  # pushes missed in a row


@dataclass(frozen=True)
class Overview:
    open_pushes: list[PushRow]
    due_today: list[PushRow]
    queued: int
    failed: int
    last_sent: str
    last_received: str = ""
    self_check: str = ""
    problems: list[str] = field(default_factory=list)  # what the bot last recorded as down, with since when
    ladder: list[LadderRow] = field(default_factory=list)


def overview(session: Session, *, now: datetime, tz: ZoneInfo, ladder=None) -> Overview:
    open_pushes = push_rows(session, tz=tz, only_open=True, limit=50)
    today = now.astimezone(tz).strftime("%m-%d")
    queued = session.exec(
        select(func.count()).select_from(Outbox).where(Outbox.state == OutboxState.PENDING.value)
    ).one()
    failed = session.exec(
        select(func.count()).select_from(Outbox).where(Outbox.state == OutboxState.FAILED.value)
    ).one()
    health = health_snapshot(session)  # what the running bot last recorded (`relaybot status` shows the same)
    check = health["self_check"]
    shown_check = ""
    if check is not None:
        shown_check = _local(check["at"], tz) + (" 发送成功" if check["send_ok"] else " 发送失败")
        if check["echo_ok"] is not None:
            shown_check += "，已收到回显" if check["echo_ok"] else "，没有收到回显"
    problems = [
        f"{label}，自 {_local(health[key], tz)} 起"
        for key, label in (
            ("link_down_since", "微信连接断开"),
            ("send_down_since", "发不出消息"),
            ("receive_down_since", "收不到消息"),
        )
        if health[key] is not None
    ]
    rows: list[LadderRow] = []
    if ladder is not None:
        names = {u.id: u.name for u in session.exec(select(Unit).where(Unit.active == True))}  # noqa: E712
        order = {"书面说明": 0, "约谈": 1, "提醒": 2}
        for standing in standings(session, as_of=now, tz=tz, ladder=ladder).values():
            if standing.level and standing.unit_id in names:
                rows.append(LadderRow(standing.unit_id, names[standing.unit_id], standing.level, standing.run))
        rows.sort(key=lambda r: (order.get(r.level, 9), -r.run, r.unit_id))
    return Overview(
        open_pushes=open_pushes,
        due_today=[r for r in open_pushes if r.deadline.startswith(today)],
        queued=int(queued),
        failed=int(failed),
        last_sent=_local(health["last_send_ok_at"], tz),
        last_received=_local(health["last_receive_at"], tz),
        self_check=shown_check,
        problems=problems,
        ladder=rows,
    )


def evidence_name(session: Session, confirmation_id: int) -> str:
    """The stored screenshot file name of a confirmation ("" if none): never a path from the user."""
    conf = session.get(Confirmation, confirmation_id)
    return conf.evidence_file if conf is not None else ""

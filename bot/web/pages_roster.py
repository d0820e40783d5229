"""The web console's 名单 and 单位 pages (issue 14).

名单: upload a roster (.xlsx/.csv), see what it would change exactly as `relaybot roster import --dry-run` and the
chat import compute it, then 应用 it; the uploaded bytes wait server-side (an audit row, pointed to by a BotState
keyed with a random id) for the admin who uploaded them, HOLD_MINUTES at most, and are read again when applied. If
the roster changed in between, the new diff is shown instead of applying. Every liaison with whether the bot has
recognised them in a liaison group, and one liaison edited inline.

单位: every active unit with its record over the last 30 days (as chat `单位 <名>` counts it), its level on the
escalation ladder and its liaisons; one unit's history (pushes, corrections, leaves).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.adapters import tables
from bot.domain.corrections import corrections_of_unit
from bot.domain.escalation import standings
from bot.domain.records import RECORD_DAYS, Record, liaison_labels, unit_records
from bot.domain.relay import audit
from bot.domain.roster import (
    HOLD_MINUTES,
    ImportReport,
    RosterError,
    RosterRead,
    edit_liaison,
    import_roster,
    kind_and_tags,
    listed,
    outcome_lines,
    read_roster,
    roster_lines,
    warning_lines,
)
from bot.operations.agenda import ladder_of
from bot.storage.models import (
    Alert,
    AuditLog,
    BotState,
    Confirmation,
    ConfirmMethod,
    Exemption,
    Leave,
    Liaison,
    Push,
    PushState,
    Unit,
    pk,
)
from bot.web.views import METHODS, title_of

log = logging.getLogger(__name__)

NAV = [("/units", "单位", "units"), ("/roster", "名单", "roster")]

HELD_PREFIX = "web_roster_"  # BotState key prefix; the rest is a random id
HELD_ACTION = "web_roster_held"  # AuditLog: the uploaded file's name and bytes


# ---- what the pages show --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiaisonRow:
    id: int
    unit: str
    unit_id: int
    name: str
    role: str
    contact_id: str
    wechat_name: str
    phone: str
    bound: str
    in_group: bool

    @property
    def recognised(self) -> bool:
        return bool(self.contact_id) and self.in_group

    @property
    def status(self) -> str:
        if self.recognised:
            return "已认出"
        return "有微信ID，群里还没见到" if self.contact_id else "还没认出"


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M") if moment is not None else ""


def liaison_rows(session: Session, *, tz: ZoneInfo) -> list[LiaisonRow]:
    """Every active liaison of an active unit, with whether the bot has seen their 微信ID in a liaison group (the
    lines of the CLI's `roster show`)."""
    return [
        LiaisonRow(
            id=line.liaison_id,
            unit=line.unit,
            unit_id=line.unit_id,
            name=line.liaison,
            role=line.role,
            contact_id=line.contact_id,
            wechat_name=line.wechat_name,
            phone=line.phone,
            bound=_local(line.bound_at, tz),
            in_group=line.in_group,
        )
        for line in roster_lines(session)
    ]


@dataclass(frozen=True)
class UnitRow:
    id: int
    name: str
    kind: str
    liaisons: str
    record: Record
    run: int
    level: str


def unit_rows(session: Session, *, now: datetime, tz: ZoneInfo, settings) -> list[UnitRow]:
    recs = unit_records(session, now=now)
    levels = standings(session, as_of=now, tz=tz, ladder=ladder_of(settings))
    people = liaison_labels(session)
    out = []
    for unit in session.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))):  # noqa: E712
        uid = pk(unit)
        standing = levels.get(uid)
        out.append(
            UnitRow(
                id=uid,
                name=unit.name,
                kind=kind_and_tags(unit.kind, unit.tags),
                liaisons="、".join(people.get(uid, [])) or "无",
                record=recs.get(uid, Record()),
                run=standing.run if standing else 0,
                level=(standing.level if standing and standing.level else "无"),
            )
        )
    return out


@dataclass(frozen=True)
class PushLine:
    id: int
    title: str
    created: str
    deadline: str
    state: str  # 已转发 / 迟报 / 补登 / 免转 / 未转发 / 待转
    at: str
    method: str
    verdict: str


@dataclass(frozen=True)
class UnitPage:
    unit: UnitRow | None
    name: str
    kind: str
    active: bool
    liaisons: list[LiaisonRow]
    pushes: list[PushLine]
    corrections: list[tuple[str, int, str, str, str]]  # when, push, kind, reason, by
    leaves: list[tuple[str, str]]  # start, end


def unit_page(session: Session, unit_id: int, *, now: datetime, tz: ZoneInfo, settings) -> UnitPage | None:
    unit = session.get(Unit, unit_id)
    if unit is None:
        return None
    row = next((r for r in unit_rows(session, now=now, tz=tz, settings=settings) if r.id == unit_id), None)
    confs = {c.push_id: c for c in session.exec(select(Confirmation).where(Confirmation.unit_id == unit_id))}
    exempt = set(session.exec(select(Exemption.push_id).where(Exemption.unit_id == unit_id)))
    lines = []
    for push, alert in session.exec(
        select(Push, Alert).join(Alert, col(Alert.id) == Push.alert_id).order_by(col(Push.id).desc()).limit(200)
    ):
        pid = pk(push)
        conf = confs.get(pid)
        if conf is not None:
            office = conf.method == ConfirmMethod.OFFICE.value
            state = "补登" if office else ("迟报" if conf.late else "已转发")
        elif pid in exempt:
            state = "免转"
        elif push.state == PushState.WITHDRAWN.value:
            state = "已撤回"
        else:
            state = "待转" if push.deadline > now and push.state == PushState.OPEN.value else "未转发"
        lines.append(
            PushLine(
                id=pid,
                title=title_of(alert),
                created=_local(push.created_at, tz),
                deadline=_local(push.deadline, tz),
                state=state,
                at=_local(conf.at, tz) if conf else "",
                method=METHODS.get(conf.method, conf.method) if conf else "",
                verdict=(conf.verdict + ("：" + conf.verdict_reason if conf.verdict_reason else "")) if conf else "",
            )
        )
    corrections = [
        (_local(c.at, tz), c.push_id, c.kind, c.reason, c.by_name or c.by_id)
        for c in corrections_of_unit(session=session, unit_id=unit_id, since=datetime(2000, 1, 1, tzinfo=tz))
    ]
    leaves = [
        (str(x.start), str(x.end))
        for x in session.exec(select(Leave).where(Leave.unit_id == unit_id).order_by(col(Leave.start).desc()))
    ]
    mine = [r for r in liaison_rows(session, tz=tz) if r.unit_id == unit_id]
    kind = kind_and_tags(unit.kind, unit.tags)
    return UnitPage(row, unit.name, kind, unit.active, mine, lines, corrections, leaves)


# ---- an upload waiting for 应用 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    token: str
    file_name: str
    data: bytes
    by_id: str
    by_name: str
    until: datetime
    digest: str


def _digest(report: ImportReport) -> str:
    """What a diff shown to the admin was; a different one when applying means the roster changed meanwhile."""
    parts = [
        report.added_units,
        report.added_liaisons,
        report.updated,
        report.deactivated_units,
        report.removed_liaisons,
        [report.unchanged],
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def _hold(session: Session, *, file_name: str, data: bytes, by_id: str, by_name: str, now, digest: str) -> Held:
    token = secrets.token_urlsafe(24)
    until = now + timedelta(minutes=HOLD_MINUTES)
    row = AuditLog(
        at=now,
        actor_id=by_id,
        actor_name=by_name[:100],
        action=HELD_ACTION,
        detail=json.dumps({"file": file_name, "data": base64.b64encode(data).decode()}, ensure_ascii=False),
    )
    session.add(row)
    session.flush()
    _point(session, token, audit_id=pk(row), by_id=by_id, until=until, digest=digest, now=now)
    return Held(token, file_name, data, by_id, by_name, until, digest)


def _point(session: Session, token: str, *, audit_id: int, by_id: str, until: datetime, digest: str, now) -> None:
    state = session.get(BotState, HELD_PREFIX + token) or BotState(key=HELD_PREFIX + token)
    state.value = json.dumps({"audit": audit_id, "by": by_id, "until": until.isoformat(), "digest": digest})
    state.updated_at = now
    session.add(state)


def _held(session: Session, token: str, *, now: datetime) -> Held | None:
    """The upload waiting under `token`; None if there is none, it expired (then it is forgotten) or is unreadable."""
    if not token or len(HELD_PREFIX + token) > 50:
        return None
    state = session.get(BotState, HELD_PREFIX + token)
    if state is None:
        return None
    try:
        pointer = json.loads(state.value)
        until = datetime.fromisoformat(pointer["until"])
        row = session.get(AuditLog, int(pointer["audit"]))
        if row is None or row.action != HELD_ACTION or now > until:
            session.delete(state)
            return None
        payload = json.loads(row.detail)
        data = base64.b64decode(payload["data"])
        return Held(
            token, str(payload["file"]), data, str(pointer["by"]), row.actor_name, until, str(pointer["digest"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def _drop_expired(session: Session, *, now: datetime) -> None:
    """Forget uploads past their time (the audit rows stay, as the chat's held imports do)."""
    for state in session.exec(select(BotState).where(col(BotState.key).startswith(HELD_PREFIX))):
        try:
            until = datetime.fromisoformat(json.loads(state.value)["until"])
        except (ValueError, KeyError, TypeError):
            until = now - timedelta(seconds=1)
        if now > until:
            session.delete(state)


# ---- the routes ---------------------------------------------------------------------------------------------


@dataclass
class Diff:
    file_name: str
    rows: int
    notes: list[str]
    lists: list[tuple[str, list[str]]]
    unchanged: int
    warnings: list[str]
    deactivated: list[str]


def _diff(texts, file_name: str, read: RosterRead, report: ImportReport) -> Diff:
    labels = (
        ("added_units", report.added_units),
        ("added_liaisons", report.added_liaisons),
        ("updated", report.updated),
        ("deactivated", report.deactivated_units),
        ("removed", report.removed_liaisons),
    )
    return Diff(
        file_name=file_name,
        rows=len(read.rows),
        notes=list(read.notes),
        lists=[(texts.t(f"roster_import.{key}"), items) for key, items in labels if items],
        unchanged=report.unchanged,
        warnings=[w.removeprefix("  - ") for w in warning_lines(read, report)[1:]],
        deactivated=list(report.deactivated_units),
    )


class RosterPages:
    def __init__(self, console) -> None:
        self.c = console

    def w(self, key: str, **values: object) -> str:
        return self.c.texts.t(f"web_roster.{key}", **values)

    def _now(self) -> datetime:
        return self.c.clock()

    async def _roster_page(self, request: Request, who, *, status: int = 200, **extra) -> Response:
        tz = self.c.settings.tz
        rows = await self.c.db(lambda s: liaison_rows(s, tz=tz))
        only = request.query_params.get("only", "")
        shown = [r for r in rows if not r.recognised] if only == "unrecognised" else rows
        context = {
            "who": who,
            "nav": "roster",
            "rows": shown,
            "total": len(rows),
            "unrecognised": sum(1 for r in rows if not r.recognised),
            "only": only,
            "notice": "",
            "errors": [],
            "notes": [],
            "editing": 0,
            "values": {},
        }
        context.update(extra)
        return self.c.page("roster_list.html", status, **context)

    async def roster(self, request: Request, who, form: dict[str, str]) -> Response:
        return await self._roster_page(request, who)

    async def upload(self, request: Request, who, form: dict[str, str]) -> Response:
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._roster_page(request, who, status=400, errors=[self.w("no_file")])
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        data = await upload.read(tables.MAX_BYTES + 1)
        if len(data) > tables.MAX_BYTES:
            return await self._roster_page(
                request, who, status=413, errors=[self.w("too_big", mb=tables.MAX_BYTES // (1024 * 1024))]
            )
        try:
            read = await run_in_threadpool(read_roster, name, data)
        except RosterError as exc:
            await self._refused(request, who, name, len(exc.problems))
            return await self._roster_page(request, who, status=400, errors=exc.failure().splitlines(), notes=exc.notes)
        except Exception:  # a reader's bug: the admin sees why nothing changed, not a stack trace
            log.exception("reading the uploaded roster %r failed", name)
            await self._refused(request, who, name, 1)
            return await self._roster_page(request, who, status=400, errors=[self.w("read_failed")])

        def work(s: Session) -> tuple[Diff, Held]:
            now = self._now()
            _drop_expired(s, now=now)
            report = import_roster(s, read.rows, columns=read.columns, apply=False)
            held = _hold(
                s, file_name=name, data=data, by_id=who.contact_id, by_name=who.name, now=now, digest=_digest(report)
            )
            s.commit()
            return _diff(self.c.texts, name, read, report), held

        diff, held = await self.c.db(work)
        return self._preview(who, diff, held, notice="")

    async def _refused(self, request: Request, who, name: str, problems: int) -> None:
        """A file that could not be imported is audited, as the chat import audits it; nothing else is written."""
        address = self.c.address(request)

        def work(s: Session) -> None:
            audit(
                s,
                now=self._now(),
                actor_id=who.contact_id,
                actor_name=who.name,
                action="roster_import_refused",
                detail=self.w("audit_refused", file=name, count=problems) + self.c.t("audit_from", address=address),
            )
            s.commit()

        await self.c.db(work)

    def _preview(self, who, diff: Diff, held: Held, *, notice: str, status: int = 200) -> Response:
        return self.c.page(
            "roster_preview.html",
            status,
            who=who,
            nav="roster",
            diff=diff,
            token=held.token,
            notice=notice,
            intro=self.w("preview", file=diff.file_name, rows=diff.rows),
            deactivates=(
                self.w("deactivates", count=len(diff.deactivated), units=listed(diff.deactivated))
                if diff.deactivated
                else ""
            ),
            until=self.w(
                "held_until", until=held.until.astimezone(self.c.settings.tz).strftime("%H:%M"), minutes=HOLD_MINUTES
            ),
        )

    async def apply(self, request: Request, who, form: dict[str, str]) -> Response:
        token = form.get("token", "")
        address = self.c.address(request)
        texts = self.c.texts

        def work(s: Session):
            now = self._now()
            held = _held(s, token, now=now)
            if held is None:
                s.commit()  # an expired pointer is forgotten
                return "gone", None
            if held.by_id != who.contact_id:
                return "not_yours", held
            try:
                read = read_roster(held.file_name, held.data)
            except RosterError:
                return "gone", None
            report = import_roster(s, read.rows, columns=read.columns, apply=False)
            digest = _digest(report)
            if digest != held.digest:
                state = s.get(BotState, HELD_PREFIX + token)
                pointer = json.loads(state.value) if state is not None else {}
                _point(
                    s,
                    token,
                    audit_id=int(pointer.get("audit", 0)),
                    by_id=held.by_id,
                    until=held.until,
                    digest=digest,
                    now=now,
                )
                s.commit()
                return "changed", (_diff(texts, held.file_name, read, report), held)
            report = import_roster(s, read.rows, columns=read.columns)
            audit(
                s,
                now=now,
                actor_id=who.contact_id,
                actor_name=who.name,
                action="roster_import",
                detail=self.w("audit_import", file=held.file_name, rows=len(read.rows))
                + self.c.t("audit_from", address=address),
            )
            state = s.get(BotState, HELD_PREFIX + token)
            if state is not None:
                s.delete(state)
            s.commit()
            return "applied", (held.file_name, read, report)

        outcome, value = await self.c.db(work)
        if outcome == "gone":
            return self.c.refusal(410, self.w("gone", minutes=HOLD_MINUTES), who)
        if outcome == "not_yours":
            return self.c.refusal(403, self.w("not_yours", name=value.by_name or value.by_id), who)
        if outcome == "changed":
            diff, held = value
            return self._preview(who, diff, held, notice=self.w("changed"), status=409)
        file_name, read, report = value
        lines = outcome_lines(read, report, preview=False)
        return self.c.page(
            "roster_applied.html",
            who=who,
            nav="roster",
            notice=self.w("applied", file=file_name, rows=len(read.rows)),
            lines=lines,
        )

    async def edit(self, request: Request, who, form: dict[str, str]) -> Response:
        liaison_id = _number(request.path_params["liaison_id"])
        address = self.c.address(request)
        values = {k: form.get(k, "") for k in ("name", "contact_id", "wechat_name", "phone", "role")}

        def work(s: Session):
            liaison = s.get(Liaison, liaison_id)
            unit = s.get(Unit, liaison.unit_id) if liaison is not None else None
            try:
                changes = edit_liaison(s, liaison_id, **values)
            except RosterError as exc:
                s.rollback()
                return "refused", exc.problems
            assert liaison is not None
            shown = f"{unit.name if unit else '?'}-{liaison.name}"
            if changes:
                audit(
                    s,
                    now=self._now(),
                    actor_id=who.contact_id,
                    actor_name=who.name,
                    action="roster_edit",
                    detail=self.w("audit_edit", who=shown, changes="，".join(changes))
                    + self.c.t("audit_from", address=address),
                )
            s.commit()
            return "done", (shown, "，".join(changes))

        outcome, value = await self.c.db(work)
        if outcome == "refused":
            return await self._roster_page(request, who, status=400, errors=value, editing=liaison_id, values=values)
        shown, changes = value
        notice = self.w("edited", who=shown, changes=changes) if changes else self.w("edited_nothing", who=shown)
        return await self._roster_page(request, who, notice=notice)

    async def units(self, request: Request, who, form: dict[str, str]) -> Response:
        settings = self.c.settings
        rows = await self.c.db(lambda s: unit_rows(s, now=self._now(), tz=settings.tz, settings=settings))
        return self.c.page("roster_units.html", who=who, nav="units", rows=rows, days=RECORD_DAYS)

    async def unit(self, request: Request, who, form: dict[str, str]) -> Response:
        settings = self.c.settings
        unit_id = _number(request.path_params["unit_id"])
        data = await self.c.db(lambda s: unit_page(s, unit_id, now=self._now(), tz=settings.tz, settings=settings))
        if data is None:
            return self.c.refusal(404, self.w("no_unit"), who)
        return self.c.page("roster_unit.html", who=who, nav="units", u=data, days=RECORD_DAYS)


def _number(text: str) -> int:
    """A path's id; 0 (which no row has) for anything but a plain number."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0


def routes(console) -> list[BaseRoute]:
    p = RosterPages(console)
    g = console.guarded
    too_big = console.texts.t("web_roster.too_big", mb=tables.MAX_BYTES // (1024 * 1024))
    return [
        Route("/roster", g(p.roster), methods=["GET"]),
        Route("/roster/upload", console.capped(p.upload, too_big=too_big), methods=["POST"]),
        Route("/roster/apply", g(p.apply, act=True), methods=["POST"]),
        Route("/roster/liaisons/{liaison_id}", g(p.edit, act=True), methods=["POST"]),
        Route("/units", g(p.units), methods=["GET"]),
        Route("/units/{unit_id}", g(p.unit), methods=["GET"]),
    ]

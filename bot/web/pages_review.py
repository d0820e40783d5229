"""截图核验 and the push page's actions (issue 14).

截图核验 lists the screenshots the check left 存疑 or 未核验; an admin marks each 认可 or 驳回, and that person's
verdict replaces the machine's wherever verdicts are shown (the 进度 text in chat, reports, the push page), because
it is stored in the same columns: 认可 is Confirmation.verdict 已核验 with the reason "人工认可：<name>", 驳回 is
存疑 with the reason "办公室驳回：<name>" (counted and listed as 存疑 in chat and reports, with the office's word as
the reason). Neither deletes the confirmation. A person's verdict is never overwritten by the checker (it only
checks rows without a verdict); a new screenshot for the same confirmation is checked afresh.

The push page's buttons 改截止, 撤回, 补登 and 免转 do what the chat commands 截止, 撤回, 补登 and 免转 do
(handlers/office.py, handlers/office_corrections.py), with the same domain functions and the same messages to the
liaison groups through the outbox; the answer the chat command would give its sender is shown on the page.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.screenshot_check import hash_distance
from bot.chat import compose
from bot.chat.parsing import DeadlineError, DeadlinePassed, parse_deadline
from bot.clock import show
from bot.domain import corrections
from bot.domain.corrections import Outcome
from bot.domain.relay import audit, groups_of_kind, progress
from bot.reports.render import add_sheet
from bot.storage import outbox
from bot.storage.models import (
    Alert,
    AuditLog,
    Confirmation,
    ConfirmMethod,
    EvidenceVerdict,
    GroupKind,
    Liaison,
    Miss,
    Push,
    PushState,
    Unit,
)
from bot.transport.base import ChatKind
from bot.web import views

NAV = [("/review", "截图核验", "review")]

APPROVED_PREFIX = "人工认可："
REJECTED_PREFIX = "办公室驳回："
_REUSED = re.compile(r"^与(.+)的截图相同$")
_MAX_DISTANCE = 8  # as screenshot_check.check_screenshot's reuse check
_REVIEW_LIMIT = 200


def decided_by_person(conf: Confirmation) -> bool:
    return conf.verdict_reason.startswith((APPROVED_PREFIX, REJECTED_PREFIX))


# ---- what the 截图核验 page shows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    push_id: int
    title: str
    unit: str


@dataclass(frozen=True)
class ReviewRow:
    id: int
    push_id: int
    title: str
    unit: str
    liaison: str
    words: str
    verdict: str
    reason: str
    at: str
    has_file: bool
    match: Match | None


def _match(session: Session, conf: Confirmation) -> Match | None:
    """The earlier screenshot the reuse check found this one to repeat (the nearest hash, as the check did)."""
    if not conf.evidence_hash or not _REUSED.match(conf.verdict_reason):
        return None
    best: tuple[int, Confirmation] | None = None
    for other in session.exec(select(Confirmation).where(Confirmation.evidence_hash != "", Confirmation.id != conf.id)):
        if other.unit_id == conf.unit_id and other.push_id == conf.push_id:
            continue
        distance = hash_distance(conf.evidence_hash, other.evidence_hash)
        if distance <= _MAX_DISTANCE and (best is None or distance < best[0]):
            best = (distance, other)
    if best is None:
        return None
    other = best[1]
    push = session.get(Push, other.push_id)
    alert = session.get(Alert, push.alert_id) if push else None
    unit = session.get(Unit, other.unit_id)
    return Match(other.push_id, views.title_of(alert) if alert else "", unit.name if unit else "?")


def review_rows(session: Session, *, tz) -> list[ReviewRow]:
    """Screenshots the check left 存疑 or 未核验 and no person has decided on, newest first."""
    rows = session.exec(
        select(Confirmation, Push, Alert, Unit)
        .join(Push, col(Push.id) == Confirmation.push_id)
        .join(Alert, col(Alert.id) == Push.alert_id)
        .join(Unit, col(Unit.id) == Confirmation.unit_id)
        .where(
            col(Confirmation.verdict).in_([EvidenceVerdict.DOUBTFUL.value, EvidenceVerdict.UNVERIFIED.value]),
            Push.state != PushState.WITHDRAWN.value,
        )
        .order_by(col(Confirmation.id).desc())
    ).all()
    out: list[ReviewRow] = []
    for conf, push, alert, unit in rows:
        if decided_by_person(conf):
            continue
        liaison = session.get(Liaison, conf.liaison_id) if conf.liaison_id else None
        out.append(
            ReviewRow(
                id=int(conf.id or 0),
                push_id=int(push.id or 0),
                title=views.title_of(alert),
                unit=unit.name,
                liaison=liaison.name if liaison else "",
                words=conf.evidence_text,
                verdict=conf.verdict,
                reason=conf.verdict_reason,
                at=(conf.evidence_at or conf.at).astimezone(tz).strftime("%m-%d %H:%M"),
                has_file=bool(conf.evidence_file),
                match=_match(session, conf),
            )
        )
        if len(out) >= _REVIEW_LIMIT:
            break
    return out


# ---- the pages and actions ----------------------------------------------------------------------------------


class ReviewPages:
    def __init__(self, console) -> None:
        self.c = console

    def t(self, key: str, **values: object) -> str:
        return self.c.texts.t(f"web_review.{key}", **values)

    def _audit(self, s, who, request: Request, action: str, detail: str, now: datetime) -> None:
        audit(
            s,
            now=now,
            actor_id=who.contact_id,
            actor_name=who.name,
            action=action,
            detail=detail + self.c.t("audit_from", address=self.c.address(request)),
        )

    def _result(self, who, message: str, push_id: int, *, ok: bool, status: int = 200) -> Response:
        """Done: back to the push's page, which says what was done. Refused: the reason, with a link back."""
        if ok:
            self.c.flash(who, message)
            return RedirectResponse(f"/pushes/{push_id}", 303)
        return self.c.page("review_result.html", status, who=who, message=message, ok=ok, push_id=push_id, nav="pushes")

    # -- 截图核验 --

    async def review(self, request: Request, who, form: dict[str, str]) -> Response:
        rows = await self.c.db(lambda s: review_rows(s, tz=self.c.settings.tz))
        notice = ""
        done = request.query_params.get("done", "")
        m = re.fullmatch(r"(ok|no)-(\d{1,12})", done)
        if m:
            conf_id = int(m[2])

            def said(s) -> str:
                conf = s.get(Confirmation, conf_id)
                unit = s.get(Unit, conf.unit_id) if conf else None
                if conf is None or unit is None:
                    return ""
                key = "approved" if m[1] == "ok" else "rejected"
                return self.t(key, unit=unit.name, n=conf.push_id)

            notice = await self.c.db(said)
        return self.c.page("review_list.html", who=who, rows=rows, notice=notice, nav="review")

    async def decide(self, request: Request, who, form: dict[str, str]) -> Response:
        conf_id = request.path_params["confirmation_id"]
        approve = request.url.path.endswith("/approve")

        def work(s) -> str:
            conf = s.get(Confirmation, conf_id)
            if conf is None:
                return "missing"
            if conf.verdict not in (EvidenceVerdict.DOUBTFUL.value, EvidenceVerdict.UNVERIFIED.value) or (
                decided_by_person(conf)
            ):
                return "decided"
            now = self.c.clock()
            unit = s.get(Unit, conf.unit_id)
            before = f"{conf.verdict}（{conf.verdict_reason}）"
            if approve:
                conf.verdict = EvidenceVerdict.VERIFIED.value
                conf.verdict_reason = (APPROVED_PREFIX + who.shown)[:100]
            else:
                conf.verdict = EvidenceVerdict.DOUBTFUL.value
                conf.verdict_reason = (REJECTED_PREFIX + who.shown)[:100]
            s.add(conf)
            self._audit(
                s,
                who,
                request,
                "evidence_approve" if approve else "evidence_reject",
                f"#{conf.push_id} {unit.name if unit else conf.unit_id} 截图{'认可' if approve else '驳回'}，原为{before}",
                now,
            )
            s.commit()
            return "ok" if approve else "no"

        outcome = await self.c.db(work)
        if outcome == "missing":
            return self.c.refusal(404, self.t("no_confirmation"), who)
        if outcome == "decided":
            return self.c.refusal(409, self.t("already_decided"), who)
        return RedirectResponse(f"/review?done={outcome}-{conf_id}", 303)

    # -- the push page's actions --

    async def deadline(self, request: Request, who, form: dict[str, str]) -> Response:
        """截止 #N 时间 (handlers/office.py _on_deadline)."""
        push_id = request.path_params["push_id"]
        when_text = form.get("when", "").strip()[:100]
        # a browser's date-time picker sends 2026-12-01T09:00, which the chat grammar reads with a space
        when_text = re.sub(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})$", r"\1 \2", when_text)
        settings, texts, tz = self.c.settings, self.c.texts, self.c.settings.tz

        def work(s) -> tuple[bool, str]:
            push = s.get(Push, push_id)
            if push is None:
                return False, texts.t("push.not_found", n=push_id)
            if push.state == PushState.WITHDRAWN.value:
                return False, texts.t("push_withdrawn.deadline", n=push_id)
            if not when_text:
                return False, self.t("need_deadline")
            now = self.c.clock()
            try:
                deadline = parse_deadline(when_text, now=now, tz=tz, default_time=settings.deadline_time)
            except DeadlinePassed as passed:
                at = f"{passed.at.astimezone(tz):%H:%M}"
                return False, texts.t("push_deadline.passed", when=show(passed.at, tz), n=push_id, time=at)
            except DeadlineError:
                return False, texts.t("push.deadline_bad", text=when_text)
            push.deadline = deadline
            push.state, push.closed_at = PushState.OPEN.value, None
            s.add(push)
            for miss in s.exec(select(Miss).where(Miss.push_id == push.id)):
                s.delete(miss)  # a moved deadline has not passed yet: no one has missed it
            for conf in s.exec(select(Confirmation).where(Confirmation.push_id == push.id)):
                if conf.method == ConfirmMethod.OFFICE.value:
                    continue  # a 补登 is on time or late by the office's word
                conf.late = conf.at > deadline
                s.add(conf)
            shown = show(deadline, tz)
            for group in groups_of_kind(s, GroupKind.LIAISON):
                outbox.queue(
                    s,
                    now=now,
                    chat_kind=ChatKind.ROOM,
                    chat_id=group.room_id,
                    text=texts.t("push.deadline_changed", n=push.id, deadline=shown),
                    push_id=push.id,
                )
            self._audit(s, who, request, "deadline", f"#{push.id} -> {deadline.isoformat()}", now)
            s.commit()
            return True, texts.t("push.deadline_set", n=push.id, deadline=shown)

        ok, message = await self.c.db(work)
        return self._result(who, message, push_id, ok=ok, status=200 if ok else 400)

    async def withdraw(self, request: Request, who, form: dict[str, str]) -> Response:
        """撤回 #N (handlers/office.py _on_withdraw)."""
        push_id = request.path_params["push_id"]
        texts = self.c.texts
        sure = form.get("sure") == "1"

        def work(s) -> tuple[bool, str]:
            push = s.get(Push, push_id)
            if push is None:
                return False, texts.t("push.not_found", n=push_id)
            if push.state == PushState.WITHDRAWN.value:
                return False, texts.t("push.already_withdrawn", n=push_id)
            if not sure:
                return False, self.t("confirm_withdraw")
            now = self.c.clock()
            push.state = PushState.WITHDRAWN.value
            s.add(push)
            alert = s.get_one(Alert, push.alert_id)
            groups = groups_of_kind(s, GroupKind.LIAISON)
            for group in groups:
                outbox.queue(
                    s,
                    now=now,
                    chat_kind=ChatKind.ROOM,
                    chat_id=group.room_id,
                    text=texts.t("push.withdrawn_group", n=push.id, title=compose.push_title(alert)),
                    push_id=push.id,
                )
            self._audit(s, who, request, "withdraw", f"#{push.id}", now)
            s.commit()
            return True, texts.t("push.withdrawn", n=push.id, groups=len(groups))

        ok, message = await self.c.db(work)
        return self._result(who, message, push_id, ok=ok, status=200 if ok else 400)

    async def correct(self, request: Request, who, form: dict[str, str]) -> Response:
        """补登 / 免转 <单位> #N <理由> (handlers/office_corrections.py on_add / on_exempt)."""
        push_id = request.path_params["push_id"]
        adding = request.url.path.endswith("/add")
        texts, tz = self.c.texts, self.c.settings.tz
        reason = form.get("reason", "").strip()[: corrections.MAX_REASON]
        unit_text = form.get("unit", "").strip()
        usage = "corrections.add_usage" if adding else "corrections.exempt_usage"

        def counts(s, push: Push) -> dict[str, int]:
            p = progress(s, push)
            return {"done": len(p.confirmed), "total": p.total}

        def already(unit: Unit, push: Push, conf: Confirmation) -> str:
            how = texts.t("corrections.how_added") if conf.method == ConfirmMethod.OFFICE.value else ""
            return texts.t("corrections.already_confirmed", unit=unit.name, n=push.id, when=show(conf.at, tz), how=how)

        def work(s) -> tuple[bool, str]:
            push = s.get(Push, push_id)
            if push is None:
                return False, texts.t("push.not_found", n=push_id)
            unit = s.get(Unit, int(unit_text)) if unit_text.isdigit() and len(unit_text) < 12 else None
            if unit is None or not unit.active:
                return False, self.t("pick_unit")
            if not reason:
                return False, texts.t("corrections.need_reason", usage=texts.t(usage))
            now = self.c.clock()
            act = corrections.add_confirmation if adding else corrections.exempt
            last_audit = s.exec(select(AuditLog.id).order_by(col(AuditLog.id).desc())).first() or 0
            result = act(
                session=s, push=push, unit=unit, reason=reason, by_id=who.contact_id, by_name=who.name, now=now
            )
            if result.outcome == Outcome.WITHDRAWN:
                return False, texts.t("push_withdrawn.add" if adding else "push_withdrawn.exempt", n=push.id)
            if result.outcome == Outcome.CONFIRMED:
                assert result.confirmation is not None
                return False, already(unit, push, result.confirmation)
            if result.outcome == Outcome.EXEMPTED:
                if adding:
                    return False, texts.t("corrections.add_exempted", unit=unit.name, n=push.id)
                assert result.exemption is not None
                return False, texts.t(
                    "corrections.already_exempted", unit=unit.name, n=push.id, reason=result.exemption.reason
                )
            # The domain wrote the audit row (as for the chat command): say it came from the console and where.
            action = "correction_add" if adding else "correction_exempt"
            for row in s.exec(
                select(AuditLog).where(
                    col(AuditLog.id) > last_audit, AuditLog.actor_id == who.contact_id, AuditLog.action == action
                )
            ):
                row.detail += self.c.t("audit_from", address=self.c.address(request))
                s.add(row)
            s.commit()
            if adding:
                assert result.confirmation is not None
                key = "corrections.added_late" if result.confirmation.late else "corrections.added"
            else:
                key = "corrections.exempted"
            return True, texts.t(key, unit=unit.name, n=push.id, reason=reason, **counts(s, push))

        ok, message = await self.c.db(work)
        return self._result(who, message, push_id, ok=ok, status=200 if ok else 400)

    async def export(self, request: Request, who, form: dict[str, str]) -> Response:
        """The push page's unit table as an .xlsx."""
        push_id = request.path_params["push_id"]
        data = await self.c.db(lambda s: views.push_page(s, push_id, tz=self.c.settings.tz))
        if data is None:
            return self.c.refusal(404, self.c.t("no_push", n=push_id), who)
        wb = Workbook()
        wb.remove(wb.active)
        add_sheet(
            wb,
            f"推送{push_id}",
            ["单位", "状态", "方式", "时间", "联络员", "原话/理由", "截图核验", "核验原因"],
            ((u.unit, u.state, u.method, u.at, u.liaisons, u.text, u.verdict, u.verdict_reason) for u in data.units),
            {},
        )
        buffer = io.BytesIO()
        wb.save(buffer)
        return Response(
            buffer.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f'attachment; filename="push-{push_id}.xlsx"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )


def routes(console) -> list[BaseRoute]:
    pages = ReviewPages(console)
    g = console.guarded
    return [
        Route("/review", g(pages.review), methods=["GET"]),
        Route("/review/{confirmation_id:int}/approve", g(pages.decide, act=True), methods=["POST"]),
        Route("/review/{confirmation_id:int}/reject", g(pages.decide, act=True), methods=["POST"]),
        Route("/pushes/{push_id:int}/deadline", g(pages.deadline, act=True), methods=["POST"]),
        Route("/pushes/{push_id:int}/withdraw", g(pages.withdraw, act=True), methods=["POST"]),
        Route("/pushes/{push_id:int}/add", g(pages.correct, act=True), methods=["POST"]),
        Route("/pushes/{push_id:int}/exempt", g(pages.correct, act=True), methods=["POST"]),
        Route("/pushes/{push_id:int}/export.xlsx", g(pages.export), methods=["GET"]),
    ]

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
from collections.abc import Callable
from dataclasses import dataclass

from openpyxl import Workbook
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.screenshot_check import hash_distance
from bot.domain import corrections, evidence
from bot.operations import office
from bot.operations.office import Actor
from bot.reports.render import add_sheet
from bot.storage.models import (
    Alert,
    Confirmation,
    EvidenceVerdict,
    Liaison,
    Push,
    PushState,
    Unit,
    pk,
)
from bot.web import views

NAV = [("/review", "截图核验", "review")]

_REUSED = re.compile(r"^与(.+)的截图相同$")
_MAX_DISTANCE = 8  # as screenshot_check.check_screenshot's reuse check
_REVIEW_LIMIT = 200


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
        if evidence.decided_by_person(conf):
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
            if not evidence.open_to_review(conf):
                return "decided"
            evidence.decide(
                s,
                conf,
                approve=approve,
                by_id=who.contact_id,
                by_name=who.name,
                shown=who.shown,
                now=self.c.clock(),
                audit_note=self.c.t("audit_from", address=self.c.address(request)),
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

    def _actor(self, request: Request, who) -> Actor:
        """The signed-in person, with where the action came from for the audit row."""
        return Actor(who.contact_id, who.name, self.c.t("audit_from", address=self.c.address(request)))

    async def _push_action(self, request: Request, who, work: Callable[[Session, Push], tuple[bool, str]]) -> Response:
        """A push page button: `work(session, push)` does it for a push that exists and says whether it was done
        (then committed) and what the chat command would answer; back to the push's page, or the refusal."""
        push_id = request.path_params["push_id"]

        def run(s: Session) -> tuple[bool, str]:
            push = s.get(Push, push_id)
            if push is None:
                return False, self.c.texts.t("push.not_found", n=push_id)
            done, message = work(s, push)
            if done:
                s.commit()
            return done, message

        ok, message = await self.c.db(run)
        return self._result(who, message, push_id, ok=ok, status=200 if ok else 400)

    async def deadline(self, request: Request, who, form: dict[str, str]) -> Response:
        """截止 #N 时间 (handlers/office.py _on_deadline; both call bot/operations/office.py)."""
        when_text = form.get("when", "").strip()[:100]
        # a browser's date-time picker sends 2026-12-01T09:00, which the chat grammar reads with a space
        when_text = re.sub(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})$", r"\1 \2", when_text)
        settings, texts = self.c.settings, self.c.texts

        def work(s: Session, push: Push) -> tuple[bool, str]:
            n = pk(push)
            refused = office.deadline_refused(push, n, texts) or ("" if when_text else self.t("need_deadline"))
            if refused:
                return False, refused
            now = self.c.clock()
            deadline, why = office.read_deadline(when_text, now=now, settings=settings, texts=texts, n=n)
            if deadline is None:
                return False, why
            actor = self._actor(request, who)
            return True, office.change_deadline(s, push, deadline, now=now, tz=settings.tz, texts=texts, actor=actor)

        return await self._push_action(request, who, work)

    async def withdraw(self, request: Request, who, form: dict[str, str]) -> Response:
        """撤回 #N (handlers/office.py _on_withdraw; both call bot/operations/office.py)."""
        texts = self.c.texts
        sure = form.get("sure") == "1"

        def work(s: Session, push: Push) -> tuple[bool, str]:
            refused = office.withdraw_refused(push, pk(push), texts) or ("" if sure else self.t("confirm_withdraw"))
            if refused:
                return False, refused
            return True, office.withdraw(s, push, now=self.c.clock(), texts=texts, actor=self._actor(request, who))

        return await self._push_action(request, who, work)

    async def correct(self, request: Request, who, form: dict[str, str]) -> Response:
        """补登 / 免转 <单位> #N <理由> (handlers/office_corrections.py on_add / on_exempt; both call
        bot/operations/office.py)."""
        adding = request.url.path.endswith("/add")
        texts = self.c.texts
        reason = form.get("reason", "").strip()[: corrections.MAX_REASON]
        unit_text = form.get("unit", "").strip()
        usage = "corrections.add_usage" if adding else "corrections.exempt_usage"

        def work(s: Session, push: Push) -> tuple[bool, str]:
            unit = s.get(Unit, int(unit_text)) if unit_text.isdigit() and len(unit_text) < 12 else None
            if unit is None or not unit.active:
                return False, self.t("pick_unit")
            if not reason:
                return False, texts.t("corrections.need_reason", usage=texts.t(usage))
            answer = office.correct(
                s,
                push,
                unit,
                reason,
                adding=adding,
                now=self.c.clock(),
                tz=self.c.settings.tz,
                texts=texts,
                actor=self._actor(request, who),
            )
            return answer.done, answer.message

        return await self._push_action(request, who, work)

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

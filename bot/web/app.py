"""The office's web console (`relaybot web`, issue 14): Starlette + Jinja2, server-rendered, every asset local.

Access: sign-in without passwords (bot/domain/access.py). Every page but the sign-in pages and the stylesheet needs
a session; every form carries the session's CSRF token (the sign-in forms a pre-session one, double-submitted in a
cookie); only `admin_ids` may change anything, `viewer_ids` only look. Cookies are HttpOnly and SameSite=Strict
(and Secure behind HTTPS). Every change goes through the same domain functions as the chat commands, what must be
sent goes through the outbox (the running bot sends it at its pace), and every change is audited with who and
from where.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.adapters import tables
from bot.config import Settings
from bot.content import Texts, load_texts
from bot.domain import access
from bot.domain.evidence import evidence_path
from bot.domain.relay import audit
from bot.operations import office
from bot.operations.agenda import ladder_of
from bot.storage import outbox
from bot.storage.db import session as db_session
from bot.storage.models import Priority, Push, PushState, WebSession
from bot.transport.base import ChatKind
from bot.web import views

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
COOKIE = "relaybot_session"
REFRESH_SECONDS = 5  # how often an open page reloads its live part (a push's units)
PRE_COOKIE = "relaybot_pre"  # the sign-in forms' CSRF token, before there is a session
# An upload's request body past this is refused before it is read: the table reader's own cap (rosters and
# incident figures), plus the form's other fields. Read at request time, so a test may lower it.
MAX_BODY = tables.MAX_BYTES + 64 * 1024
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a sign-in link's token never leaves in a Referer
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Who:
    """The person behind a request's session, with the role the settings give them now."""

    session_id: int
    contact_id: str
    name: str
    role: access.Role
    csrf: str
    city: bool = False  # in city_admin_ids on a district's console: may push to every district (全市)

    @property
    def can_act(self) -> bool:
        return self.role == access.Role.ADMIN

    @property
    def is_city(self) -> bool:
        """A city admin: may push to every district (全市); only looks at the district's own pages unless also
        the district's admin."""
        return self.city

    @property
    def label(self) -> str:
        """What the page header says the person may do."""
        if self.can_act:
            return "管理员" + ("、市反诈中心" if self.city else "")
        return "市反诈中心" if self.city else "只能查看"

    @property
    def shown(self) -> str:
        return self.name or self.contact_id


Handler = Callable[[Request, Who, dict[str, str]], Awaitable[Response]]


class FormRefused(Exception):
    """A request body that is not a form the console can read (Starlette's limits, broken multipart, a wrong
    content type on an upload): answered with the refusal page, before any handler runs."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    """The app's state: settings, database, clock and the templates."""

    def __init__(self, settings: Settings, engine, clock, texts: Texts | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.texts = texts or load_texts()
        self._on_change: list[Callable[[], None]] = []
        self._flash: dict[int, str] = {}
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
        )

    # ---- plumbing ---------------------------------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every change made through the console (a page's cache is stale then)."""
        self._on_change.append(callback)

    def flash(self, who: Who, text: str) -> None:
        """A line for this session's next page (after an action's redirect); kept in memory only."""
        if len(self._flash) > 1000:  # sessions that never came back for theirs
            self._flash.clear()
        self._flash[who.session_id] = text

    def take_flash(self, who: Who) -> str:
        return self._flash.pop(who.session_id, "")

    def changed(self) -> None:
        for callback in self._on_change:
            callback()

    def role(self, contact_id: str) -> access.Role | None:
        """The console role the settings give a person now (the city's admins only on a district's console)."""
        city = self.settings.city_admin_ids if self.settings.district else []
        return access.role_of(
            contact_id, admin_ids=self.settings.admin_ids, viewer_ids=self.settings.viewer_ids, city_ids=city
        )

    def t(self, key: str, **values: object) -> str:
        """A sentence of the console's pages (content/messages_web.toml, [web_page])."""
        return self.texts.t(f"web_page.{key}", **values)

    def _locked(self) -> str:
        return self.t("locked", minutes=int(access.LOCK_FOR.total_seconds() // 60))

    def _refused_code(self, why: access.CodeRefused) -> str:
        if why == access.CodeRefused.LOCKED:
            return self._locked()
        if why == access.CodeRefused.TOO_SOON:
            return self.t("too_soon")
        return self.t("too_many", n=access.CODES_PER_HOUR)

    async def db(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(session)` in a worker thread; it commits what it changes."""

        def run() -> Any:
            with db_session(self.engine) as s:
                return work(s)

        return await run_in_threadpool(run)

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def refusal(self, status: int, message: str, who: Who | None = None) -> HTMLResponse:
        return self.page("refused.html", status, message=message, who=who)

    @staticmethod
    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def _who(self, s, token: str) -> Who | None:
        row = access.session_of(s, token, now=self.clock())
        if row is None:
            return None
        role = self.role(row.contact_id)
        if role is None:  # removed from the settings since signing in
            return None
        city = bool(self.settings.district) and row.contact_id in self.settings.city_admin_ids
        return Who(int(row.id or 0), row.contact_id, row.name, role, row.csrf, city)

    def guarded(
        self, handler: Handler, *, act: bool = False, too_big: str = ""
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route that needs a session; a POST also its CSRF token, and `act` an admin. With `too_big` (the
        sentence for a file past the cap) it is an upload: a multipart form whose body is at most MAX_BODY."""

        async def endpoint(request: Request) -> Response:
            token = request.cookies.get(COOKIE, "")
            who = await self.db(lambda s: self._who(s, token))
            if who is None:
                if request.method == "GET" and not request.url.path.startswith("/evidence/"):
                    return RedirectResponse("/login?next=" + quote(request.url.path), 303, headers=_HEADERS)
                return self.refusal(401, self.t("sign_in_first"))
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    if too_big:
                        self._check_upload(request, too_big)
                    form = {k: v for k, v in (await self.read_form(request)).items() if isinstance(v, str)}
                except FormRefused as refused:
                    return self.refusal(refused.status, refused.message, who)
                if not hmac.compare_digest(form.get("csrf", ""), who.csrf):
                    return self.refusal(403, self.t("stale_form"), who)
                if act and not who.can_act:
                    return self.refusal(403, self.t("viewer_only"), who)
            try:
                return await handler(request, who, form)
            finally:
                if request.method == "POST":
                    self.changed()

        return endpoint

    def capped(self, handler: Handler, *, too_big: str) -> Callable[[Request], Awaitable[Response]]:
        """An admin's file upload: `guarded(act=True)`, and a body past MAX_BODY (or of unknown length) is refused
        with `too_big` before anything reads it; a body that is not a multipart form is refused too."""
        return self.guarded(handler, act=True, too_big=too_big)

    def _check_upload(self, request: Request, too_big: str) -> None:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "multipart/form-data":
            raise FormRefused(415, self.t("upload_not_multipart"))
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            length = MAX_BODY + 1
        if length > MAX_BODY:
            raise FormRefused(413, too_big)

    async def read_form(self, request: Request) -> FormData:
        """The request's form (parsed once, kept on the request). What Starlette's parser refuses (too many fields
        or files, a part past its limit, broken multipart) is a FormRefused in Chinese, not Starlette's English."""
        try:
            return await request.form()
        except (HTTPException, MultiPartException) as exc:
            detail = str(getattr(exc, "detail", "") or getattr(exc, "message", "") or exc)
            raise FormRefused(400, self._form_problem(detail)) from None

    def _form_problem(self, detail: str) -> str:
        # Starlette says what went wrong in English only; its wording picks the sentence, any other is "broken".
        lowered = detail.lower()
        if lowered.startswith("too many"):
            return self.t("form_too_many")
        if "maximum size" in lowered:
            return self.t("form_part_too_big")
        return self.t("form_broken")

    async def form_refused(self, request: Request, exc: Exception) -> Response:
        """A form refused outside a guarded route (the sign-in forms): the same refusal page."""
        assert isinstance(exc, FormRefused)
        return self.refusal(exc.status, exc.message)

    async def bad_request(self, request: Request, exc: Exception) -> Response:
        """Any other 400 Starlette raises (a form read somewhere else): Chinese, never Starlette's English."""
        return self.refusal(400, self.t("form_broken"))

    def _pre_token(self, request: Request) -> str:
        return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)

    def _with_pre(self, response: Response, request: Request, token: str) -> Response:
        if request.cookies.get(PRE_COOKIE) != token:
            response.set_cookie(
                PRE_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
            )
        return response

    async def _pre_form(self, request: Request) -> dict[str, str] | None:
        """The sign-in form's fields, or None when its pre-session CSRF token does not match the cookie."""
        form = {k: v for k, v in (await self.read_form(request)).items() if isinstance(v, str)}
        cookie = request.cookies.get(PRE_COOKIE, "")
        if not cookie or not hmac.compare_digest(form.get("pre", ""), cookie):
            return None
        return form

    # ---- sign-in ----------------------------------------------------------------------------------------

    def _people(self, s) -> list[access.Person]:
        return access.people(s, admin_ids=self.settings.admin_ids, viewer_ids=self.settings.viewer_ids)

    async def login(self, request: Request) -> Response:
        pre = self._pre_token(request)
        people = await self.db(self._people)
        nxt = _safe_next(request.query_params.get("next", "/"))
        return self._with_pre(self.page("login.html", people=people, pre=pre, next=nxt, error=""), request, pre)

    async def send_code(self, request: Request) -> Response:
        form = await self._pre_form(request)
        if form is None:
            return self.refusal(403, self.t("stale_sign_in"))
        contact_id = form.get("typed", "").strip()
        if not contact_id and form.get("picked", "").isdigit():  # a name picked from the list: its place in it
            people = await self.db(self._people)
            index = int(form["picked"])
            contact_id = people[index].contact_id if index < len(people) else ""
        nxt = _safe_next(form.get("next", "/"))
        pre = request.cookies.get(PRE_COOKIE, "")
        role = self.role(contact_id)
        if role is None:
            people = await self.db(self._people)
            error = self.t("pick_someone") if not contact_id else self.t("not_allowed")
            return self.page("login.html", 400, people=people, pre=pre, next=nxt, error=error)

        def work(s) -> str | access.CodeRefused:
            now = self.clock()
            code = access.issue_code(s, contact_id, now=now)
            if isinstance(code, str):
                outbox.queue(
                    s,
                    now=now,
                    chat_kind=ChatKind.PRIVATE,
                    chat_id=contact_id,
                    text=self.texts.t("web.code", code=code, minutes=int(access.CODE_TTL.total_seconds() // 60)),
                    priority=Priority.NOTICE,
                )
                audit(
                    s,
                    now=now,
                    actor_id=contact_id,
                    actor_name="",
                    action="web_code",
                    detail=self.t("audit_code", address=self.address(request)),
                )
                s.commit()
            return code

        result = await self.db(work)
        error = self._refused_code(result) if isinstance(result, access.CodeRefused) else ""
        return self.page("code.html", 200, contact_id=contact_id, pre=pre, next=nxt, error=error, sent=not error)

    async def verify_code(self, request: Request) -> Response:
        form = await self._pre_form(request)
        if form is None:
            return self.refusal(403, self.t("stale_sign_in"))
        contact_id = form.get("contact_id", "").strip()
        nxt = _safe_next(form.get("next", "/"))
        pre = request.cookies.get(PRE_COOKIE, "")
        role = self.role(contact_id)
        address = self.address(request)

        def work(s) -> tuple[access.CodeCheck, str]:
            now = self.clock()
            result = access.check_code(s, contact_id, form.get("code", ""), now=now, address=address)
            token = ""
            if result == access.CodeCheck.OK and role is not None:
                token = self._open(s, contact_id, address, how=self.t("by_code"))
            else:
                audit(
                    s,
                    now=now,
                    actor_id=contact_id,
                    actor_name="",
                    action="web_login",
                    detail=self.t("audit_login_failed", why=result.value, address=address),
                    allowed=False,
                )
            s.commit()
            return result, token

        if role is None:
            return self.refusal(403, self.t("not_allowed"))
        result, token = await self.db(work)
        if token:
            return self._signed_in(request, token, nxt)
        error = self._locked() if result == access.CodeCheck.LOCKED else self.t("wrong_code")
        return self.page("code.html", 400, contact_id=contact_id, pre=pre, next=nxt, error=error, sent=False)

    def _open(self, s, contact_id: str, address: str, *, how: str) -> str:
        now = self.clock()
        name = access.known_name(s, contact_id)
        token, _ = access.open_session(
            s, contact_id, name=name, now=now, hours=self.settings.web_session_hours, address=address
        )
        audit(
            s,
            now=now,
            actor_id=contact_id,
            actor_name=name,
            action="web_login",
            detail=self.t("audit_login", how=how, address=address),
        )
        return token

    def _signed_in(self, request: Request, token: str, nxt: str) -> Response:
        response = RedirectResponse(nxt, 303, headers=_HEADERS)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.settings.web_session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def link(self, request: Request) -> Response:
        """A sign-in link opens a page with a button: following a link (a chat's preview, a scanner) signs nobody
        in and does not use it up."""
        pre = self._pre_token(request)
        token = request.path_params["token"]
        return self._with_pre(self.page("link.html", token=token, pre=pre), request, pre)

    async def use_link(self, request: Request) -> Response:
        form = await self._pre_form(request)
        if form is None:
            return self.refusal(403, self.t("stale_link"))
        address = self.address(request)

        def work(s) -> str:
            contact_id = access.use_link(s, form.get("token", ""), now=self.clock())
            if contact_id is None or self.role(contact_id) is None:
                s.rollback()
                return ""
            token = self._open(s, contact_id, address, how=self.t("by_link"))
            s.commit()
            return token

        token = await self.db(work)
        if not token:
            return self.refusal(403, self.t("bad_link"))
        return self._signed_in(request, token, "/")

    async def logout(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        def work(s) -> None:
            row = s.get(WebSession, who.session_id)
            if row is not None:
                access.end_session(s, row, now=self.clock())
                s.commit()

        await self.db(work)
        response = RedirectResponse("/login", 303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    # ---- pages ------------------------------------------------------------------------------------------

    async def home(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        ladder = ladder_of(self.settings)
        data = await self.db(lambda s: views.overview(s, now=self.clock(), tz=self.settings.tz, ladder=ladder))
        return self.page("overview.html", who=who, data=data, nav="home")

    async def pushes(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        rows = await self.db(lambda s: views.push_rows(s, tz=self.settings.tz))
        return self.page("pushes.html", who=who, rows=rows, nav="pushes")

    async def push(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        push_id = request.path_params["push_id"]
        data = await self.db(lambda s: views.push_page(s, push_id, tz=self.settings.tz))
        if data is None:
            return self.refusal(404, self.t("no_push", n=push_id), who)
        wanted = request.query_params.get("state", "")
        units = [u for u in data.units if u.state == wanted] if wanted else data.units
        notice = self.take_flash(who) or _notice(request.query_params, self.texts, push_id)
        return self.page(
            "push_detail.html",
            who=who,
            p=data,
            units=units,
            state=wanted,
            notice=notice,
            nav="pushes",
            refresh=REFRESH_SECONDS,
        )

    async def remind(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        """提醒 #N from the page: the chat command's reminder (bot/operations/office.py), queued in the outbox, audited."""
        push_id = request.path_params["push_id"]
        address = self.address(request)

        def work(s) -> str:
            push = s.get(Push, push_id)
            if push is None:
                return "missing"
            if push.state == PushState.WITHDRAWN.value:
                return "withdrawn"
            actor = office.Actor(who.contact_id, who.name, self.t("audit_from", address=address))
            result = office.remind(s, push, now=self.clock(), settings=self.settings, texts=self.texts, actor=actor)
            if not result.units:
                return "nothing"
            s.commit()
            return f"remind-{result.groups}-{result.units}-{result.people}"

        outcome = await self.db(work)
        if outcome == "missing":
            return self.refusal(404, self.t("no_push", n=push_id), who)
        return RedirectResponse(f"/pushes/{push_id}?done={outcome}", 303, headers=_HEADERS)

    async def evidence(self, request: Request, who: Who, form: dict[str, str]) -> Response:
        """A confirmation's screenshot, by the confirmation's number: the file name comes from the database."""
        conf_id = request.path_params["confirmation_id"]
        name = await self.db(lambda s: views.evidence_name(s, conf_id))
        try:
            path = evidence_path(Path(self.settings.evidence_dir), name)
        except ValueError:
            return self.refusal(404, self.t("no_screenshot"), who)
        if not path.is_file():
            return self.refusal(404, self.t("screenshot_gone"), who)
        media = _IMAGE_TYPES.get(path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=media, headers={**_HEADERS, "Content-Disposition": "inline"})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.refusal(404, self.t("no_page"))

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A fault of the console itself: logged with its traceback, the person gets a plain sentence."""
        log.error("web console: %s %s failed", request.method, request.url.path, exc_info=exc)
        return self.refusal(500, self.t("failed"))


def _safe_next(value: str) -> str:
    """Where to go after signing in: a path on this site only (never //host or a full URL)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _notice(params, texts: Texts, push_id: int) -> str:
    """The line a redirect after an action asks the page to show: the chat command's own sentence."""
    done = params.get("done", "")
    if done.startswith("remind-"):
        try:
            groups, units, people = (int(x) for x in done.split("-")[1:4])
        except ValueError:
            return ""
        return texts.t("remind.done", groups=groups, n=push_id, units=units, people=people)
    if done == "nothing":
        return texts.t("remind.nothing", n=push_id)
    if done == "withdrawn":
        return texts.t("push_withdrawn.remind", n=push_id)
    return ""


# Pages in modules of their own (bot/web/pages_*.py): each has NAV, a list of (path, label, key) for the menu,
# and routes(console) -> list of starlette Routes (guarded with console.guarded). Listed here in menu order.
PAGE_MODULES: tuple[str, ...] = ("pages_push", "pages_review", "pages_roster", "pages_reports", "pages_admin")


def create_app(settings: Settings, engine, clock, texts: Texts | None = None) -> Starlette:
    import importlib

    console = Console(settings, engine, clock, texts)
    g = console.guarded
    # A district of a city also has the city's page (bot/web/pages_city.py).
    names = PAGE_MODULES + (("pages_city",) if settings.district else ())
    modules = [importlib.import_module(f"bot.web.{name}") for name in names]
    console.env.globals["nav_items"] = [("/", "总览", "home"), ("/pushes", "推送", "pushes")] + [
        item for module in modules for item in module.NAV
    ]
    routes: list[BaseRoute] = [
        Route("/login", console.login, methods=["GET"]),
        Route("/login/code", console.send_code, methods=["POST"]),
        Route("/login/verify", console.verify_code, methods=["POST"]),
        Route("/login/link/{token}", console.link, methods=["GET"]),
        Route("/login/link", console.use_link, methods=["POST"]),
        Route("/logout", g(console.logout), methods=["POST"]),
        Route("/", g(console.home), methods=["GET"]),
        Route("/pushes", g(console.pushes), methods=["GET"]),
        Route("/pushes/{push_id:int}", g(console.push), methods=["GET"]),
        Route("/pushes/{push_id:int}/remind", g(console.remind, act=True), methods=["POST"]),
        Route("/evidence/{confirmation_id:int}", g(console.evidence), methods=["GET"]),
    ]
    for module in modules:
        routes.extend(module.routes(console))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(
        routes=routes,
        exception_handlers={
            FormRefused: console.form_refused,
            400: console.bad_request,
            404: console.not_found,
            500: console.failed,
        },
    )
    app.state.console = console
    return app

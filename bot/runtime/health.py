"""Health: proof that the bot can still send and receive, connection alerts, and a gateway check for the CLI.

Two parts:

- Functions for the command line (`relaybot doctor`, `relaybot status`), usable without a running bot:
  `check_gateway()` and `health_snapshot()`.
- `HealthMonitor`, owned by the running RelayBot: the periodic self-check (a real send to a configured target and
  the gateway's echo of it), the receive check, and the second-channel alerts for a dropped connection, each
  given once per outage and once more on recovery.

What the monitor records in the BotState table (values are strings; times are ISO 8601 in UTC):

- "last_send_ok_at": the last successful self-check send.
- "last_receive_at": the last event received from the chat (any incoming message, or an echo of something the
  bot sent). Kept in memory on every event and written at most once per health check (`health_check_seconds`)
  and on the self-check's echo, so a burst of messages costs no extra writes.
- "self_check": the last self-check as JSON: {"at", "target", "send_ok", "echo_ok", "detail"}; echo_ok is null
  while the echo is awaited or when no echo is expected.
- "health_send_down", "health_receive_down", "health_link_down": since when the self-check send fails, nothing
  arrives, or the gateway connection is down; "" (or absent) while fine. The first two survive a restart, so a
  restarted bot does not announce the same outage twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from bot.runtime.storage_watch import StorageUnavailable
from bot.storage import outbox
from bot.storage.guard import DatabaseReplaced, free_space, human_size, replaced_problem, sqlite_path, storage_fault
from bot.storage.models import BotState, Group, Outbox, Priority
from bot.transport.base import ChatKind, Outgoing

if TYPE_CHECKING:
    from bot.runtime.alerter import SecondChannel
    from bot.runtime.sender import OutboxSender
    from bot.runtime.units import UnitOfWork
    from bot.transport.base import Transport

log = logging.getLogger(__name__)

LAST_SEND_OK = "last_send_ok_at"
LAST_RECEIVE = "last_receive_at"
SELF_CHECK = "self_check"
SEND_DOWN = "health_send_down"
RECEIVE_DOWN = "health_receive_down"
LINK_DOWN = "health_link_down"
MAX_DETAIL = 200  # BotState values are at most 500 characters


# ---- for the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayCheck:
    """The outcome of check_gateway(). `message` is one plain-Chinese sentence for people, never the token.

    ok: the gateway answered an authenticated call. reachable: a TCP connection to the endpoint opened.
    token_ok: True accepted, False rejected (UNAUTHENTICATED), None not known (unreachable or not a gateway).
    """

    ok: bool
    reachable: bool
    token_ok: bool | None
    message: str


async def check_gateway(endpoint: str, token: str, timeout: float = 5.0) -> GatewayCheck:
    """Check a Wechaty puppet-service gateway the way the bot will use it; never raises.

    1. Opens a TCP connection to `endpoint` ("host:port"): refused, timed out or a malformed endpoint gives
       reachable=False.
    2. Makes one cheap authenticated gRPC call (`/wechaty.Puppet/Version`, plaintext HTTP/2, the token as the
       :authority header as python-wechaty sends it). It has no side effects: it does not start or stop the
       puppet, so it is safe while the bot is running. UNAUTHENTICATED gives token_ok=False; any answer, even an
       error status other than UNAUTHENTICATED/PERMISSION_DENIED/UNAVAILABLE, means the token was accepted.
       No answer within `timeout`, or something that does not speak gRPC, gives reachable=True, token_ok=None.

    `timeout` bounds each of the two steps. The token never appears in the message (the gateway's own error text
    repeats it, so that text is not passed on). From synchronous code: `asyncio.run(check_gateway(...))`; it needs
    only grpclib and wechaty_grpc, not python-wechaty (no 1 s import, no ./.wechaty cache).
    """
    from grpclib.client import Channel
    from grpclib.const import Status
    from grpclib.exceptions import GRPCError
    from wechaty_grpc.wechaty import PuppetStub

    parts = urlsplit(f"//{endpoint.strip()}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        return GatewayCheck(
            False, False, None, f"网关地址 {endpoint!r} 格式不对：应为 主机:端口，例如 127.0.0.1:8788。"
        )
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return GatewayCheck(
            False,
            False,
            None,
            f"连不上微信网关 {endpoint}：{timeout:g} 秒内没有响应。请检查地址、端口和网络（防火墙）。",
        )
    except OSError as exc:
        reason = "端口没有在监听（网关没运行，或端口不对）" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return GatewayCheck(False, False, None, f"连不上微信网关 {endpoint}：{reason}。")
    writer.close()
    if not token:
        return GatewayCheck(
            False, True, False, f"微信网关 {endpoint} 能连上，但没有设置 token（WECHATY_PUPPET_SERVICE_TOKEN）。"
        )
    channel = Channel(host, port)
    channel._authority = token  # how python-wechaty passes the token; the gateway checks it per call
    try:
        async with asyncio.timeout(timeout):
            await PuppetStub(channel).version()
    except GRPCError as exc:
        if exc.status in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED):
            return GatewayCheck(
                False,
                True,
                False,
                f"微信网关 {endpoint} 拒绝了 token：请核对 WECHATY_PUPPET_SERVICE_TOKEN"
                "（或 puppet_service_token）是否与网关的一致、是否过期。",
            )
        if exc.status is Status.UNAVAILABLE:
            return GatewayCheck(False, True, None, f"微信网关 {endpoint} 暂时不可用（UNAVAILABLE），请稍后再试。")
        # Authenticated, but the gateway does not implement Version: it still works for the bot.
        return GatewayCheck(True, True, True, f"微信网关 {endpoint} 正常，token 有效。")
    except TimeoutError:
        return GatewayCheck(
            False,
            True,
            None,
            f"微信网关 {endpoint} 的端口能连上，但 {timeout:g} 秒内没有回应：它可能不是 Wechaty 网关"
            "（或开了 TLS），也可能正忙。",
        )
    except Exception as exc:  # a protocol error: something else listens there
        return GatewayCheck(
            False,
            True,
            None,
            f"{endpoint} 的端口能连上，但对方不像 Wechaty 网关（{type(exc).__name__}）。"
            "请检查端口；本机器人只支持不加密（no TLS）的 puppet service。",
        )
    finally:
        channel.close()
    return GatewayCheck(True, True, True, f"微信网关 {endpoint} 正常，token 有效。")


def health_snapshot(session: Session) -> dict[str, Any]:
    """What the running (or last running) bot recorded about its health; reads only, never raises for
    missing or malformed values (they read as None).

    Returns a dict with these keys (datetimes are timezone-aware, UTC):
      "last_send_ok_at": datetime | None — the later of the last successful self-check send and the last
          outbox message marked sent;
      "last_receive_at": datetime | None — the last event received from the chat (written by the bot at most
          every `health_check_seconds`, so it may lag by that much);
      "self_check": None, or a dict {"at": datetime, "target": str, "send_ok": bool, "echo_ok": bool | None,
          "detail": str (plain Chinese, may be "")} for the last self-check; echo_ok None means the echo was
          still awaited or is not expected;
      "send_down_since", "receive_down_since", "link_down_since": datetime | None — since when the self-check
          send fails, nothing is received, or the gateway connection is down; None when fine. They are what the
          bot last recorded: if the bot is not running they may be out of date.
    """

    def when(key: str) -> datetime | None:
        return _parse_time(_get(session, key))

    sent = session.exec(
        select(Outbox.sent_at).where(col(Outbox.sent_at).is_not(None)).order_by(col(Outbox.sent_at).desc())
    ).first()
    sent_ok = [t for t in (when(LAST_SEND_OK), sent) if t is not None]
    check: dict[str, Any] | None = None
    try:
        raw = json.loads(_get(session, SELF_CHECK) or "null")
    except ValueError:
        raw = None
    if isinstance(raw, dict) and _parse_time(raw.get("at")) is not None:
        check = {
            "at": _parse_time(raw.get("at")),
            "target": str(raw.get("target", "")),
            "send_ok": bool(raw.get("send_ok")),
            "echo_ok": raw.get("echo_ok") if isinstance(raw.get("echo_ok"), bool) else None,
            "detail": str(raw.get("detail", "")),
        }
    return {
        "last_send_ok_at": max(sent_ok) if sent_ok else None,
        "last_receive_at": when(LAST_RECEIVE),
        "self_check": check,
        "send_down_since": when(SEND_DOWN),
        "receive_down_since": when(RECEIVE_DOWN),
        "link_down_since": when(LINK_DOWN),
    }


# ---- the running bot -----------------------------------------------------------------------------


@dataclass
class _Pending:
    """A self-check whose echo is awaited."""

    nonce: str
    target: str
    sent_at: datetime
    message_id: str | None = None
    echoed_at: datetime | None = None


class HealthMonitor:
    """The running bot's health checks and alerts. All methods run on the bot's event loop.

    The bot calls: note_receive() for every received event, on_echo() for each echo of its own sends,
    on_connection() for link changes, tick() every `health_check_seconds`; its sender waits for `link_up`.
    """

    def __init__(
        self,
        units: UnitOfWork,
        transport: Transport,
        sender: OutboxSender,
        alerter: SecondChannel,
        *,
        link_up: asyncio.Event,
    ) -> None:
        self.units = units
        self.transport = transport
        self.sender = sender
        self.alerter = alerter
        self.link_up = link_up  # set while the chat link is up: the outbox sender waits for it
        self._lost_at: datetime | None = None
        self._lost_told = False
        self._last_receive: datetime | None = None
        self._receive_saved: datetime | None = None
        self._pending: _Pending | None = None
        self._last_check: dict[str, Any] | None = None
        self._last_check_at: datetime | None = None
        self._send_down: datetime | None = None
        self._receive_down: datetime | None = None
        self._loaded = False
        self._write_lock = threading.Lock()
        self._space_told_on: date | None = None  # low free space: the office hears at most once a day

    @property
    def settings(self):
        return self.units.settings

    # ---- events -----------------------------------------------------------------------------------

    def note_receive(self) -> None:
        """Something arrived from the chat: the event stream delivers."""
        self._last_receive = self.units.clock()

    async def on_ready(self) -> None:
        """Logged in: the link is up, and a link outage recorded by an earlier run is over."""
        self.link_up.set()
        self._lost_at, self._lost_told = None, False
        await self._write({LINK_DOWN: ""})

    async def on_echo(self, message_id: str, chat_id: str, text: str) -> None:
        """The gateway echoed something the bot sent; if it is the awaited self-check, receiving works."""
        self.note_receive()
        pending = self._pending
        if pending is None or pending.echoed_at is not None:
            return
        if pending.nonce not in text and not (pending.message_id and message_id == pending.message_id):
            return
        pending.echoed_at = self.units.clock()
        log.info("self-check echo arrived after %.1f s", (pending.echoed_at - pending.sent_at).total_seconds())
        values = {LAST_RECEIVE: _iso(self._last_receive)}
        # An echo that overtakes the send's answer is recorded by self_check() itself.
        if self._last_check is not None and self._last_check.get("nonce") == pending.nonce:
            self._last_check["echo_ok"] = True
            self._last_check["detail"] = ""
            values[SELF_CHECK] = self._check_json()
        self._receive_saved = self._last_receive
        await self._write(values)

    async def on_connection(self, state: str, detail: str) -> None:
        """The link changed. On "lost" or "logged_out" sending stops, and the second channel is told once the
        outage has lasted `connection_alert_minutes` (a logout at once: it needs a person to scan a QR code).
        On "restored" sending resumes and, if the outage was announced, its end is announced too (second
        channel and office group); a shorter outage is only logged."""
        now = self.units.clock()
        log.warning("connection %s: %s", state, detail)
        if state in ("lost", "logged_out"):
            self.link_up.clear()
            self._pending = None  # an echo cannot come now; the link alert covers it
            if self._lost_at is None:
                self._lost_at = now
                await self._write({LINK_DOWN: _iso(now)})
            if state == "logged_out":
                self._lost_told = True
                self.alerter.alert(self.units.texts.t("health.logged_out"))
            elif self.settings.connection_alert_minutes <= 0 and not self._lost_told:
                self._tell_lost(now)
            return
        if state != "restored":
            log.warning("unknown connection state %r", state)
            return
        lost_at, told = self._lost_at, self._lost_told
        self._lost_at, self._lost_told = None, False
        self.link_up.set()
        await self._write({LINK_DOWN: ""})
        if told:
            text = self.units.texts.t("health.restored", duration=_duration(now - lost_at if lost_at else timedelta(0)))
            self.alerter.alert(text)
            await self.units.tell_office(text, priority=Priority.NOTICE)
        self.sender.wake.set()

    # ---- the periodic check -----------------------------------------------------------------------

    async def tick(self) -> None:
        """One round: announce a long link outage, judge an overdue echo, run a due self-check, save receipt."""
        now = self.units.clock()
        await self._check_storage(now)
        await self._load()
        if (
            self._lost_at is not None
            and not self._lost_told
            and now - self._lost_at >= timedelta(minutes=self.settings.connection_alert_minutes)
        ):
            self._tell_lost(now)
        await self._judge_echo(now)
        if (
            self._receive_down is not None
            and self._last_receive is not None
            and self._last_receive > self._receive_down
        ):
            await self._receive_restored(now, since=self._receive_down)
        if self._self_check_due(now):
            await self.self_check()
        await self.flush()

    async def flush(self) -> None:
        """Save what is only in memory (the last receive time): every round, and when the bot stops."""
        saved = self._last_receive
        if saved is not None and saved != self._receive_saved:
            await self._write({LAST_RECEIVE: _iso(saved)})
            self._receive_saved = saved

    async def self_check(self) -> dict[str, Any] | None:
        """Send the self-check now; returns the recorded result, or None when it was not attempted (no target,
        link down, or sending paused after WeChat said "too frequent": a probe must not add to that).

        The message goes straight to the transport, not through the outbox: it must prove that the chat works
        even when the queue is long (it does not wait behind a 30-group fan-out), it is not counted against the
        daily budget (one an hour would be 6% of the default 400), and a lost one is not worth re-sending after a
        crash. It takes the sender's lock, so it never overlaps an outbox send; the pacing gap is not kept
        around it (one extra message an hour).
        """
        target = self.settings.self_check_target.strip()
        if not target or not self.link_up.is_set():
            return None
        await self._load()
        now = self.units.clock()
        with self.units.session() as s:
            paused = outbox.backoff_until(s)
            chat_kind, chat_id = _resolve_target(s, target)
        if paused is not None and paused > now:
            log.info("self-check skipped: sending is paused until %s", paused.isoformat())
            return None
        nonce = secrets.token_hex(3)
        local = now.astimezone(self.settings.tz)
        text = self.units.texts.t("health.self_check", time=f"{local:%H:%M}", nonce=nonce)
        expect_echo = self.settings.self_check_echo_seconds > 0
        # Awaited before sending: the echo may overtake the send's own answer.
        self._pending = _Pending(nonce, target, now) if expect_echo else None
        error = ""
        async with self.sender.lock:
            try:
                message_id = await self.transport.send(Outgoing(chat_kind, chat_id, text=text))
            except Exception as exc:  # SendError, or anything a broken transport raises
                error = str(exc) or type(exc).__name__
        now = self.units.clock()
        self._last_check_at = now
        pending = self._pending if expect_echo and self._pending and self._pending.nonce == nonce else None
        if error:
            self._pending = None
            log.warning("self-check send to %s failed: %s", target, error)
        elif pending is not None:
            pending.message_id = message_id
        echo_ok = True if pending is not None and pending.echoed_at is not None else None
        self._last_check = {
            "at": _iso(now),
            "target": target,
            "send_ok": not error,
            "echo_ok": echo_ok,
            "detail": error[:MAX_DETAIL],
            "nonce": nonce,
        }
        values = {SELF_CHECK: self._check_json()}
        if not error:
            values[LAST_SEND_OK] = _iso(now)
        if error and self._send_down is None:
            self._send_down = now
            values[SEND_DOWN] = _iso(now)
            self.alerter.alert(self.units.texts.t("health.send_failed", target=target, error=error[:100]))
        elif not error and self._send_down is not None:
            self.alerter.alert(self.units.texts.t("health.send_restored", duration=_duration(now - self._send_down)))
            self._send_down = None
            values[SEND_DOWN] = ""
        await self._write(values)
        return dict(self._last_check)

    async def _check_storage(self, now: datetime) -> None:
        """The SQLite file is still the one opened (else a storage outage starts, issue 12 item 9), and the
        database's and the screenshots' filesystems have space to spare (the office hears once a day)."""
        problem = replaced_problem(self.units.engine)
        if problem:
            log.error("the database file changed under the running bot: %s", problem)
            self.units.storage.failed(DatabaseReplaced(problem), now)
        today = now.astimezone(self.settings.tz).date()
        if self._space_told_on == today:
            return
        db_file = sqlite_path(self.settings.database_url)
        paths = ([db_file.parent] if db_file is not None else []) + [Path(self.settings.evidence_dir)]
        seen: set[int] = set()
        for path in paths:
            space = free_space(path)
            if space is None or space.dev in seen:
                continue
            seen.add(space.dev)
            if not space.low(self.settings.storage_min_free_mb, self.settings.storage_min_free_percent):
                continue
            self._space_told_on = today
            text = self.units.texts.t(
                "health.low_space", where=str(path), free=human_size(space.free), total=human_size(space.total)
            )
            log.warning("low free space: %s", text)
            self.alerter.alert(text)
            with contextlib.suppress(StorageUnavailable):  # then the second channel has it
                await self.units.tell_office(text, priority=Priority.NOTICE)
            return

    # ---- inside ----------------------------------------------------------------------------------

    def _self_check_due(self, now: datetime) -> bool:
        minutes = self.settings.self_check_minutes
        if minutes <= 0 or not self.settings.self_check_target.strip() or not self.link_up.is_set():
            return False
        if self._pending is not None:
            return False  # the last one is still being judged
        return self._last_check_at is None or now - self._last_check_at >= timedelta(minutes=minutes)

    async def _judge_echo(self, now: datetime) -> None:
        pending = self._pending
        if pending is None:
            return
        if pending.echoed_at is None and now - pending.sent_at < timedelta(
            seconds=self.settings.self_check_echo_seconds
        ):
            return
        self._pending = None
        if pending.echoed_at is not None:
            return
        if self._last_receive is not None and self._last_receive > pending.sent_at:
            # No echo, but other messages came in: the stream delivers (some puppets do not echo).
            detail = "没有收到自检消息的回传，但收到了其他消息"
            log.warning(
                "self-check: no echo within %.0f s, but other events arrived", self.settings.self_check_echo_seconds
            )
        else:
            detail = f"{self.settings.self_check_echo_seconds:g} 秒内没有收到自检消息的回传，也没有收到其他消息"
            log.error("self-check: nothing received within %.0f s of the send", self.settings.self_check_echo_seconds)
        values: dict[str, str] = {}
        if self._last_check is not None and self._last_check.get("nonce") == pending.nonce:
            self._last_check["echo_ok"] = False
            self._last_check["detail"] = detail
            values[SELF_CHECK] = self._check_json()
        nothing_came = self._last_receive is None or self._last_receive <= pending.sent_at
        if nothing_came and self._receive_down is None:
            self._receive_down = pending.sent_at
            values[RECEIVE_DOWN] = _iso(pending.sent_at)
            self.alerter.alert(
                self.units.texts.t("health.receive_failed", seconds=f"{self.settings.self_check_echo_seconds:g}")
            )
        if values:
            await self._write(values)

    async def _receive_restored(self, now: datetime, *, since: datetime) -> None:
        self._receive_down = None
        self.alerter.alert(self.units.texts.t("health.receive_restored", duration=_duration(now - since)))
        await self._write({RECEIVE_DOWN: ""})

    def _tell_lost(self, now: datetime) -> None:
        self._lost_told = True
        lost_at = self._lost_at or now
        log.error("the gateway connection has been down since %s: telling the second channel", lost_at.isoformat())
        self.alerter.alert(self.units.texts.t("health.lost", duration=_duration(now - lost_at)))

    def _check_json(self) -> str:
        check = {k: v for k, v in (self._last_check or {}).items() if k != "nonce"}
        return json.dumps(check, ensure_ascii=False)

    async def _load(self) -> None:
        """Outages and the last self-check recorded by an earlier run (once per process)."""
        if self._loaded:
            return
        self._loaded = True
        with self.units.session() as s:
            self._send_down = _parse_time(_get(s, SEND_DOWN))
            self._receive_down = _parse_time(_get(s, RECEIVE_DOWN))
            try:
                last = json.loads(_get(s, SELF_CHECK) or "null")
            except ValueError:
                last = None
        if isinstance(last, dict) and self._last_check_at is None:
            self._last_check_at = _parse_time(last.get("at"))

    async def _write(self, values: dict[str, str]) -> None:
        now = self.units.clock()

        def write() -> None:
            # A thread lock too: a health round cancelled at shutdown leaves its write running in the worker
            # thread after the asyncio lock is released, and the final flush must not insert the same key beside it.
            with self._write_lock, self.units.session() as s:
                for key, value in values.items():
                    row = s.get(BotState, key) or BotState(key=key)
                    row.value, row.updated_at = value[:500], now
                    s.add(row)
                s.commit()

        async with self.units.lock:
            try:
                await asyncio.to_thread(write)
            except Exception as exc:
                # A full disk or a replaced database file: log it, tell the second channel (once per outage,
                # the StorageWatch counts), and carry on: the health round must keep running.
                fault = storage_fault(exc)
                if fault is None:
                    raise
                log.error("health state not saved: %s", fault)
                self.units.storage.failed(fault, now)


def _resolve_target(s: Session, target: str) -> tuple[ChatKind, str]:
    """A room id, a known room's exact name, or else a contact id."""
    if target.endswith("@chatroom"):
        return ChatKind.ROOM, target
    group = s.exec(select(Group).where(Group.name == target)).first()
    if group is not None:
        return ChatKind.ROOM, group.room_id
    return ChatKind.PRIVATE, target


def _get(s: Session, key: str) -> str:
    row = s.get(BotState, key)
    return row.value if row is not None else ""


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _duration(delta: timedelta) -> str:
    """A duration as people say it: 45 秒, 3 分钟, 2 小时 5 分钟."""
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} 秒"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时" + (f" {minutes} 分钟" if minutes else "")

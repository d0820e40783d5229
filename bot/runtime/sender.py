"""The outbox sender: sends what units of work queued, at WeChat's pace, and pauses when WeChat refuses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.clock import show
from bot.domain.people import first_notice
from bot.runtime.alerter import SecondChannel
from bot.runtime.units import UnitOfWork
from bot.storage import outbox
from bot.storage.models import Outbox, OutboxState, Priority, pk
from bot.transport.base import Outgoing, SendError, Transport

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5


STOP_GRACE = 20.0  # seconds a clean stop waits for the send in flight


class OutboxSender:
    """Sends the outbox one row at a time as pacing allows; wakes early when a unit of work queued something.

    Nothing is tried while the gateway connection is down (`link_up` clear). `lock` is held for every send, so
    the loop, `send_pending()` and the health self-check never overlap a send.
    """

    def __init__(
        self, units: UnitOfWork, transport: Transport, alerter: SecondChannel, *, link_up: asyncio.Event
    ) -> None:
        self.units = units
        self.transport = transport
        self.alerter = alerter
        self.link_up = link_up
        self.wake = units.outbox_changed
        self.lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._link_dropped = False  # the last send failed because the gateway connection is down

    @property
    def settings(self):
        return self.units.settings

    def start(self, ready: asyncio.Event) -> None:
        """Start the send loop; it waits for `ready` (logged in) before the first send."""
        self._task = asyncio.create_task(self._loop(ready), name="outbox-sender")

    async def stop(self) -> None:
        """Stop sending, after the send in flight (if any) is done and recorded.

        Cancelling in the middle of a send would leave its row SENDING, and the next start sends such a row again
        (sent twice rather than maybe never): a clean stop must not cause that. A send that does not finish within
        STOP_GRACE seconds (a hung gateway) is cancelled after all."""
        try:
            async with asyncio.timeout(STOP_GRACE):
                await self.lock.acquire()
            locked = True
        except TimeoutError:
            log.warning("a send was still in flight after %s s: stopping anyway", STOP_GRACE)
            locked = False
        try:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            if locked:
                self.lock.release()

    def pacing(self) -> outbox.Pacing:
        """How fast the bot may send, from the settings."""
        st = self.settings
        return outbox.Pacing(
            st.send_spacing_seconds,
            st.send_jitter_seconds,
            st.daily_send_budget,
            timedelta(minutes=st.send_backoff_minutes),
            st.tz,
        )

    async def send_pending(self) -> int:
        """Send everything in the outbox now (no pacing); returns how many were sent. Used by tests and the demo."""
        sent = 0
        while True:
            with self.units.session() as s:
                rows = outbox.pending(s, limit=1)
                if not rows:
                    return sent
            if await self._send_one(pk(rows[0])):
                sent += 1
            else:
                return sent

    async def send_due(self) -> float:
        """Send the next message if pacing allows it now; returns the seconds (by the bot's clock) to wait before
        asking again."""
        now = self.units.clock()
        with self.units.session() as s:
            nxt = outbox.next_send(s, now=now, pacing=self.pacing())
            if (
                nxt.row_id is not None
                and nxt.reason == "budget"
                and first_notice(s, kind="budget", key=now.astimezone(self.settings.tz).date().isoformat(), now=now)
            ):
                log.warning("daily send budget of %d reached", self.settings.daily_send_budget)
                self.units.context(s, now).to_office(
                    self.units.texts.t("send.budget", budget=self.settings.daily_send_budget), priority=Priority.NOTICE
                )
                s.commit()
                return 0.0  # the notice itself may go now
            s.commit()
        if nxt.row_id is None:
            return 5.0
        if nxt.at > now:
            return (nxt.at - now).total_seconds()
        if not await self._send_one(nxt.row_id) and self._link_dropped:
            self._link_dropped = False
            return 1.0  # the link just dropped: do not spin on it before the transport reports it lost
        return 0.0

    def rate_limited(self, s: Session, now: datetime, notice: str) -> str | None:
        """WeChat said the account sends too often (after reporting the sends as done): pause sending and tell
        the office, in the caller's unit of work; returns the text for the second channel on a new pause."""
        until, new_pause = outbox.start_backoff(s, now=now, pacing=self.pacing())
        log.warning("WeChat's rate-limit notice (%s): sending paused until %s", notice, until.isoformat())
        if not new_pause:
            return None
        text = self.units.texts.t(
            "send.rate_limited", minutes=self.settings.send_backoff_minutes, until=show(until, self.settings.tz)
        )
        self.units.context(s, now).to_office(text, priority=Priority.NOTICE)
        return text

    async def _send_one(self, row_id: int) -> bool:
        async with self.lock:
            return await self._send_row(row_id)

    async def _send_row(self, row_id: int) -> bool:
        with self.units.session() as s:
            row = s.get(Outbox, row_id)
            if row is None or row.state != OutboxState.PENDING.value:
                return True
            out = outbox.to_outgoing(s, row)
            outbox.mark_sending(s, row)
            s.commit()
            try:
                if out.link is not None or out.image is not None or out.file is not None:
                    await self.transport.send(
                        Outgoing(out.chat_kind, out.chat_id, link=out.link, image=out.image, file=out.file)
                    )
                if out.text:
                    await self.transport.send(
                        Outgoing(out.chat_kind, out.chat_id, text=out.text, mention_ids=out.mention_ids)
                    )
            except SendError as exc:
                self._send_failed(s, row, exc)
                return False
            outbox.mark_sent(s, row, now=self.units.clock())
            s.commit()
            return True

    def _send_failed(self, s: Session, row: Outbox, exc: SendError) -> None:
        """Pause all sending for the back-off period; tell the office once per pause. A send that failed because
        the gateway connection is down is not WeChat refusing it: the row waits for the link, no pause."""
        now = self.units.clock()
        if exc.disconnected:
            log.warning(
                "send of outbox row %s failed, the gateway connection is down: sending it when it is back", row.id
            )
            self._link_dropped = True
            row.attempts = max(0, row.attempts - 1)
            outbox.mark_failed(s, row, error=str(exc), give_up=False)
            s.commit()
            return
        give_up = row.attempts >= MAX_SEND_ATTEMPTS
        log.warning("send of outbox row %s failed (%s)%s", row.id, exc, "; giving up" if give_up else "")
        outbox.mark_failed(s, row, error=str(exc), give_up=give_up)
        until, new_pause = outbox.start_backoff(s, now=now, pacing=self.pacing())
        if new_pause:
            key = "send.rate_limited" if exc.rate_limited else "send.failing"
            text = self.units.texts.t(
                key, minutes=self.settings.send_backoff_minutes, until=show(until, self.settings.tz)
            )
            log.warning("sending paused until %s", until.isoformat())
            self.units.context(s, now).to_office(text, priority=Priority.NOTICE)
            self.alerter.alert(text)
        s.commit()

    async def _loop(self, ready: asyncio.Event) -> None:
        """Send the outbox as pacing allows; wake early when new rows arrive."""
        await ready.wait()
        speed = getattr(self.units.clock, "speed", 1.0)
        while True:
            await self.link_up.wait()  # nothing is tried while the gateway connection is down
            try:
                wait = await self.send_due()
            except Exception:
                log.exception("the outbox sender failed; trying again shortly")
                wait = 10.0
            if wait <= 0:
                continue
            self.wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races a wake-up.
            try:
                async with asyncio.timeout(min(wait / speed, 5.0)):
                    await self.wake.wait()
            except TimeoutError:
                pass

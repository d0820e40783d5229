"""Second alert channel: WeCom (企业微信) and DingTalk (钉钉) group robots, for when WeChat itself is down.

Behaviour of WebhookNotifier.send():
- The text is cut to MAX_TEXT_BYTES of UTF-8 on a character boundary, ending in '…' (WeCom's limit; DingTalk's
  is larger, so one limit serves both).
- Client-side rate limit: at most `per_minute` attempts in any sliding 60 s window of `clock`. When the window is
  full the call waits for the oldest attempt to leave it, but never longer than `max_wait` (default one window);
  a message that would have to wait longer is dropped with a WARNING and send() returns False. So a burst of up to
  twice `per_minute` is delivered late rather than lost, and a flood beyond that cannot pile up callers forever.
  Retries count against the limit too, because the robot counts them.
- Retries (up to `retries`, delay `retry_delay` doubling each time) only for network errors, timeouts, HTTP 5xx/429
  and the robots' "too many messages" errcodes; any other errcode or HTTP status fails at once.
- Each attempt is bounded by `timeout` seconds in total, so a hanging server costs at most
  (retries + 1) * timeout + the retry delays.
- DingTalk with a secret signs every attempt with a fresh timestamp from `clock`, which must therefore be wall-clock
  epoch seconds (time.time): the server rejects a timestamp more than an hour off.
- Nothing logged here contains the robot key, access_token, secret or signature; httpx's own request log line
  (INFO, with the full URL) is scrubbed by a filter installed on the "httpx" logger, and hpack's DEBUG dump of
  HTTP/2 headers (which holds the Wechaty puppet token) is dropped (importing this module installs both).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

# Importing this module installs the log filters (bot.redaction) and keeps `redact` where callers know it.
from bot.redaction import redact

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048
WINDOW_SECONDS = 60.0
ELLIPSIS = "…"
# WeCom 45009 / DingTalk 130101: the robot's own per-minute limit; worth waiting out, unlike other errcodes.
TOO_MANY_ERRCODES = frozenset({45009, 130101})
_KINDS = {"wecom": "wecom", "企业微信": "wecom", "dingtalk": "dingtalk", "钉钉": "dingtalk"}


class Notifier(Protocol):
    """Anything that can deliver one alert text to the office."""

    async def send(self, text: str) -> bool:
        """True when the robot accepted the text; never raises."""
        ...


def truncate(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Cut text to at most `limit` UTF-8 bytes on a character boundary, marking the cut with '…'."""
    # Lone surrogates would make the JSON encoder raise; replace them so send() can keep its promise.
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    room = limit - len(ELLIPSIS.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def normalize_kind(kind: str) -> str:
    """'wecom' or 'dingtalk' for any accepted spelling; ValueError otherwise."""
    normalized = _KINDS.get(kind.strip().lower())
    if normalized is None:
        raise ValueError(
            f"告警机器人类型 notify_kind（RELAYBOT_NOTIFY_KIND）无效：{kind!r}；"
            "应为 wecom（企业微信）或 dingtalk（钉钉）"
        )
    return normalized


class _SlidingWindow:
    """At most `limit` acquisitions in any WINDOW_SECONDS of `clock`; waits up to `max_wait` for a free slot."""

    def __init__(
        self, limit: int, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]], max_wait: float
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._stamps: list[float] = []

    async def acquire(self) -> bool:
        """Take a slot, waiting if needed; False when none frees within max_wait."""
        if self._limit <= 0:  # 0 disables the client-side limit
            return True
        deadline = self._clock() + self._max_wait
        while True:
            now = self._clock()
            # Stamps "in the future" mean the wall clock stepped back; keeping them would block for the step.
            self._stamps = [t for t in self._stamps if now - WINDOW_SECONDS < t <= now]
            if len(self._stamps) < self._limit:
                # Reserved before any await, so concurrent senders cannot overshoot the limit.
                self._stamps.append(now)
                return True
            wait = min(self._stamps) + WINDOW_SECONDS - now
            if now + wait > deadline:
                return False
            await self._sleep(wait)


class WebhookNotifier:
    """A WeCom or DingTalk group robot reached through its webhook URL."""

    def __init__(
        self,
        kind: str,
        url: str,
        secret: str = "",
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        retry_delay: float = 1.0,
        per_minute: int = 20,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait: float = WINDOW_SECONDS,
    ) -> None:
        self.kind = normalize_kind(kind)
        self._url = url
        self._secret = secret
        self._client = client
        self._own_client = client is None
        self._timeout = timeout
        self._retries = max(0, retries)
        self._retry_delay = retry_delay
        self._clock = clock
        self._sleep = sleep
        self._limiter = _SlidingWindow(per_minute, clock, sleep, max_wait)
        self._per_minute = per_minute
        self._max_wait = max_wait
        self._label = f"{self.kind} robot {redact(url)}"
        # Exact credential values, scrubbed from anything we log even where no key=/token= precedes them
        # (an errmsg or exception text might echo one).
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self._credentials = [v for name in ("key", "access_token") for v in query.get(name, [])] + [secret]
        self._credentials = [c for c in self._credentials if len(c) >= 4]

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.kind!r}, {redact(self._url)!r})"

    async def send(self, text: str) -> bool:
        """Deliver text to the robot; True when it answered errcode 0. Never raises."""
        try:
            return await self._send(text)
        except Exception as exc:  # alerting must never take the bot down with it
            log.error("%s: unexpected %s: %s", self._label, type(exc).__name__, self._scrub(str(exc)))
            return False

    async def aclose(self) -> None:
        """Close the HTTP client if this notifier created it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(self, text: str) -> bool:
        content = truncate(text)
        body = {"msgtype": "text", "text": {"content": content}}
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            if not await self._limiter.acquire():
                log.warning(
                    "%s: more than %d messages a minute and no slot within %.0f s; dropped: %s",
                    self._label,
                    self._per_minute,
                    self._max_wait,
                    self._scrub(content[:40]),
                )
                return False
            accepted, retryable, reason = await self._attempt(body)
            if accepted:
                log.debug("%s: accepted %d bytes", self._label, len(content.encode("utf-8")))
                return True
            reason = self._scrub(reason)
            if not retryable:
                log.error("%s: rejected, not retried: %s", self._label, reason)
                return False
            if attempt == attempts:
                log.error("%s: failed after %d attempts: %s", self._label, attempts, reason)
                return False
            delay = self._retry_delay * 2 ** (attempt - 1)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1f s", self._label, attempt, attempts, reason, delay
            )
            await self._sleep(delay)
        return False  # unreachable: the loop returns on its last attempt

    async def _attempt(self, body: dict) -> tuple[bool, bool, str]:
        """One POST: (accepted, worth retrying, reason)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            # httpx's timeout is per read/write; this bounds the whole attempt against a server that trickles.
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self._signed_url(), json=body, timeout=self._timeout)
        except (httpx.TransportError, TimeoutError) as exc:
            return False, True, f"{type(exc).__name__}: {exc}"
        status = response.status_code
        if status >= 500 or status == 429:
            return False, True, f"HTTP {status}"
        if status != 200:
            return False, False, f"HTTP {status}"
        try:
            data = response.json()
            errcode = int(data.get("errcode", -1))
        except (ValueError, TypeError, AttributeError):
            return False, False, f"HTTP 200 but not the robot's JSON: {response.text[:100]!r}"
        if errcode == 0:
            return True, False, "ok"
        return False, errcode in TOO_MANY_ERRCODES, f"errcode {errcode}: {data.get('errmsg', '')}"

    def _signed_url(self) -> str:
        """The URL for one attempt: DingTalk with a secret needs a fresh timestamp and signature each time."""
        if self.kind != "dingtalk" or not self._secret:
            return self._url
        timestamp = str(int(self._clock() * 1000))
        digest = hmac.new(self._secret.encode(), f"{timestamp}\n{self._secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))
        separator = "&" if "?" in self._url else "?"
        return f"{self._url}{separator}timestamp={timestamp}&sign={sign}"

    def _scrub(self, text: str) -> str:
        text = redact(text)
        for credential in self._credentials:
            text = text.replace(credential, "***")
        return text


def make_notifier(kind: str, url: str, secret: str = "") -> WebhookNotifier | None:
    """None when no URL is configured; ValueError (message in Chinese, naming the setting) for an unknown kind
    ('wecom' or 'dingtalk', also accept '企业微信'/'钉钉') or a URL that is not http(s)."""
    url = (url or "").strip()
    if not url:
        return None
    normalized = normalize_kind(kind or "")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"告警机器人地址 notify_url（RELAYBOT_NOTIFY_URL）应以 http:// 或 https:// 开头：{redact(url)}"
        )
    secret = (secret or "").strip()
    if secret and normalized == "wecom":
        # A secret beside a WeCom URL is almost surely a DingTalk robot configured under the wrong kind.
        raise ValueError("企业微信机器人不使用加签密钥 notify_secret（RELAYBOT_NOTIFY_SECRET）；请检查 notify_kind")
    return WebhookNotifier(normalized, url, secret)

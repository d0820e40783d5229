"""Drive the Node Wechaty gateway (tests/gateway/gateway.mjs) from Python end-to-end tests."""

from __future__ import annotations

import base64
import json
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import httpx

GATEWAY_DIR = Path(__file__).parent / "gateway"
SCRIPT = GATEWAY_DIR / "gateway.mjs"
START_TIMEOUT = 90.0


class GatewayError(RuntimeError):
    """The gateway could not be started or refused a control request."""


def require_node_modules() -> None:
    """Fail with the fix in the message when node or the gateway's npm packages are missing."""
    if shutil.which("node") is None:
        raise GatewayError("node is not installed: the Wechaty gateway needs Node 20")
    if not (GATEWAY_DIR / "node_modules" / "wechaty-puppet-service").is_dir():
        raise GatewayError("the gateway's npm packages are missing: run npm ci --prefix tests/gateway")


class Gateway:
    """A running gateway process and a client for its HTTP control channel."""

    def __init__(
        self, process: subprocess.Popen[bytes], grpc_port: int, control_port: int, token: str, stderr_file: IO[bytes]
    ) -> None:
        self.process = process
        self.grpc_port = grpc_port
        self.control_port = control_port
        self.token = token
        self._stderr_file = stderr_file
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{control_port}", timeout=10)

    @property
    def endpoint(self) -> str:
        """The gRPC endpoint for WECHATY_PUPPET_SERVICE_ENDPOINT."""
        return f"127.0.0.1:{self.grpc_port}"

    @classmethod
    def start(cls, token: str | None = None, *, timeout: float = START_TIMEOUT) -> Gateway:
        """Spawn the gateway on free ports and wait for its ready line."""
        require_node_modules()
        token = token or f"test-token-{secrets.token_hex(4)}"
        stderr_file = tempfile.TemporaryFile()  # noqa: SIM115  (the gateway's; closed by stop())
        # Our stdin pipe is the gateway's lifeline: it exits if this process dies without stopping it.
        process = subprocess.Popen(
            ["node", str(SCRIPT), "--port", "0", "--control-port", "0", "--token", token, "--exit-on-stdin-close"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
        )
        try:
            ready = _read_ready_line(process, timeout)
        except GatewayError as e:
            _kill(process)
            raise GatewayError(f"{e}\n--- gateway stderr ---\n{_read_all(stderr_file)}") from None
        return cls(process, ready["grpc_port"], ready["control_port"], token, stderr_file)

    def stop(self) -> None:
        """Kill the gateway process by its PID."""
        self.http.close()
        _kill(self.process)
        self._stderr_file.close()

    def stderr(self) -> str:
        """What the gateway has logged so far."""
        return _read_all(self._stderr_file)

    def contact(self, id: str, name: str) -> None:
        """Create a contact who is the bot's friend."""
        self._post("/contacts", {"id": id, "name": name})

    def room(self, id: str, topic: str, member_ids: Iterable[str], nicknames: dict[str, str] | None = None) -> None:
        """Create a room with the bot and these members; `nicknames` maps contact id to group nickname."""
        self._post("/rooms", {"id": id, "topic": topic, "member_ids": list(member_ids), "nicknames": nicknames or {}})

    def say(self, frm: str, text: str, room: str | None = None, mention_ids: Iterable[str] = ()) -> str:
        """A contact speaks in a room, or privately to the bot; returns the message id."""
        body = {"from": frm, "text": text, "mention_ids": list(mention_ids), **({"room": room} if room else {})}
        return self._post("/say", body)["message_id"]

    def raw(self, frm: str, type: int, text: str, room: str | None = None, mention_ids: Iterable[str] = ()) -> str:
        """A contact sends a message of this TypeScript puppet type number (10 GroupNote, 13 Recalled, 16 Post,
        18 System, 0 Unknown, ...) with this text, as a puppet would; returns the message id."""
        body = {
            "from": frm,
            "type": type,
            "text": text,
            "mention_ids": list(mention_ids),
            **({"room": room} if room else {}),
        }
        return self._post("/raw", body)["message_id"]

    def image(self, frm: str, name: str, data: bytes, room: str | None = None) -> str:
        """A contact sends an image; returns the message id."""
        body = {
            "from": frm,
            "name": name,
            "base64": base64.b64encode(data).decode(),
            **({"room": room} if room else {}),
        }
        return self._post("/image", body)["message_id"]

    def file(self, frm: str, name: str, data: bytes, room: str | None = None) -> str:
        """A contact sends a file (an attachment, e.g. an .xlsx); returns the message id."""
        body = {
            "from": frm,
            "name": name,
            "base64": base64.b64encode(data).decode(),
            **({"room": room} if room else {}),
        }
        return self._post("/file", body)["message_id"]

    def link(
        self, frm: str, url: str, title: str, description: str = "", thumbnail_url: str = "", room: str | None = None
    ) -> str:
        """A contact sends a link card; returns the message id."""
        body = {
            "from": frm,
            "url": url,
            "title": title,
            "description": description,
            "thumbnail_url": thumbnail_url,
            **({"room": room} if room else {}),
        }
        return self._post("/link", body)["message_id"]

    def join(self, room: str, inviter: str, member_ids: Iterable[str], nicknames: dict[str, str] | None = None) -> None:
        """Add contacts to a room and fire room-join."""
        self._post(
            "/join", {"room": room, "inviter": inviter, "member_ids": list(member_ids), "nicknames": nicknames or {}}
        )

    def topic(self, room: str, topic: str, changer: str | None = None) -> None:
        """Rename a room and fire room-topic."""
        self._post("/topic", {"room": room, "topic": topic, **({"changer": changer} if changer else {})})

    def invite(self, inviter: str, room_id: str, topic: str, member_ids: Iterable[str]) -> str:
        """Invite the bot into a new room; returns the invitation id."""
        body = {"inviter": inviter, "room_id": room_id, "topic": topic, "member_ids": list(member_ids)}
        return self._post("/invite", body)["invitation_id"]

    def quits(self) -> list[str]:
        """The rooms the bot quit."""
        return self._get("/quits")

    def invites(self) -> list[dict[str, Any]]:
        """All invitations, each with an `accepted` flag."""
        return self._get("/invites")

    def sent(self, since: int = 0) -> list[dict[str, Any]]:
        """What the bot sent after sequence number `since`, in order."""
        return self._get(f"/sent?since={since}")

    def wait_sent(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0, since: int = 0
    ) -> list[dict[str, Any]]:
        """Poll /sent until predicate(items) holds; returns the items."""
        return wait_until(lambda: self.sent(since), predicate, timeout, "the bot to send it")

    def health(self) -> dict[str, Any]:
        """{"ok": true, "logged_in": bool}."""
        return self._get("/health")

    def stop_grpc(self) -> None:
        """Stop the gRPC server (the control channel stays up)."""
        self._post("/stop-grpc", {})

    def start_grpc(self) -> None:
        """Restart the gRPC server on the same port."""
        self._post("/start-grpc", {})

    def _get(self, path: str) -> Any:
        return self._check(self.http.get(path))

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.http.post(path, json=body))

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise GatewayError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
            )
        return response.json()


def texts_to(items: list[dict[str, Any]], chat_id: str) -> list[str]:
    """The texts among `sent` items that went to `chat_id`."""
    return [i["text"] for i in items if i["conversation_id"] == chat_id and i["kind"] == "text"]


def has_text(chat_id: str, fragment: str) -> Callable[[list[dict[str, Any]]], bool]:
    """A `wait_sent` predicate: some text to `chat_id` contains `fragment`."""
    return lambda items: any(fragment in t for t in texts_to(items, chat_id))


# Waits are for events, never for speed: on a loaded 2-core CI machine an answer may take several times longer
# than on an idle one, so every wait of a second or more is stretched (a passing test does not wait any longer).
# Short polls (under a second) keep their length: they are retry intervals, not limits.
WAIT_SCALE = float(os.environ.get("RELAYBOT_TEST_WAIT_SCALE", "4"))


def wait_until(probe: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Call probe() until predicate(result) holds; raises TimeoutError naming `what` and the last result."""
    if timeout >= 1:
        timeout *= WAIT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if predicate(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}; last: {result!r}")
        time.sleep(0.02)


def _read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GatewayError(f"the gateway printed no ready line within {timeout} s")
        if not selector.select(remaining):
            continue
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            raise GatewayError(f"the gateway exited with code {process.wait()} before it was ready")
        line += chunk
    ready = json.loads(line)
    if ready.get("event") != "ready":
        raise GatewayError(f"unexpected first line from the gateway: {line!r}")
    return ready


def _read_all(file: IO[bytes]) -> str:
    # pread leaves the offset alone: the gateway shares it and keeps appending.
    fd = file.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()

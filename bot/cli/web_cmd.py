"""`relaybot web`: the office's web console (bot/web/) over the same database as the running bot (issue 14)."""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket

import typer

from bot.config import Settings
from bot.content import load_texts


def login_link(settings: Settings, engine, clock, *, who: str, host: str, port: int) -> str:
    """A one-time sign-in link for `who` (default: the first admin), stored hashed; the text to print."""
    from bot.domain import access
    from bot.storage.db import session

    texts = load_texts()
    contact_id = who or (settings.admin_ids[0] if settings.admin_ids else "")
    if not contact_id:
        typer.echo(texts.t("web.no_admins"), err=True)
        raise typer.Exit(2)
    city = settings.city_admin_ids if settings.district else None
    if access.role_of(contact_id, admin_ids=settings.admin_ids, viewer_ids=settings.viewer_ids, city_ids=city) is None:
        typer.echo(texts.t("web.not_allowed", who=contact_id), err=True)
        raise typer.Exit(2)
    with session(engine) as s:
        token = access.issue_link(s, contact_id, now=clock())
        s.commit()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return texts.t("web.login_link", who=contact_id, url=f"http://{shown_host}:{port}/login/link/{token}")


def serve(settings: Settings, engine, clock, *, host: str, port: int) -> None:
    """Serve the console until Ctrl-C. Behind the office's HTTPS reverse proxy on the same machine, the client's
    address and https come from X-Forwarded-For/-Proto (trusted from 127.0.0.1 only)."""
    import uvicorn

    from bot.web.app import create_app

    texts = load_texts()
    sock = _listen(host, port, texts)
    app = create_app(settings, engine, clock)
    typer.echo(texts.t("web.listening", host=host, port=port))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level=logging.getLevelName(logging.WARNING).lower(),
        access_log=False,
        server_header=False,
    )
    # uvicorn stops on SIGINT/SIGTERM and then raises the signal again for the previous handler: these end the
    # command with a line and exit 0 (no KeyboardInterrupt traceback, no death by signal).
    signal.signal(signal.SIGTERM, _stopped)
    with contextlib.suppress(KeyboardInterrupt, _Stopped):
        uvicorn.Server(config).run(sockets=[sock])
    typer.echo(texts.t("web.stopped"))


class _Stopped(Exception):
    pass


def _stopped(signum, frame) -> None:
    raise _Stopped


def _listen(host: str, port: int, texts) -> socket.socket:
    """The listening socket, or a plain-words exit: the port is taken (another console?) or the address is wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        key = "web.port_taken" if exc.errno == errno.EADDRINUSE else "web.cannot_listen"
        typer.echo(texts.t(key, host=host, port=port, error=exc.strerror or exc), err=True)
        raise typer.Exit(1) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock

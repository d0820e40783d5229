"""Who may use the web console and how they sign in (issue 14): no passwords.

A person in `admin_ids` (acts) or `viewer_ids` (only looks) asks for a 6-digit code; the bot sends it to their
WeChat private chat through the outbox; it is valid for CODE_TTL and once. `relaybot web --login-link` prints a
one-time link instead, for the first setup on a server. Five wrong codes in a row lock sign-in for that id for
LOCK_FOR. A signed-in browser holds a random token; the database keeps only its SHA-256 (and so for codes and
links), so a copy of the database signs nobody in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.storage.models import Liaison, Membership, WebAttempt, WebCode, WebSession

CODE_TTL = timedelta(minutes=5)
LINK_TTL = timedelta(minutes=15)
CODE_INTERVAL = timedelta(seconds=60)  # one code per person per minute
CODES_PER_HOUR = 5
LOCK_AFTER = 5  # wrong codes in a row
LOCK_FOR = timedelta(minutes=15)


class Role(str, enum.Enum):
    ADMIN = "admin"
    # The city's admin (issue 16, city_admin_ids): looks at the district, pushes to the whole city on 全市.
    CITY = "city"
    VIEWER = "viewer"


def role_of(
    contact_id: str, *, admin_ids: list[str], viewer_ids: list[str], city_ids: list[str] | None = None
) -> Role | None:
    """The role the settings give `contact_id` now (a sign-in keeps no role of its own: settings win)."""
    if contact_id and contact_id in admin_ids:
        return Role.ADMIN
    if contact_id and contact_id in (city_ids or []):
        return Role.CITY
    if contact_id and contact_id in viewer_ids:
        return Role.VIEWER
    return None


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def known_name(session: Session, contact_id: str) -> str:
    """The name the bot knows for a contact (roster, then a group's member list), else ""."""
    liaison = session.exec(select(Liaison).where(Liaison.contact_id == contact_id, Liaison.active == True)).first()  # noqa: E712
    if liaison is not None:
        return liaison.name
    member = session.exec(
        select(Membership).where(Membership.contact_id == contact_id).order_by(col(Membership.seen_at).desc())
    ).first()
    return member.name if member is not None else ""


@dataclass(frozen=True)
class Person:
    contact_id: str
    name: str  # "" when the bot has not seen this person yet
    role: Role


def people(session: Session, *, admin_ids: list[str], viewer_ids: list[str]) -> list[Person]:
    """Everyone who may sign in, admins first, in the settings' order."""
    out: list[Person] = []
    for ids, role in ((admin_ids, Role.ADMIN), (viewer_ids, Role.VIEWER)):
        for contact_id in ids:
            if contact_id and all(p.contact_id != contact_id for p in out):
                out.append(Person(contact_id, known_name(session, contact_id), role))
    return out


def locked_until(session: Session, contact_id: str, *, now: datetime) -> datetime | None:
    """When sign-in for `contact_id` opens again after LOCK_AFTER wrong codes in a row, or None if it is open."""
    recent = session.exec(
        select(WebAttempt)
        .where(WebAttempt.contact_id == contact_id, WebAttempt.at > now - LOCK_FOR)
        .order_by(col(WebAttempt.at).desc(), col(WebAttempt.id).desc())
        .limit(LOCK_AFTER)
    ).all()
    if len(recent) < LOCK_AFTER or any(a.ok for a in recent):
        return None
    return recent[0].at + LOCK_FOR


class CodeRefused(enum.Enum):
    LOCKED = "locked"
    TOO_SOON = "too_soon"
    TOO_MANY = "too_many"


def issue_code(session: Session, contact_id: str, *, now: datetime) -> str | CodeRefused:
    """A new 6-digit code for `contact_id` (the caller sends it and commits), or why not."""
    if locked_until(session, contact_id, now=now) is not None:
        return CodeRefused.LOCKED
    issued = session.exec(
        select(WebCode.created_at).where(
            WebCode.contact_id == contact_id, WebCode.kind == "code", WebCode.created_at > now - timedelta(hours=1)
        )
    ).all()
    if any(at > now - CODE_INTERVAL for at in issued):
        return CodeRefused.TOO_SOON
    if len(issued) >= CODES_PER_HOUR:
        return CodeRefused.TOO_MANY
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        WebCode(
            contact_id=contact_id,
            kind="code",
            secret_hash=_hash(contact_id, code),
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    return code


class CodeCheck(str, enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # wrong, expired or already used: the same answer for all three
    LOCKED = "locked"


def check_code(session: Session, contact_id: str, code: str, *, now: datetime, address: str = "") -> CodeCheck:
    """Whether `code` is a valid unused code of `contact_id`; uses it up. Every attempt is recorded (the caller
    commits), and LOCK_AFTER wrong ones in a row lock sign-in for that id for LOCK_FOR."""
    if locked_until(session, contact_id, now=now) is not None:
        return CodeCheck.LOCKED
    code = "".join(ch for ch in code if not ch.isspace())
    wanted = _hash(contact_id, code)
    row = None
    for candidate in session.exec(
        select(WebCode).where(
            WebCode.contact_id == contact_id,
            WebCode.kind == "code",
            col(WebCode.used_at).is_(None),
            WebCode.expires_at > now,
        )
    ):
        if hmac.compare_digest(candidate.secret_hash, wanted):
            row = candidate
    session.add(WebAttempt(contact_id=contact_id, at=now, ok=row is not None, address=address[:100]))
    if row is None:
        return CodeCheck.WRONG
    row.used_at = now
    session.add(row)
    return CodeCheck.OK


def issue_link(session: Session, contact_id: str, *, now: datetime) -> str:
    """A one-time sign-in token for `contact_id`, valid for LINK_TTL (the caller commits)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebCode(contact_id=contact_id, kind="link", secret_hash=_hash(token), created_at=now, expires_at=now + LINK_TTL)
    )
    return token


def use_link(session: Session, token: str, *, now: datetime) -> str | None:
    """The contact id a valid unused link token signs in (and the token is used up), else None."""
    row = session.exec(
        select(WebCode).where(
            WebCode.kind == "link",
            WebCode.secret_hash == _hash(token),
            col(WebCode.used_at).is_(None),
            WebCode.expires_at > now,
        )
    ).first()
    if row is None:
        return None
    row.used_at = now
    session.add(row)
    return row.contact_id


def open_session(
    session: Session, contact_id: str, *, name: str, now: datetime, hours: float, address: str = ""
) -> tuple[str, WebSession]:
    """A new signed-in browser: (the cookie's token, the row). The caller commits."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_hash(token),
        contact_id=contact_id,
        name=name[:100],
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        address=address[:100],
    )
    session.add(row)
    return token, row


def session_of(session: Session, token: str, *, now: datetime) -> WebSession | None:
    """The open, unexpired session whose cookie carries `token`."""
    if not token:
        return None
    return session.exec(
        select(WebSession).where(
            WebSession.token_hash == _hash(token), col(WebSession.ended_at).is_(None), WebSession.expires_at > now
        )
    ).first()


def end_session(session: Session, row: WebSession, *, now: datetime) -> None:
    row.ended_at = now
    session.add(row)

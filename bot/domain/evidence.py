"""Screenshot evidence on disk and in the database: saving, the check queue, verdicts and retention."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import event, or_
from sqlmodel import Session, col, select

from bot.domain.relay import audit
from bot.storage.models import Alert, Confirmation, EvidenceVerdict, Group, Push, Unit, pk

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20_000_000
MAX_NAME = 100  # Confirmation.evidence_file's length; generated names have 36 characters
_SUFFIXES = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"RIFF": ".webp"}


def evidence_path(folder: Path, name: str) -> Path:
    """The file of a stored screenshot; names are generated, so none can point outside the folder.

    ValueError for anything the bot would not have generated: a separator, a leading dot ("..", hidden files),
    NUL or another control or invisible character, or more than MAX_NAME characters.
    """
    if (
        not name
        or len(name) > MAX_NAME
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or not name.isprintable()
    ):
        raise ValueError(f"not an evidence file name: {name[:MAX_NAME]!r}")
    return folder / name


def save_image(folder: Path, data: bytes) -> str:
    """Store image bytes under a new random name; returns the name (never anything the sender chose)."""
    if not data or len(data) > MAX_IMAGE_BYTES:
        raise ValueError("empty or too large")
    suffix = next((s for magic, s in _SUFFIXES.items() if data.startswith(magic)), ".img")
    folder.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(16) + suffix
    evidence_path(folder, name).write_bytes(data)
    return name


def attach(session: Session, conf: Confirmation, name: str, *, now: datetime) -> None:
    """Make a stored image this confirmation's evidence, to be checked."""
    conf.evidence_file, conf.evidence_at = name, now
    conf.verdict, conf.verdict_reason, conf.evidence_hash = "", "", ""
    session.add(conf)


def mark_unchecked(session: Session, conf: Confirmation, reason: str, *, now: datetime) -> None:
    """An image that could not be kept (over MAX_IMAGE_BYTES, or not received): the confirmation stands as
    未核验 with the reason, and a screenshot sent within the evidence window may still take its place."""
    conf.evidence_file, conf.evidence_at = "", now  # evidence_at without a file: an image came and was not kept
    conf.verdict, conf.verdict_reason, conf.evidence_hash = EvidenceVerdict.UNVERIFIED.value, reason[:100], ""
    session.add(conf)


def recent_without_evidence(session: Session, unit_id: int, *, now: datetime, window: timedelta) -> Confirmation | None:
    """The unit's latest confirmation of the last `window` that has no screenshot yet (or only an image that
    could not be kept: see mark_unchecked)."""
    stmt = (
        select(Confirmation)
        .where(
            Confirmation.unit_id == unit_id,
            Confirmation.evidence_file == "",
            Confirmation.at >= now - window,
            or_(col(Confirmation.verdict) == "", col(Confirmation.evidence_at).is_not(None)),
        )
        .order_by(col(Confirmation.at).desc())
    )
    return session.exec(stmt).first()


@dataclass(frozen=True)
class CheckJob:
    """What the OCR worker needs for one screenshot, read in one short transaction."""

    confirmation_id: int
    file: str
    title: str
    group_name: str
    earlier: list[tuple[str, str]]  # (hash, who used it) of screenshots of other units or other pushes


def next_check(session: Session) -> CheckJob | None:
    """The oldest screenshot still waiting for its verdict (the backlog survives restarts: it is these rows)."""
    conf = session.exec(
        select(Confirmation)
        .where(Confirmation.evidence_file != "", Confirmation.verdict == "")
        .order_by(col(Confirmation.evidence_at), col(Confirmation.id))
    ).first()
    if conf is None:
        return None
    push = session.get_one(Push, conf.push_id)
    alert = session.get(Alert, push.alert_id)
    group = session.exec(select(Group).where(Group.room_id == conf.room_id)).first()
    others = session.exec(
        select(Confirmation, Unit)
        .join(Unit, col(Unit.id) == col(Confirmation.unit_id))
        .where(Confirmation.evidence_hash != "", Confirmation.id != conf.id)
    ).all()
    earlier = [
        (c.evidence_hash, u.name if c.unit_id != conf.unit_id else f"#{c.push_id}")
        for c, u in others
        if c.unit_id != conf.unit_id or c.push_id != conf.push_id
    ]
    return CheckJob(pk(conf), conf.evidence_file, alert.title if alert else "", group.name if group else "", earlier)


def record_verdict(session: Session, confirmation_id: int, *, status: str, reason: str, phash: str) -> None:
    """Store the check's result on the confirmation."""
    conf = session.get_one(Confirmation, confirmation_id)
    conf.verdict, conf.verdict_reason, conf.evidence_hash = status, reason[:100], phash
    session.add(conf)


# A person's verdict (the web console's 截图核验) is stored in the machine's columns, so it replaces the machine's
# everywhere verdicts are shown; these reasons tell it apart, and the checker never overwrites it (it only checks
# rows without a verdict).
APPROVED_PREFIX = "人工认可："
REJECTED_PREFIX = "办公室驳回："


def decided_by_person(conf: Confirmation) -> bool:
    """Has a person marked this screenshot 认可 or 驳回?"""
    return conf.verdict_reason.startswith((APPROVED_PREFIX, REJECTED_PREFIX))


def open_to_review(conf: Confirmation) -> bool:
    """A screenshot the check left 存疑 or 未核验 that no person has decided on yet."""
    doubtful = (EvidenceVerdict.DOUBTFUL.value, EvidenceVerdict.UNVERIFIED.value)
    return conf.verdict in doubtful and not decided_by_person(conf)


def decide(
    session: Session,
    conf: Confirmation,
    *,
    approve: bool,
    by_id: str,
    by_name: str,
    shown: str,
    now: datetime,
    audit_note: str = "",
) -> None:
    """认可 (the screenshot counts as 已核验) or 驳回 (it stays 存疑 with the office's word as the reason) by the
    person `shown`; audited with what the verdict was before. The caller checks open_to_review first."""
    unit = session.get(Unit, conf.unit_id)
    before = f"{conf.verdict}（{conf.verdict_reason}）"
    if approve:
        conf.verdict, conf.verdict_reason = EvidenceVerdict.VERIFIED.value, (APPROVED_PREFIX + shown)[:100]
    else:
        conf.verdict, conf.verdict_reason = EvidenceVerdict.DOUBTFUL.value, (REJECTED_PREFIX + shown)[:100]
    session.add(conf)
    what = "认可" if approve else "驳回"
    audit(
        session,
        now=now,
        actor_id=by_id,
        actor_name=by_name,
        action="evidence_approve" if approve else "evidence_reject",
        detail=f"#{conf.push_id} {unit.name if unit else conf.unit_id} 截图{what}，原为{before}{audit_note}",
    )


def delete_after_commit(session: Session, folder: Path, name: str) -> None:
    """Delete a stored screenshot once the caller's transaction commits: a rolled-back 撤销 keeps its evidence."""

    def unlink(_session: Session) -> None:
        try:
            evidence_path(folder, name).unlink(missing_ok=True)
        except ValueError:
            log.warning("not deleting %r: not an evidence file name", name[:MAX_NAME])
        except OSError:
            log.exception("could not delete the screenshot %s", name)

    event.listen(session, "after_commit", unlink, once=True)


def expire(session: Session, folder: Path, *, now: datetime, keep: timedelta) -> int:
    """Delete screenshots older than `keep`; their verdicts stay. Returns how many files were removed."""
    old = session.exec(
        select(Confirmation).where(Confirmation.evidence_file != "", col(Confirmation.evidence_at) < now - keep)
    ).all()
    for conf in old:
        try:
            evidence_path(folder, conf.evidence_file).unlink(missing_ok=True)
        except ValueError:
            # Not a name the bot generates (a hand-edited row): never followed, and it must not stop the others.
            log.warning("confirmation %s names no evidence file (%r): cleared", conf.id, conf.evidence_file[:MAX_NAME])
        except OSError:
            log.exception("could not delete the screenshot %s: kept, tried again next time", conf.evidence_file)
            continue
        conf.evidence_file = ""
        if not conf.verdict:
            conf.verdict, conf.verdict_reason = EvidenceVerdict.UNVERIFIED.value, "截图已过保存期限，未核验"
        session.add(conf)
    return len(old)

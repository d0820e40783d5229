"""bot/domain/evidence.py decide: a person's 认可 or 驳回 of a screenshot replaces the machine's verdict, audited."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from bot.domain import evidence
from bot.domain.relay import create_push
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Confirmation, EvidenceVerdict, Unit
from tests.conftest import TZ

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)


def test_approve_and_reject_replace_the_verdict_and_are_audited(engine, roster):
    with session(engine) as s:
        first, second = list(s.exec(select(Unit).order_by(col(Unit.id))))[:2]
        push = create_push(s, Alert(title="刷单", created_at=NOW), now=NOW, by="admin", deadline=NOW)
        doubtful = Confirmation(
            push_id=push.id, unit_id=first.id, at=NOW, method="image", verdict="存疑", verdict_reason="看不清"
        )
        unchecked = Confirmation(push_id=push.id, unit_id=second.id, at=NOW, method="image", verdict="未核验")
        s.add(doubtful)
        s.add(unchecked)
        s.flush()
        assert evidence.open_to_review(doubtful) and evidence.open_to_review(unchecked)
        evidence.decide(s, doubtful, approve=True, by_id="admin", by_name="陈静", shown="陈静", now=NOW, audit_note="!")
        evidence.decide(s, unchecked, approve=False, by_id="admin", by_name="陈静", shown="陈静", now=NOW)
        s.commit()
        assert (doubtful.verdict, doubtful.verdict_reason) == (EvidenceVerdict.VERIFIED.value, "人工认可：陈静")
        assert (unchecked.verdict, unchecked.verdict_reason) == (EvidenceVerdict.DOUBTFUL.value, "办公室驳回：陈静")
        assert not evidence.open_to_review(doubtful) and not evidence.open_to_review(unchecked)
        assert evidence.decided_by_person(unchecked)
        rows = [(a.action, a.detail) for a in s.exec(select(AuditLog).order_by(col(AuditLog.id)))]
        assert rows == [
            ("evidence_approve", f"#{push.id} {first.name} 截图认可，原为存疑（看不清）!"),
            ("evidence_reject", f"#{push.id} {second.name} 截图驳回，原为未核验（）"),
        ]

"""Scheduled pushes: `推送 刷单 明天9:00` waits in a row until its time (issue 15 item 2).

Revision ID: 0006_scheduled
Revises: 0005_web
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_scheduled"
down_revision = "0005_web"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "scheduledpush",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        _when("send_at"),
        sa.Column("again", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        _when("created_at"),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_by_name", sa.String(length=100), nullable=False),
        sa.Column("chat_kind", sa.String(length=10), nullable=False),
        sa.Column("chat_id", sa.String(length=200), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=True),
        _when("done_at", nullable=True),
        sa.Column("done_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"]),
        sa.ForeignKeyConstraint(["push_id"], ["push.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduledpush", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduledpush_send_at"), ["send_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_scheduledpush_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scheduledpush", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduledpush_state"))
        batch_op.drop_index(batch_op.f("ix_scheduledpush_send_at"))
    op.drop_table("scheduledpush")

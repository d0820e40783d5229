"""Reach, observed in the units' own groups: a group's unit, and where an alert was seen (issue 15 item 6).

Revision ID: 0010_reach
Revises: 0008_targets
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_reach"
down_revision = "0008_targets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
    op.create_table(
        "reachsighting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=200), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["push_id"], ["push.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("push_id", "room_id"),
    )
    with op.batch_alter_table("reachsighting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reachsighting_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reachsighting_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reachsighting_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reachsighting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reachsighting_at"))
        batch_op.drop_index(batch_op.f("ix_reachsighting_unit_id"))
        batch_op.drop_index(batch_op.f("ix_reachsighting_push_id"))
    op.drop_table("reachsighting")
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.drop_column("unit_id")

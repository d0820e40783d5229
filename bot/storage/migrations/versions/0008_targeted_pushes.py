"""Targeted pushes: unit tags, a push's target and the units it is aimed at (issue 15 item 1).

Revision ID: 0008_targets
Revises: 0007_revision
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_targets"
down_revision = "0007_revision"
branch_labels = None
depends_on = None


def _label(name: str) -> sa.Column:
    return sa.Column(name, sa.String(length=200), nullable=False, server_default="")


def upgrade() -> None:
    # Plain ADD COLUMNs: no table is recreated (confirmation's revision triggers stay as they are).
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.add_column(_label("tags"))
    with op.batch_alter_table("push", schema=None) as batch_op:
        batch_op.add_column(_label("target"))
    with op.batch_alter_table("scheduledpush", schema=None) as batch_op:
        batch_op.add_column(_label("target"))
    op.create_table(
        "pushtarget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["push_id"], ["push.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("push_id", "unit_id"),
    )
    with op.batch_alter_table("pushtarget", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pushtarget_push_id"), ["push_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pushtarget", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pushtarget_push_id"))
    op.drop_table("pushtarget")
    for table, column in (("scheduledpush", "target"), ("push", "target"), ("unit", "tags")):
        if op.get_bind().dialect.name == "sqlite":
            # SQLite drops a column in place (3.35+). A batch copy of push would fail on confirmation's revision
            # triggers, which name push (0007).
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)

"""Configured groups are remembered by the entry they were matched to (Group.config_entry), and the office's
认错 of a binding by name is remembered (unbinding) so that contact is never bound to that entry again.

Revision ID: 0004_identity
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_identity"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_entry", sa.String(length=200), nullable=False, server_default=""))
    op.create_table(
        "unbinding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("liaison_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("by_id", sa.String(length=200), nullable=False),
        sa.Column("by_name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("liaison_id", "contact_id"),
    )
    with op.batch_alter_table("unbinding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unbinding_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unbinding_liaison_id"), ["liaison_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unbinding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unbinding_liaison_id"))
        batch_op.drop_index(batch_op.f("ix_unbinding_contact_id"))
    op.drop_table("unbinding")
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.drop_column("config_entry")

"""The office's corrections (补登/撤销/免转), exemptions, and the notes owed in the coalesced group message
(questions, recalls, hints); a confirmation recorded by the office has no liaison and names the admin.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatnote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("push_ids", sa.String(length=200), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("source_message_id", sa.String(length=200), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chatnote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chatnote_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chatnote_room_id"), ["room_id"], unique=False)

    op.create_table(
        "correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("by_id", sa.String(length=200), nullable=False),
        sa.Column("by_name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["push.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_correction_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_correction_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_correction_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "exemption",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("by_id", sa.String(length=200), nullable=False),
        sa.Column("by_name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["push.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("push_id", "unit_id"),
    )
    with op.batch_alter_table("exemption", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exemption_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exemption_unit_id"), ["unit_id"], unique=False)

    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=200), nullable=False, server_default=""))
        batch_op.alter_column("liaison_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.alter_column("liaison_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("recorded_by")

    with op.batch_alter_table("exemption", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exemption_unit_id"))
        batch_op.drop_index(batch_op.f("ix_exemption_push_id"))

    op.drop_table("exemption")
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_unit_id"))
        batch_op.drop_index(batch_op.f("ix_correction_push_id"))
        batch_op.drop_index(batch_op.f("ix_correction_at"))

    op.drop_table("correction")
    with op.batch_alter_table("chatnote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatnote_room_id"))
        batch_op.drop_index(batch_op.f("ix_chatnote_contact_id"))

    op.drop_table("chatnote")

"""The web console's sign-in: sessions, one-time codes and links, attempts (issue 14).

Revision ID: 0005_web
Revises: 0004_identity
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_web"
down_revision = "0004_identity"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "websession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("ended_at", nullable=True),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("websession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_websession_token_hash"), ["token_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_websession_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "webcode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webcode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webcode_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webcode_secret_hash"), ["secret_hash"], unique=False)
    op.create_table(
        "webattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        _when("at"),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webattempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webattempt_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webattempt_at"), ["at"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("webattempt", ("at", "contact_id")),
        ("webcode", ("secret_hash", "contact_id")),
        ("websession", ("expires_at", "token_hash")),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in indexes:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)

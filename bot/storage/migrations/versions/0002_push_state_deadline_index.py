"""Index push (state, deadline): every confirmation looks up the unit's newest open push by these columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_push_state_deadline", "push", ["state", "deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_push_state_deadline", table_name="push")

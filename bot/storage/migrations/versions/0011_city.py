"""A city of districts: a push made from a city push carries the city's number (issue 16).

Revision ID: 0011_city
Revises: 0010_reach
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_city"
down_revision = "0010_reach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: no table is recreated (confirmation's revision triggers name push, 0007).
    op.add_column("push", sa.Column("city_no", sa.Integer(), nullable=True))
    op.create_index("ix_push_city_no", "push", ["city_no"], unique=False)
    op.add_column("scheduledpush", sa.Column("city_no", sa.Integer(), nullable=True))
    op.create_index("ix_scheduledpush_city_no", "scheduledpush", ["city_no"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_scheduledpush_city_no", table_name="scheduledpush")
    op.drop_index("ix_push_city_no", table_name="push")
    for table in ("scheduledpush", "push"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN city_no")  # in place (3.35+), as in 0008
        else:
            op.drop_column(table, "city_no")

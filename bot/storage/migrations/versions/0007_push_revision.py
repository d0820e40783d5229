"""push.revision: a count of the changes to a push's confirmations, kept by a trigger (issue 14: reports).

The web console's month report keeps each push's confirmations between builds and reads again only the pushes
whose revision moved. A trigger, not the application, counts: every writer (the bot, the console, the CLI, a
restore, an office's own SQL) is seen.

Revision ID: 0007_revision
Revises: 0006_scheduled
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_revision"
down_revision = "0006_scheduled"
branch_labels = None
depends_on = None

_BUMP = "UPDATE push SET revision = revision + 1 WHERE id = {row}.push_id"
_SQLITE = {
    "confirmation_revision_insert": f"AFTER INSERT ON confirmation BEGIN {_BUMP.format(row='NEW')}; END",
    "confirmation_revision_delete": f"AFTER DELETE ON confirmation BEGIN {_BUMP.format(row='OLD')}; END",
    "confirmation_revision_update": (
        f"AFTER UPDATE ON confirmation BEGIN {_BUMP.format(row='OLD')}; {_BUMP.format(row='NEW')}; END"
    ),
}
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION relaybot_push_revision() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN {_BUMP.format(row="OLD")}; END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN {_BUMP.format(row="NEW")}; END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    with op.batch_alter_table("push", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "sqlite":
        for name, body in _SQLITE.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER confirmation_revision AFTER INSERT OR UPDATE OR DELETE ON confirmation "
            "FOR EACH ROW EXECUTE FUNCTION relaybot_push_revision()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS confirmation_revision ON confirmation")
        op.execute("DROP FUNCTION IF EXISTS relaybot_push_revision()")
    with op.batch_alter_table("push", schema=None) as batch_op:
        batch_op.drop_column("revision")

"""Schema of the first release (0.1.0), which made its tables with create_all; frozen here, never edit.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 17:36:06.452818
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_type", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link_url", sa.String(length=2000), nullable=False),
        sa.Column("link_description", sa.String(length=500), nullable=False),
        sa.Column("link_thumbnail", sa.String(length=2000), nullable=False),
        sa.Column("image_name", sa.String(length=200), nullable=False),
        sa.Column("image_data", sa.LargeBinary(), nullable=True),
        sa.Column("draft_of", sa.String(length=200), nullable=True),
        sa.Column("source_message_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_draft_of"), ["draft_of"], unique=False)

    op.create_table(
        "auditlog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditlog", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditlog_at"), ["at"], unique=False)

    op.create_table(
        "botstate",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "calendarday",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=False),
        sa.Column("last_modified", sa.String(length=100), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feed", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_url"), ["url"], unique=True)

    op.create_table(
        "group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("set_by", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_room_id"), ["room_id"], unique=True)

    op.create_table(
        "incidentstat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", sa.String(length=100), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("case_type", sa.String(length=50), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("town", "period_start", "period_end", "case_type"),
    )
    with op.batch_alter_table("incidentstat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidentstat_period_start"), ["period_start"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidentstat_town"), ["town"], unique=False)

    op.create_table(
        "membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("group_nickname", sa.String(length=100), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("room_id", "contact_id"),
    )
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_membership_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_membership_room_id"), ["room_id"], unique=False)

    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "key"),
    )
    op.create_table(
        "scheduledrun",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=50), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job", "due_at"),
    )
    with op.batch_alter_table("scheduledrun", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduledrun_due_at"), ["due_at"], unique=False)

    op.create_table(
        "unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_name"), ["name"], unique=True)

    op.create_table(
        "leave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("leave", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leave_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "liaison",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("role", sa.String(length=4), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=True),
        sa.Column("wechat_name", sa.String(length=100), nullable=False),
        sa.Column("group_nickname", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=30), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("liaison", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_liaison_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_liaison_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chat_kind", sa.String(length=10), nullable=False),
        sa.Column("chat_id", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mention_ids", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("attachment", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("file_data", sa.LargeBinary(), nullable=True),
        sa.Column("push_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_priority"), ["priority"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_state"), ["state"], unique=False)

    op.create_table(
        "push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("push", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_push_state"), ["state"], unique=False)

    op.create_table(
        "confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("liaison_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("room_id", sa.String(length=200), nullable=False),
        sa.Column("evidence_message_id", sa.String(length=200), nullable=False),
        sa.Column("evidence_text", sa.String(length=500), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence_file", sa.String(length=100), nullable=False),
        sa.Column("evidence_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence_hash", sa.String(length=80), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("verdict_reason", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["liaison_id"],
            ["liaison.id"],
        ),
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
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_confirmation_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_confirmation_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "feeditem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=1000), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feed.id"],
        ),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["push.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "guid"),
    )
    with op.batch_alter_table("feeditem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feeditem_feed_id"), ["feed_id"], unique=False)

    op.create_table(
        "miss",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
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
    with op.batch_alter_table("miss", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_miss_deadline"), ["deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_miss_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_miss_unit_id"), ["unit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("miss", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_miss_unit_id"))
        batch_op.drop_index(batch_op.f("ix_miss_push_id"))
        batch_op.drop_index(batch_op.f("ix_miss_deadline"))

    op.drop_table("miss")
    with op.batch_alter_table("feeditem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feeditem_feed_id"))

    op.drop_table("feeditem")
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmation_unit_id"))
        batch_op.drop_index(batch_op.f("ix_confirmation_push_id"))

    op.drop_table("confirmation")
    with op.batch_alter_table("push", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_state"))
        batch_op.drop_index(batch_op.f("ix_push_created_at"))

    op.drop_table("push")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_state"))
        batch_op.drop_index(batch_op.f("ix_outbox_push_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_priority"))
        batch_op.drop_index(batch_op.f("ix_outbox_chat_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("liaison", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_liaison_unit_id"))
        batch_op.drop_index(batch_op.f("ix_liaison_contact_id"))

    op.drop_table("liaison")
    with op.batch_alter_table("leave", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leave_unit_id"))

    op.drop_table("leave")
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_name"))

    op.drop_table("unit")
    with op.batch_alter_table("scheduledrun", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduledrun_due_at"))

    op.drop_table("scheduledrun")
    op.drop_table("notice")
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_membership_room_id"))
        batch_op.drop_index(batch_op.f("ix_membership_contact_id"))

    op.drop_table("membership")
    with op.batch_alter_table("incidentstat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidentstat_town"))
        batch_op.drop_index(batch_op.f("ix_incidentstat_period_start"))

    op.drop_table("incidentstat")
    with op.batch_alter_table("group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_room_id"))

    op.drop_table("group")
    with op.batch_alter_table("feed", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_url"))

    op.drop_table("feed")
    op.drop_table("calendarday")
    op.drop_table("botstate")
    with op.batch_alter_table("auditlog", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditlog_at"))

    op.drop_table("auditlog")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_draft_of"))

    op.drop_table("alert")

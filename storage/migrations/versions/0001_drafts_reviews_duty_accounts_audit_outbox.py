"""drafts and their review (stages, decisions, cards, delegations), duty (shifts, incidents,
inspections), accounts and posts, staff, the audit chain, the outbox and callback dedupe

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 02:00:44.282830
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.columns

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owners", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("period_hours", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("last_post_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_deadline_at"), ["deadline_at"], unique=False)

    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditentry_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditentry_draft_id"), ["draft_id"], unique=False)

    op.create_table(
        "audithead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "cardhandle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("response_code", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("closed_label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    with op.batch_alter_table("cardhandle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cardhandle_subject"), ["subject"], unique=False)

    op.create_table(
        "conversation",
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("userid"),
    )
    op.create_table(
        "delegation",
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("delegate", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("until", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("userid"),
    )
    op.create_table(
        "deliverylog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sent_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliverylog", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_user_time", ["userid", "sent_at"], unique=False)

    op.create_table(
        "draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_note", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("disclosure", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("platforms", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("submitter_userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("submitter_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("stage_entered_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.create_index("ix_draft_pending", ["status", "stage_entered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_submitter_userid"), ["submitter_userid"], unique=False)

    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("raised_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("raised_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("next_page_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("acked_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("resolved_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index("ix_incident_due", ["status", "next_page_at"], unique=False)

    op.create_table(
        "inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("sent_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
        sa.UniqueConstraint("task_id"),
    )
    with op.batch_alter_table("inspection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspection_due_at"), ["due_at"], unique=False)

    op.create_table(
        "occasion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("occasion", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("claimed_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "subject", "occasion", name="uq_occasion"),
    )
    op.create_table(
        "outboxmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_before", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("op", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("recipients", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("sent_at", storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "not_before"], unique=False)
        batch_op.create_index(batch_op.f("ix_outboxmessage_card_id"), ["card_id"], unique=False)

    op.create_table(
        "processedcallback",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("received_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("processedcallback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_processedcallback_received_at"), ["received_at"], unique=False)

    op.create_table(
        "shift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("start_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("role", "start_at", name="uq_shift_role_start"),
    )
    with op.batch_alter_table("shift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shift_end_at"), ["end_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_shift_start_at"), ["start_at"], unique=False)

    op.create_table(
        "staff",
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("roles", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("userid"),
    )
    op.create_table(
        "accountpost",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("posted_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("accountpost", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accountpost_account_id"), ["account_id"], unique=False)

    op.create_table(
        "approvalcard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("recipients", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("response_code", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["draft.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    with op.batch_alter_table("approvalcard", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approvalcard_draft_id"), ["draft_id"], unique=False)

    op.create_table(
        "draftversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["draft.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draft_id", "version"),
    )
    with op.batch_alter_table("draftversion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_draftversion_draft_id"), ["draft_id"], unique=False)

    op.create_table(
        "draftwatcher",
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["draft.id"],
        ),
        sa.PrimaryKeyConstraint("draft_id", "userid"),
    )
    op.create_table(
        "incidentevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidentevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidentevent_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "stageassignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("assignees", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["draft.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stageassignment", schema=None) as batch_op:
        batch_op.create_index("ix_assignment_stage", ["draft_id", "version", "round", "stage"], unique=False)

    op.create_table(
        "stagedecision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("stage_name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("slot", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reviewer_userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reviewer_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.Column("decided_at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("on_behalf_of", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["draft.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draft_id", "version", "round", "reviewer_userid", name="uq_decision_reviewer"),
        sa.UniqueConstraint("draft_id", "version", "round", "stage", "slot", name="uq_decision_slot"),
    )
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stagedecision_decided_at"), ["decided_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_stagedecision_draft_id"), ["draft_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stagedecision_draft_id"))
        batch_op.drop_index(batch_op.f("ix_stagedecision_decided_at"))

    op.drop_table("stagedecision")
    with op.batch_alter_table("stageassignment", schema=None) as batch_op:
        batch_op.drop_index("ix_assignment_stage")

    op.drop_table("stageassignment")
    with op.batch_alter_table("incidentevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidentevent_incident_id"))

    op.drop_table("incidentevent")
    op.drop_table("draftwatcher")
    with op.batch_alter_table("draftversion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draftversion_draft_id"))

    op.drop_table("draftversion")
    with op.batch_alter_table("approvalcard", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approvalcard_draft_id"))

    op.drop_table("approvalcard")
    with op.batch_alter_table("accountpost", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accountpost_account_id"))

    op.drop_table("accountpost")
    op.drop_table("staff")
    with op.batch_alter_table("shift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shift_start_at"))
        batch_op.drop_index(batch_op.f("ix_shift_end_at"))

    op.drop_table("shift")
    with op.batch_alter_table("processedcallback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processedcallback_received_at"))

    op.drop_table("processedcallback")
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboxmessage_card_id"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outboxmessage")
    op.drop_table("occasion")
    with op.batch_alter_table("inspection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspection_due_at"))

    op.drop_table("inspection")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_due")

    op.drop_table("incident")
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draft_submitter_userid"))
        batch_op.drop_index(batch_op.f("ix_draft_status"))
        batch_op.drop_index("ix_draft_pending")

    op.drop_table("draft")
    with op.batch_alter_table("deliverylog", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_user_time")

    op.drop_table("deliverylog")
    op.drop_table("delegation")
    op.drop_table("conversation")
    with op.batch_alter_table("cardhandle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cardhandle_subject"))

    op.drop_table("cardhandle")
    op.drop_table("audithead")
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditentry_draft_id"))
        batch_op.drop_index(batch_op.f("ix_auditentry_at"))

    op.drop_table("auditentry")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_deadline_at"))

    op.drop_table("account")

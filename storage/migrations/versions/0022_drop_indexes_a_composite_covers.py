"""drop the indexes a composite one covers: draft.status, stagedecision.draft_id

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 04:50:00

ix_draft_pending (status, stage_entered_at) serves every lookup by status, and
uq_decision_slot (draft_id, version, round, stage, slot) every lookup by draft; the single-column
indexes only cost each tap a write (a decision's INSERT, a draft's new stage).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draft_status"))
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stagedecision_draft_id"))


def downgrade() -> None:
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stagedecision_draft_id"), ["draft_id"], unique=False)
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_draft_status"), ["status"], unique=False)

"""Audit: decisions and 校 signatures bound to their entries; checkpoints of the chain's head

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.columns

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditcheckpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mac", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("proofrecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proofrecord", schema=None) as batch_op:
        batch_op.drop_column("audit_id")
    with op.batch_alter_table("stagedecision", schema=None) as batch_op:
        batch_op.drop_column("audit_id")
    op.drop_table("auditcheckpoint")

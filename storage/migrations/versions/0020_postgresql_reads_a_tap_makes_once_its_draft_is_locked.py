"""PostgreSQL: the reads a tap makes once its draft is locked, as functions of their own

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 21:10:00

A tap locks its draft (SELECT … FOR UPDATE) and must then read the version's decisions and
whether the round has a 转审/加签 as they are *after* the lock was granted: a decision committed
while the tap waited for the lock counts. Under READ COMMITTED a subquery of the locking
statement reads the statement's snapshot, taken before the wait; a VOLATILE function takes a
new snapshot for each statement it runs. Called on the locked row (storage.drafts_repo), these
give the fresh reads in the same round trip as the lock. SQLite needs none: its one writer
holds the whole database from BEGIN IMMEDIATE, so nothing can change between read and lock.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION sanshen_version_decisions(of_draft integer, of_version integer)
    RETURNS text LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        RETURN (
            SELECT coalesce(
                json_agg(json_build_array(id, stage, reviewer_userid, decision, round) ORDER BY id),
                '[]'
            )::text
            FROM stagedecision
            WHERE draft_id = of_draft AND version = of_version
        );
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION sanshen_round_reassigned(of_draft integer, of_version integer, of_round integer)
    RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        RETURN EXISTS (
            SELECT 1 FROM stageassignment
            WHERE draft_id = of_draft AND version = of_version AND round = of_round
        );
    END
    $$
    """,
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(function)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS sanshen_round_reassigned(integer, integer, integer)")
    op.execute("DROP FUNCTION IF EXISTS sanshen_version_decisions(integer, integer)")

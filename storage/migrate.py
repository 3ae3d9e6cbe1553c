"""Schema migrations (Alembic): upgrade at start-up, adopt pre-migration databases, new revisions.

Developers: after changing a table, run `python -m storage.migrate revision "what changed"`;
it writes storage/migrations/versions/NNNN_*.py by comparing the models with a scratch SQLite
database at head. Read it, then commit it with the model change (tests/test_migrations.py fails
while models and migrations disagree).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect
from sqlmodel import SQLModel

from storage import schema  # noqa: F401  (registers every table)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
# The tables revision 0001 creates. A database from before migrations is brought up to exactly
# these (it can only lack some of them), stamped 0001, and then upgraded like any other.
BASELINE_TABLES = frozenset(
    {
        "account",
        "accountpost",
        "approvalcard",
        "auditentry",
        "audithead",
        "cardhandle",
        "conversation",
        "delegation",
        "deliverylog",
        "draft",
        "draftversion",
        "draftwatcher",
        "incident",
        "incidentevent",
        "inspection",
        "occasion",
        "outboxmessage",
        "processedcallback",
        "shift",
        "staff",
        "stageassignment",
        "stagedecision",
    }
)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def current(connection: Connection) -> str | None:
    """The revision the database is at, or None when it holds no migrated schema."""
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row else None


def upgrade(connection: Connection) -> None:
    """Bring the schema to head. A database made before migrations existed (tables but no
    alembic_version) gets its missing tables, as create_all gave them, and is stamped at the
    baseline first."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "draft" in tables:
        missing = [t for t in SQLModel.metadata.sorted_tables if t.name in BASELINE_TABLES - tables]
        SQLModel.metadata.create_all(connection, tables=missing)
        command.stamp(alembic_config(connection), BASELINE)
    command.upgrade(alembic_config(connection), "head")


def new_revision(message: str) -> None:
    """Autogenerate the next revision against a scratch SQLite database at head."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/scratch.db")
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
            number = f"{len(list((MIGRATIONS / 'versions').glob('[0-9]*.py'))) + 1:04d}"
            command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=number)
        engine.dispose()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "revision":
        sys.stderr.write('usage: python -m storage.migrate revision "what changed"\n')
        return 2
    new_revision(argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Commands that work on the unit's records (export, report, verify-audit, outbox) never create or
migrate a database: a mistyped path, an empty database or one at another version is a Chinese
line and exit 2, and nothing is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres
from tests.test_export import run_cli, write_config

COMMANDS = (
    ("export", "--period", "2026-11"),
    ("report", "2026Q4"),
    ("verify-audit",),
    ("outbox",),
)


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_missing_sqlite_file_is_refused_and_not_created(command: tuple[str, ...], tmp_path: Path) -> None:
    database = tmp_path / "typo" / "sanshen.db"
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{database}")
    done = run_cli(command[0], "-c", str(config), *command[1:])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"数据库不存在：{database}" in done.stderr
    assert not database.exists() and not database.parent.exists()
    assert "已导出" not in done.stdout and "审计日志完整" not in done.stdout


def test_an_empty_or_older_database_is_refused_unchanged(tmp_path: Path) -> None:
    database = tmp_path / "other.db"
    sqlite3.connect(database).close()  # some other, empty SQLite file
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{database}")
    done = run_cli("verify-audit", "-c", str(config))
    assert done.returncode == 2 and "数据库中没有审校助手的数据" in done.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [], "nothing created"
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0003')")
    done = run_cli("export", "-c", str(config), "--period", "2026-11")
    assert done.returncode == 2 and "数据库版本为 0003" in done.stderr and "sanshen serve" in done.stderr


async def test_an_unknown_postgresql_database_is_refused(tmp_path: Path) -> None:
    async with fresh_postgres() as url:
        missing = url.rsplit("/", 1)[0] + "/sanshen_no_such_database"
    config = write_config(tmp_path, missing)
    done = run_cli("report", "2026", "-c", str(config))
    assert (
        done.returncode == 2 and "数据库无法打开" in done.stderr and "sanshen_no_such_database" in done.stderr
    )

"""Schema migrations: they build exactly the models' schema, and adopt pre-migration databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from storage.db import init_models, make_engine
from storage.migrate import BASELINE, BASELINE_TABLES, alembic_config, head


async def test_migrations_build_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    await init_models(engine)
    await init_models(engine)  # a second start changes nothing
    async with engine.connect() as conn:
        differences = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
            )
        )
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
    await engine.dispose()
    assert differences == [], "a model changed without a migration: python -m storage.migrate revision '…'"
    assert version == head()


async def test_a_database_from_before_migrations_is_adopted_and_keeps_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    # A stop-6 database: the baseline schema less card handles, made by create_all (no alembic_version).
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), BASELINE))
        await conn.exec_driver_sql("DROP TABLE alembic_version")
        await conn.exec_driver_sql("DROP TABLE cardhandle")
        await conn.execute(
            text(
                "INSERT INTO staff (userid, name, roles, active) VALUES ('wangxm', '王小明', 'collector', 1)"
            )
        )
    await init_models(engine)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
        names = (await conn.exec_driver_sql("SELECT name FROM staff")).scalars().all()
    await engine.dispose()
    assert "cardhandle" in tables and version == head()
    assert tables >= BASELINE_TABLES | {"versionfile", "upload"}
    assert names == ["王小明"]

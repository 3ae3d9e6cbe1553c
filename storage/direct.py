"""Statements of the hot paths run on the driver's own connection: SQLAlchemy compiles each once per dialect.

Running a statement through the ORM session costs about 200 µs of Python before the database
sees it (building the execution context, the greenlet hand-over, result objects), through a
Core connection about 90 µs; the statement itself takes a few µs on SQLite. A card tap runs
some twenty of them, so that bookkeeping was most of what a tap cost (#13). A `Direct`
statement is an ordinary SQLAlchemy Core construct, compiled on first use for the dialect at
hand to its SQL text, the order of its parameters and the type conversions of its parameters
and result columns (SQLAlchemy's own bind and result processors: the same values as the ORM
would write and read); each call then runs that text on the connection the session's
transaction holds, so it is part of the same transaction as the session's other work.

Drivers: the SQLite writer connection (storage.sqlite_inline, run in place), aiosqlite (reads
and in-memory databases) and asyncpg; on asyncpg a write whose rows only a callback reads can
wait to ride on the next write to another table (`run_soon`). The session's pending ORM changes
are flushed first, as the session's autoflush would; rows loaded here are not in the session's
identity map (see `persistent` for the ones a caller changes through the ORM).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, event, func, insert
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import await_
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.sqlite_inline import InlineConnection

Model = TypeVar("Model", bound=SQLModel)
Processor = Callable[[Any], Any] | None

_CONNECTION_KEY = "sanshen_direct_connection"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters' names in positional order
    fixed: dict[str, Any]  # values the statement carries itself (a LIMIT's)
    binds: tuple[Processor, ...]
    columns: tuple[str, ...]  # result column names ((): no result)
    results: tuple[Processor, ...]
    converts: bool  # some result column has a processor
    inserts: bool  # an INSERT


class Direct:
    """One Core statement (its values as bindparams), compiled per dialect on first use; or a
    function of the dialect's name giving it, for statements written in a dialect's own terms
    (INSERT … ON CONFLICT)."""

    __slots__ = ("statement", "writes_only", "changes_no_key", "_compiled")

    def __init__(
        self,
        statement: Executable | Callable[[str], Executable],
        *,
        writes_only: str | None = None,
        changes_no_key: bool = False,
    ) -> None:
        """`writes_only`: the statement writes that table and reads no other (an INSERT …
        VALUES, or an UPDATE whose WHERE looks at that table alone), so on PostgreSQL it may
        carry held-back writes to other tables (run_soon). `changes_no_key`: an UPDATE that
        changes no column of a unique constraint; held back, it may ride even on an INSERT into
        its own table (it does not see the new row, which was written after it; and no key it
        frees is one the INSERT takes)."""
        self.statement = statement
        self.writes_only = writes_only
        self.changes_no_key = changes_no_key
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self.statement
            if not isinstance(statement, Executable):
                statement = statement(dialect.name)
            found = self._compiled[dialect.name] = _compile(statement, dialect)
        return found


def dialect_insert(dialect_name: str, table: Any) -> Any:
    """`table`'s INSERT in the terms of the dialect (SQLite's or PostgreSQL's: ON CONFLICT)."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ())
    binds = tuple(compiled.binds[name].type._cached_bind_processor(dialect) for name in names)
    fixed = {name: compiled.binds[name].value for name in names if not compiled.binds[name].required}
    columns: list[str] = []
    results: list[Processor] = []
    for column in compiled._result_columns:
        columns.append(column.keyname)
        results.append(column.type._cached_result_processor(dialect, None))
    return _Compiled(
        sql=compiled.string,
        names=names,
        fixed=fixed,
        binds=binds,
        columns=tuple(columns),
        results=tuple(results),
        converts=any(process is not None for process in results),
        inserts=bool(compiled.isinsert),
    )


_observers: list[Callable[[str], None]] = []


@contextlib.contextmanager
def observing(observer: Callable[[str], None]) -> Iterator[None]:
    """Call `observer(sql)` for each statement run here meanwhile (what SQLAlchemy's
    before_cursor_execute event shows of its own statements; tests and benches count both)."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def _observe(sql: str) -> None:
    for observer in _observers:
        observer(sql)


def _arguments(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    if compiled.fixed:
        params = {**compiled.fixed, **params}
    return [
        value if (value := params[name]) is None or process is None else process(value)
        for name, process in zip(compiled.names, compiled.binds, strict=True)
    ]


def _converted(compiled: _Compiled, row: Sequence[Any]) -> tuple[Any, ...]:
    if not compiled.converts:
        return tuple(row)
    return tuple(
        [
            value if process is None else process(value)
            for process, value in zip(compiled.results, row, strict=True)
        ]
    )


@dataclass(frozen=True)
class _Held:
    """A write run_soon held back: the table it writes, its SQL and arguments, and what is
    told its rows when it has run (None: nobody reads them)."""

    table: str
    sql: str
    args: list[Any]
    then: Callable[[list[tuple[Any, ...]]], None] | None
    compiled: _Compiled
    changes_no_key: bool
    touches: Hashable | None  # whose rows of its table it reads and writes (see run_soon)


def _holding(
    table: str,
    statement: Direct,
    compiled: _Compiled,
    args: list[Any],
    then: Callable[[list[tuple[Any, ...]]], None] | None = None,
    touches: Hashable | None = None,
) -> _Held:
    """`statement` (compiled, its arguments converted) as a write to hold back."""
    return _Held(table, compiled.sql, args, then, compiled, statement.changes_no_key, touches)


# How many writes one statement holds at most (a group of taps holds four a tap): past that,
# what is held runs before the next is held, and the statement's text stays of a size the
# server plans quickly.
HELD_AT_MOST = 32


def _follows(table: str, inserts: bool, touches: Hashable | None, other: _Held) -> bool:
    """Whether a write to `table` (`inserts`: an INSERT; `touches`: see run_soon) must run
    after the held write `other` has, not in one statement with it. Every part of a statement
    sees the rows as they were before it, so two writes to one table share one only when
    neither needs the other's rows: an INSERT after an UPDATE that changes no key (which would
    not have seen the new row anyway), or two writes naming different rows (two drafts')."""
    return (
        other.table == table
        and not (inserts and other.changes_no_key)
        and (touches is None or other.touches is None or touches == other.touches)
    )


def _joins(held: _Held, already: list[_Held]) -> bool:
    """Whether `held` may be held in one statement with the writes held `already`."""
    return not any(_follows(held.table, held.compiled.inserts, held.touches, other) for other in already)


def _told(held: _Held, found: Sequence[Sequence[Any]]) -> None:
    if held.then is not None:
        held.then([_converted(held.compiled, row) for row in found])


# How a carrier's own rows come out of what it returned (see _Asyncpg.carrying).
_Unwrap = Callable[[list[Sequence[Any]]], list[Sequence[Any]]]


def _as_returned(found: list[Sequence[Any]]) -> list[Sequence[Any]]:
    return found


class _Driver:
    """The transaction's connection as the driver has it, behind one small interface."""

    async def soon(self, held: _Held) -> None:
        """A write whose rows only `held.then` reads: run now (see _Asyncpg)."""
        _observe(held.sql)
        if held.then is None:
            await self.execute(held.sql, held.args)
        else:
            _told(held, await self.fetch(held.sql, held.args))

    async def carrying(
        self, statement: Direct, compiled: _Compiled, args: list[Any], *, fetches: bool
    ) -> tuple[str, list[Any], _Unwrap]:
        """The statement about to run, with what it carries (see _Asyncpg); `fetches`: its
        rows are read (else it runs as a plain execute)."""
        return compiled.sql, args, _as_returned

    async def run_held(self) -> None:
        """Run what soon() held back, now (see _Asyncpg)."""

    async def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def execute(self, sql: str, args: list[Any]) -> int:
        raise NotImplementedError

    async def execute_many(self, sql: str, rows: list[list[Any]]) -> None:
        raise NotImplementedError


class _SqliteInPlace(_Driver):
    def __init__(self, connection: InlineConnection) -> None:
        self.connection = connection._conn  # in a transaction begun IMMEDIATE: the lock is held

    async def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        return self.connection.execute(sql, args).fetchall()

    async def execute(self, sql: str, args: list[Any]) -> int:
        return self.connection.execute(sql, args).rowcount

    async def execute_many(self, sql: str, rows: list[list[Any]]) -> None:
        self.connection.executemany(sql, rows)


class _Aiosqlite(_Driver):
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        cursor = await self.connection.execute(sql, args)
        try:
            return list(await cursor.fetchall())
        finally:
            await cursor.close()

    async def execute(self, sql: str, args: list[Any]) -> int:
        cursor = await self.connection.execute(sql, args)
        await cursor.close()
        return int(cursor.rowcount)

    async def execute_many(self, sql: str, rows: list[list[Any]]) -> None:
        await self.connection.executemany(sql, rows)


class _Asyncpg(_Driver):
    """asyncpg, one round trip a statement; writes run_soon holds back ride on the next write
    that can carry them, as data-modifying CTEs (WITH w AS (UPDATE …) INSERT …: one round trip
    for both), or run on their own before any other statement, SQLAlchemy's included, and
    before the commit. They are kept by connection (_HELD), whatever savepoint they came in."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter  # SQLAlchemy's adapter: it owns the transaction
        self.connection = adapter._connection

    async def soon(self, held: _Held) -> None:
        await self._begun()
        entry = _HELD.get(id(self.connection))
        if entry is None or entry[0] is not self.connection:  # (none, or a closed connection's)
            entry = _HELD[id(self.connection)] = (self.connection, [])
        elif len(entry[1]) >= HELD_AT_MOST or not _joins(held, entry[1]):
            # Two writes to one table in one statement would not see each other (and one
            # row changed twice keeps one change): unless they may (_joins), the first go now.
            await self.run_held()
            entry = _HELD[id(self.connection)] = (self.connection, [])
        entry[1].append(held)

    async def carrying(
        self, statement: Direct, compiled: _Compiled, args: list[Any], *, fetches: bool
    ) -> tuple[str, list[Any], _Unwrap]:
        held = _held_on(self.connection)
        if not held:
            return compiled.sql, args, _as_returned
        table = statement.writes_only
        if (
            table is None
            or any(_follows(table, compiled.inserts, None, h) for h in held)
            or (not fetches and any(h.then is not None for h in held))  # (rows to tell need a fetch)
        ):
            await self.run_held()  # it may read what they change: they go first
            return compiled.sql, args, _as_returned
        _HELD.pop(id(self.connection), None)
        return _together(held, compiled.sql, args)

    async def run_held(self) -> None:
        await _run_held(self.connection)

    async def _begun(self) -> None:
        # SQLAlchemy's asyncpg adapter begins the transaction at the first statement it runs
        # itself; one run here first must begin it the same way, or it would autocommit.
        if self.adapter._transaction is None:
            await self.adapter._start_transaction()

    async def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        await self._begun()
        return list(await self.connection.fetch(sql, *args))

    async def execute(self, sql: str, args: list[Any]) -> int:
        await self._begun()
        status = await self.connection.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def execute_many(self, sql: str, rows: list[list[Any]]) -> None:
        await self._begun()
        await self.connection.executemany(sql, rows)


def innermost_transaction(sync: Session) -> Any:
    """The savepoint the session is in, else its transaction (None before it begins): what
    state kept for "this transaction" is keyed by, so a savepoint rolled back leaves it behind."""
    return sync.get_nested_transaction() or sync.get_transaction()


def _cached(sync: Session) -> tuple[_Driver, Dialect] | None:
    cached = sync.info.get(_CONNECTION_KEY)
    if cached is not None and cached[0] is innermost_transaction(sync):
        return cached[1], cached[2]
    return None


def _remember(sync: Session, fairy: Any, dialect: Dialect) -> tuple[_Driver, Dialect]:
    raw = fairy.driver_connection
    driver: _Driver
    if isinstance(raw, InlineConnection):
        driver = _SqliteInPlace(raw)
    elif dialect.name == "sqlite":
        driver = _Aiosqlite(raw)
    else:
        driver = _Asyncpg(fairy.dbapi_connection)
    # Asking the session for its connection is what makes it begin (and begin a savepoint it
    # was asked for: SQLAlchemy emits SAVEPOINT lazily), so it is asked once per transaction
    # and savepoint; statements run here then roll back with them.
    sync.info[_CONNECTION_KEY] = (innermost_transaction(sync), driver, dialect)
    return driver, dialect


async def _driver(session: AsyncSession) -> tuple[_Driver, Dialect]:
    sync = session.sync_session
    if not sync._is_clean():
        await session.flush()  # what the session's autoflush would do before a query
    cached = _cached(sync)
    if cached is not None:
        return cached
    connection = await session.connection()
    return _remember(sync, await connection.get_raw_connection(), connection.dialect)


def _driver_now(sync: Session) -> tuple[_Driver, Dialect]:
    """The same from synchronous code the session runs (a before_commit hook)."""
    if not sync._is_clean():
        sync.flush()
    cached = _cached(sync)
    if cached is not None:
        return cached
    connection = sync.connection()
    return _remember(sync, connection.connection, connection.dialect)


# What each call does once it has the transaction's driver: one place for the async entry
# points below and for the `*_now` ones that synchronous commit hooks use.


async def _fetch(
    driver: _Driver, dialect: Dialect, statement: Direct, params: Mapping[str, Any]
) -> tuple[_Compiled, list[tuple[Any, ...]]]:
    compiled = statement.compiled(dialect)
    sql, args, unwrap = await driver.carrying(statement, compiled, _arguments(compiled, params), fetches=True)
    _observe(sql)
    found = unwrap(await driver.fetch(sql, args))
    return compiled, [_converted(compiled, row) for row in found]


async def _execute(driver: _Driver, dialect: Dialect, statement: Direct, params: Mapping[str, Any]) -> int:
    compiled = statement.compiled(dialect)
    sql, args, _ = await driver.carrying(statement, compiled, _arguments(compiled, params), fetches=False)
    _observe(sql)
    return await driver.execute(sql, args)


async def _execute_many(
    driver: _Driver, dialect: Dialect, statement: Direct, params: Iterable[Mapping[str, Any]]
) -> None:
    compiled = statement.compiled(dialect)
    batch = [_arguments(compiled, p) for p in params]
    if batch:
        await driver.run_held()  # (one statement run for each row carries nothing)
        for _ in batch:
            _observe(compiled.sql)
        await driver.execute_many(compiled.sql, batch)


async def rows(session: AsyncSession, statement: Direct, **params: Any) -> list[tuple[Any, ...]]:
    """Every result row of `statement`, each value as the ORM would read it."""
    return (await _fetch(*await _driver(session), statement, params))[1]


async def first(session: AsyncSession, statement: Direct, **params: Any) -> tuple[Any, ...] | None:
    """The first result row, or None."""
    found = await rows(session, statement, **params)
    return found[0] if found else None


async def scalar(session: AsyncSession, statement: Direct, **params: Any) -> Any:
    """The first column of the first row, or None."""
    row = await first(session, statement, **params)
    return row[0] if row is not None else None


async def run(session: AsyncSession, statement: Direct, **params: Any) -> int:
    """Run a statement without results; returns the rows it changed."""
    return await _execute(*await _driver(session), statement, params)


async def run_soon(
    session: AsyncSession,
    table: str,
    statement: Direct,
    *,
    then: Callable[[list[tuple[Any, ...]]], None] | None = None,
    touches: Hashable | None = None,
    **params: Any,
) -> None:
    """Run a write to `table` whose rows (if it returns any) only `then` reads: now on SQLite;
    on PostgreSQL held back to ride on the transaction's next write to another table alone
    (one round trip fewer), or run before whatever else runs first, the commit included.
    `touches`: a key of the only rows of `table` the write reads or changes (a draft's id: a
    draft's row, or its cards), when no constraint of the table ties them to rows of another
    key: writes to one table that name different keys are held together (a group of taps on
    different drafts writes in one round trip), others run first.
    `then(rows)` is called when it has run, before the statement it rode on returns, and
    before the session's commit work (storage.at_commit). Nothing may read what it changes in
    between without going through the database (callers change the objects they hold
    themselves, as update_draft does)."""
    driver, dialect = await _driver(session)
    compiled = statement.compiled(dialect)
    await driver.soon(_holding(table, statement, compiled, _arguments(compiled, params), then, touches))


async def run_many(session: AsyncSession, statement: Direct, params: Iterable[Mapping[str, Any]]) -> None:
    """Run a statement once per parameter set, in one call to the driver."""
    await _execute_many(*await _driver(session), statement, params)


async def models(session: AsyncSession, model: type[Model], statement: Direct, **params: Any) -> list[Model]:
    """Result rows as `model` instances (the statement selects the model's columns by name),
    not in the session: changing one changes nothing stored unless the caller writes it."""
    compiled, found = await _fetch(*await _driver(session), statement, params)
    return [build(model, compiled.columns, row) for row in found]


async def first_model(
    session: AsyncSession, model: type[Model], statement: Direct, **params: Any
) -> Model | None:
    """The first result row as a `model` instance (not in the session), or None."""
    found = await models(session, model, statement, **params)
    return found[0] if found else None


def rows_now(sync: Session, statement: Direct, **params: Any) -> list[tuple[Any, ...]]:
    """`rows` from synchronous code the session runs (work done as its transaction commits)."""
    return await_(_fetch(*_driver_now(sync), statement, params))[1]


def run_now(sync: Session, statement: Direct, **params: Any) -> int:
    """`run` from synchronous code the session runs."""
    return int(await_(_execute(*_driver_now(sync), statement, params)))


def run_many_now(sync: Session, statement: Direct, params: Iterable[Mapping[str, Any]]) -> None:
    """`run_many` from synchronous code the session runs."""
    await_(_execute_many(*_driver_now(sync), statement, params))


def run_soon_now(sync: Session, table: str, statement: Direct, **params: Any) -> None:
    """`run_soon` (no rows told) from synchronous code the session runs."""
    driver, dialect = _driver_now(sync)
    compiled = statement.compiled(dialect)
    await_(driver.soon(_holding(table, statement, compiled, _arguments(compiled, params))))


def run_many_soon_now(
    sync: Session, table: str, each: Direct, together: Direct, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`each` once for every row of parameters, from synchronous code the session runs (the
    commit's work): on PostgreSQL as `together` — one statement whose parameters, named as
    `each`'s, are arrays of the rows' values (unnest) — held back as run_soon holds a write, so
    the commit's writes go in one round trip; elsewhere at once, in one call to the driver."""
    if not rows:
        return
    driver, dialect = _driver_now(sync)
    if dialect.name != "postgresql":
        await_(_execute_many(driver, dialect, each, rows))
        return
    # Each value converted as `each` converts it, then gathered by parameter: asyncpg sends a
    # list as an array (the ARRAY type's own converter would ask each element what it is).
    one_by_one = each.compiled(dialect)
    place = {name: index for index, name in enumerate(one_by_one.names)}
    converted = [_arguments(one_by_one, row) for row in rows]
    compiled = together.compiled(dialect)
    arrays = [
        _constant(compiled.fixed[name], process)  # (each_as_arrays' constants: the statement's own)
        if name in compiled.fixed
        else [values[place[name]] for values in converted]
        for name, process in zip(compiled.names, compiled.binds, strict=True)
    ]
    await_(driver.soon(_holding(table, together, compiled, arrays)))


def _constant(value: Any, process: Processor) -> Any:
    return value if value is None or process is None else process(value)


def each_as_arrays(
    table: Table, columns: Sequence[str], constants: Mapping[str, Any] | None = None
) -> Direct:
    """PostgreSQL's INSERT of many rows in one statement: each of `columns` a parameter of its
    name holding the rows' values as an array, unnested (see run_many_soon_now); inserted in
    the arrays' order, so ids drawn from a sequence follow it. `constants`: columns every row
    gives the same value (defaults), sent once as that value rather than once a row (asyncpg
    examines every element of an array it sends)."""
    fixed = dict(constants or {})
    varying = [name for name in columns if name not in fixed]
    arrays = [bindparam(name, type_=ARRAY(table.c[name].type)) for name in varying]
    rows = (
        func.unnest(*arrays)
        .table_valued(*varying, with_ordinality="sanshen_place")
        .render_derived(name="sanshen_rows")
    )
    listed = core_select(
        *(rows.c[name] for name in varying),
        *(bindparam(name, value, type_=table.c[name].type) for name, value in fixed.items()),
    ).order_by(rows.c.sanshen_place)
    return Direct(insert(table).from_select([*varying, *fixed], listed), writes_only=table.name)


def build(model: type[Model], columns: Sequence[str], values: Sequence[Any]) -> Model:
    """A `model` instance as the ORM's loading makes one (no __init__, no validation)."""
    instance: Model = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    instance.__dict__.update(zip(columns, values, strict=True))
    return instance


def record(model: type[Model], **values: Any) -> Model:
    """A new `model` row object from `values` and the model's defaults for the rest, as its
    constructor makes one but without an attribute event per field (a tenth of the cost).
    Nothing is checked: the values are the caller's own, typed by the signature's users."""
    instance: Model = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    fields = instance.__dict__
    for name, field in model.model_fields.items():
        fields[name] = values.pop(name) if name in values else field.get_default(call_default_factory=True)
    if values:
        raise TypeError(f"{model.__name__} has no field {', '.join(values)}")
    return instance


async def persistent(
    session: AsyncSession, model: type[Model], statement: Direct, **params: Any
) -> Model | None:
    """The row `statement` selects, in the session as if the ORM had loaded it: the object the
    session already holds for that row if it has one (as the ORM's select returns), else the
    loaded one, added; changes to its attributes are then written at the next flush."""
    loaded = await first_model(session, model, statement, **params)
    return attach(session, model, loaded) if loaded is not None else None


def attach(session: AsyncSession, model: type[Model], loaded: Model) -> Model:
    """`loaded` (a row built here) in the session as if the ORM had loaded it: the object the
    session already holds for that row if it has one, else `loaded`, added."""
    mapper: Any = model.__mapper__  # type: ignore[attr-defined]
    key = mapper.identity_key_from_primary_key([loaded.__dict__[c.key] for c in mapper.primary_key])
    held = session.sync_session.identity_map.get(key)
    if held is not None:
        return held
    make_transient_to_detached(loaded)
    session.add(loaded)
    return loaded


# ---- writes held back on PostgreSQL (run_soon): whatever SQLAlchemy runs goes after them

_PARAMETER = re.compile(r"\$(\d+)")
# id of an asyncpg connection → (that connection, the writes held on it); an entry lives until
# the writes run, or the transaction rolls back, or the next one begins
_HELD: dict[int, tuple[Any, list[_Held]]] = {}


def _held_on(connection: Any) -> list[_Held]:
    """The writes held back on this asyncpg connection, in order."""
    entry = _HELD.get(id(connection)) if _HELD else None
    return entry[1] if entry is not None and entry[0] is connection else []


def _together(held: list[_Held], carrier: str | None, args: list[Any]) -> tuple[str, list[Any], _Unwrap]:
    """The held writes (each to a table of its own) as data-modifying CTEs of one statement:
    of the carrier's when there is one (its SQL and arguments), else of a SELECT of their rows.
    PostgreSQL runs every part on the same snapshot and applies each write exactly once; a
    carrier reads nothing they change (a foreign key's check runs after the whole statement,
    and sees them). Rows to tell come back in one row, as arrays of records (which asyncpg
    decodes with each column's own type): the carrier then becomes a CTE as well."""
    told = tuple(number for number, each in enumerate(held) if each.then is not None)
    sql = _combined(tuple((each.sql, len(each.args)) for each in held), told, carrier, len(args))
    carried_args = list(args)
    for each in held:
        carried_args.extend(each.args)
    if carrier is not None and not told:
        return sql, carried_args, _as_returned

    def unwrap(found: list[Sequence[Any]]) -> list[Sequence[Any]]:
        returned = list(found[0])
        own = returned.pop(0) if carrier is not None else None
        for number, rows in zip(told, returned, strict=False):
            _told(held[number], rows or [])
        return list(own or [])

    return sql, carried_args, unwrap


@functools.lru_cache(maxsize=256)
def _combined(
    held: tuple[tuple[str, int], ...], told: tuple[int, ...], carrier: str | None, carried: int
) -> str:
    """The SQL of _together: the same few combinations recur (a group of taps holds the same
    four writes a tap), so each is put together once: renumbering the parameters of
    statements some kilobytes long took about 3 % of the bot's CPU a tap (py-spy, #13).
    `held`: each write's SQL and how many parameters it has; `carried`: how many the carrier
    has (the held ones are numbered after them, in order)."""
    prefixes, shift = [], carried
    for number, (sql, parameters) in enumerate(held):
        renumbered = _PARAMETER.sub(functools.partial(_shifted, by=shift), sql)
        prefixes.append(f"sanshen_held_{number} AS ({renumbered})")
        shift += parameters
    if carrier is not None and not told:
        return f"WITH {', '.join(prefixes)} {carrier}"
    parts = [f"(SELECT array_agg(r) FROM sanshen_held_{n} AS r)" for n in told] or ["NULL"]
    if carrier is not None:
        prefixes.append(f"sanshen_carrier AS ({carrier})")
        parts.insert(0, "(SELECT array_agg(r) FROM sanshen_carrier AS r)")
    return f"WITH {', '.join(prefixes)} SELECT {', '.join(parts)}"


async def _run_held(connection: Any) -> None:
    """What is held on the connection, now: one statement for one write, or for all of them
    (they write a table each: run_soon runs one held before holding another on its table)."""
    held = _held_on(connection)
    _HELD.pop(id(connection), None)
    if len(held) == 1 and held[0].then is None:
        _observe(held[0].sql)
        await connection.execute(held[0].sql, *held[0].args)
    elif held:
        sql, args, unwrap = _together(held, None, [])
        _observe(sql)
        unwrap(list(await connection.fetch(sql, *args)))


def run_held_now(sync: Session) -> None:
    """Run what run_soon holds back in the session's transaction now, telling their rows:
    the commit's own work (storage.at_commit) goes after what they tell."""
    cached = sync.info.get(_CONNECTION_KEY)
    if cached is not None and _HELD:
        await_(cached[1].run_held())


def _shifted(found: re.Match[str], *, by: int) -> str:
    """A parameter's placeholder ($n), numbered `by` further on."""
    return f"${int(found.group(1)) + by}"


def _raw(conn: Connection) -> Any:
    """The asyncpg connection under `conn` (None for other drivers, or one already closed)."""
    try:
        return getattr(conn.connection.dbapi_connection, "_connection", None)
    except Exception:  # (closed or invalidated: an event must not hide the error at hand)
        return None


# SQLAlchemy runs SAVEPOINT and ROLLBACK TO SAVEPOINT through a cursor too: held writes go
# before a savepoint begins, and one rolled back undoes those made inside it.
@event.listens_for(Engine, "before_cursor_execute")
def _held_writes_first(conn: Connection, *_: Any) -> None:
    if _HELD and _held_on(raw := _raw(conn)):
        await_(_run_held(raw))


@event.listens_for(Engine, "commit")
def _held_writes_before_the_commit(conn: Connection) -> None:
    _held_writes_first(conn)


@event.listens_for(Engine, "begin")
@event.listens_for(Engine, "rollback")
def _held_writes_rolled_back(conn: Connection) -> None:
    if _HELD and _held_on(raw := _raw(conn)):
        _HELD.pop(id(raw), None)

"""storage.direct: statements on the driver's connection read and write what the ORM would, inside the session's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, text, update
from sqlalchemy import select as core_select
from sqlmodel import select

from bot.core.errors import UserFacingError
from storage import direct, drafts_repo
from storage.db import SessionFactory, init_models, make_engine, make_session_factory
from storage.models import Conversation, Draft, StageDecision
from storage.schema import table_of

AT = datetime(2026, 5, 11, 2, 30, 15, 123456, tzinfo=UTC)
_DRAFTS = table_of(Draft)
_DRAFT_BY_ID = direct.Direct(core_select(_DRAFTS).where(_DRAFTS.c.id == bindparam("draft_id")))
_CONVERSATIONS = table_of(Conversation)
_ADD_CONVERSATION = direct.Direct(
    insert(_CONVERSATIONS).values(
        userid=bindparam("who"), kind=bindparam("what"), data=bindparam("state"), created_at=bindparam("at")
    )
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    await init_models(engine)
    yield make_session_factory(engine)
    await engine.dispose()


def new_draft(**changes: object) -> Draft:
    values: dict[str, object] = {
        "title": "通知",
        "category": "issued",
        "source_kind": "own",
        "disclosure": "active",
        "platforms": "website",
        "submitter_userid": "wangxm",
        "submitter_name": "王小明",
        "status": "in_review",
        "stage_entered_at": AT,
        "created_at": AT,
        "updated_at": AT,
        "important": True,
    }
    return Draft(**(values | changes))


async def test_a_row_reads_back_as_the_orm_reads_it(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        session.add(new_draft(approved_at=None))
    async with db() as session, session.begin():
        loaded = await direct.first_model(session, Draft, _DRAFT_BY_ID, draft_id=1)
    async with db() as session:
        through_orm = (await session.exec(select(Draft).where(Draft.id == 1))).one()
    assert loaded is not None
    assert loaded.model_dump() == through_orm.model_dump()
    assert loaded.stage_entered_at == AT and loaded.stage_entered_at.tzinfo is not None
    assert loaded.important is True and loaded.approved_at is None


async def test_json_and_times_written_directly_read_back_through_the_orm(db: SessionFactory) -> None:
    state = {"draft_id": 7, "note": "理由：标题有误", "items": [1, 2]}
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="zhangkz", what="reject_reason", state=state, at=AT)
    async with db() as session:
        row = await session.get(Conversation, "zhangkz")
    assert row is not None and row.data == state and row.created_at == AT


async def test_a_direct_read_sees_the_sessions_pending_changes(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        session.add(new_draft(title="未写入的稿件"))  # not flushed yet
        found = await direct.first_model(session, Draft, _DRAFT_BY_ID, draft_id=1)
    assert found is not None and found.title == "未写入的稿件"


async def test_writes_in_a_savepoint_that_rolls_back_are_gone(db: SessionFactory) -> None:
    """Work a savepoint undoes (a service that tries something and backs out) takes the
    direct writes made inside it along."""
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="kept", what="k", state={}, at=AT)
        with pytest.raises(UserFacingError):
            async with session.begin_nested():
                await direct.run(session, _ADD_CONVERSATION, who="dropped", what="d", state={}, at=AT)
                raise UserFacingError("不行")
        await direct.run(session, _ADD_CONVERSATION, who="after", what="a", state={}, at=AT)
    async with db() as session:
        kept = (await session.exec(select(Conversation.userid).order_by(Conversation.userid))).all()
    assert kept == ["after", "kept"]


async def test_a_transaction_that_rolls_back_takes_direct_writes_with_it(db: SessionFactory) -> None:
    """On PostgreSQL the first statement of a transaction may be a direct one: it must begin
    the transaction, not run on its own."""
    with pytest.raises(RuntimeError):
        async with db() as session, session.begin():
            await direct.run(session, _ADD_CONVERSATION, who="wangxm", what="k", state={}, at=AT)
            raise RuntimeError("crash before the commit")
    async with db() as session:
        assert await session.get(Conversation, "wangxm") is None


async def test_a_draft_updated_directly_is_written_now_and_left_clean(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        session.add(new_draft())
    async with db() as session, session.begin():
        draft = await drafts_repo.get_draft(session=session, draft_id=1, lock=True)
        assert draft is not None
        later = datetime(2026, 5, 12, 1, 0, tzinfo=UTC)
        await drafts_repo.update_draft(session=session, draft=draft, stage=2, stage_entered_at=later)
        assert not session.sync_session.dirty, "written already: the flush has nothing to write again"
        draft.title = "改过的标题"  # an ordinary change still reaches the database at the flush
        assert list(session.sync_session.dirty) == [draft]
    async with db() as session:
        stored = await session.get(Draft, 1)
    assert stored is not None
    assert (stored.stage, stored.stage_entered_at, stored.title) == (2, later, "改过的标题")


_ADD_CONVERSATION_CARRYING = direct.Direct(_ADD_CONVERSATION.statement, writes_only="conversation")
_RETITLE = direct.Direct(
    update(_DRAFTS).where(_DRAFTS.c.id == bindparam("of_draft")).values(title=bindparam("new_title"))
)
_RENAME_KIND = direct.Direct(
    update(_CONVERSATIONS).where(_CONVERSATIONS.c.userid == bindparam("of_user")).values(kind=bindparam("to"))
)


async def stored_title(db: SessionFactory) -> str:
    async with db() as session:
        return (await session.exec(select(Draft.title).where(Draft.id == 1))).one()


async def test_a_held_back_write_rides_on_the_next_insert_and_both_are_committed(
    db: SessionFactory, database_url: str
) -> None:
    """run_soon: on PostgreSQL the UPDATE goes with the next INSERT into another table, one
    statement for both (SQLite runs it at once); one into the same table waits for nothing."""
    postgres = database_url.startswith("postgresql")
    async with db() as session, session.begin():
        session.add(new_draft())
    sent: list[str] = []
    async with db() as session, session.begin():
        with direct.observing(sent.append):
            await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="改过的标题")
            await direct.run(session, _ADD_CONVERSATION_CARRYING, who="wangxm", what="k", state={}, at=AT)
        assert len(sent) == (1 if postgres else 2), sent
        sent.clear()
        with direct.observing(sent.append):
            await direct.run_soon(session, "conversation", _RENAME_KIND, of_user="wangxm", to="renamed")
            await direct.run(session, _ADD_CONVERSATION_CARRYING, who="lisi", what="k", state={}, at=AT)
        assert len(sent) == 2, "an insert into the table it changes does not carry it"
    assert await stored_title(db) == "改过的标题"
    async with db() as session:
        kinds = (await session.exec(select(Conversation.kind).order_by(Conversation.userid))).all()
    assert kinds == ["k", "renamed"]


async def test_a_held_back_write_is_in_place_before_anything_reads_and_before_the_commit(
    db: SessionFactory,
) -> None:
    async with db() as session, session.begin():
        session.add(new_draft())
    async with db() as session, session.begin():
        await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="一")
        found = await direct.first(session, _DRAFT_BY_ID, draft_id=1)
        assert found is not None and "一" in found, "a direct read runs it first"
        await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="二")
        title = (await session.exec(select(Draft.title).where(Draft.id == 1))).one()
        assert title == "二", "so does anything SQLAlchemy runs"
        await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="三")  # then only the commit
    assert await stored_title(db) == "三"


async def test_held_back_writes_go_with_a_rollback_and_with_a_savepoint_rolled_back(
    db: SessionFactory,
) -> None:
    async with db() as session, session.begin():
        session.add(new_draft())
    with pytest.raises(RuntimeError):
        async with db() as session, session.begin():
            await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="回滚的")
            raise RuntimeError("crash before the commit")
    async with db() as session, session.begin():  # (the pool's one connection again: nothing left on it)
        await direct.run(session, _ADD_CONVERSATION, who="before", what="a", state={}, at=AT)
    assert await stored_title(db) == "通知"
    async with db() as session, session.begin():
        await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="保存的")
        with pytest.raises(UserFacingError):
            async with session.begin_nested():
                await direct.run_soon(session, "draft", _RETITLE, of_draft=1, new_title="退回的")
                raise UserFacingError("不行")
        await direct.run(session, _ADD_CONVERSATION, who="after", what="a", state={}, at=AT)
    assert await stored_title(db) == "保存的"


_RETITLE_SAYING = direct.Direct(
    update(_DRAFTS)
    .where(_DRAFTS.c.id == bindparam("of_draft"))
    .values(title=bindparam("new_title"))
    .returning(_DRAFTS.c.id, _DRAFTS.c.title, _DRAFTS.c.created_at)
)
_ADD_CONVERSATION_SAYING = direct.Direct(
    _ADD_CONVERSATION.statement.returning(_CONVERSATIONS.c.userid),  # type: ignore[attr-defined]
    writes_only="conversation",
)
_RENAME_EVERY_KIND = direct.Direct(
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.kind == bindparam("from_kind"))
    .values(kind=bindparam("to"))
    .returning(_CONVERSATIONS.c.userid),
    writes_only="conversation",
    changes_no_key=True,
)


async def test_a_held_back_write_tells_its_rows_once_it_has_run_on_whatever_it_rode(
    db: SessionFactory, database_url: str
) -> None:
    """run_soon(then=…): SQLite runs the write and tells its rows at once; PostgreSQL tells them
    when the write has run — with the next INSERT that returns rows (which still returns its
    own), or on its own (with any others held) before the commit's work."""
    postgres = database_url.startswith("postgresql")
    async with db() as session, session.begin():
        session.add(new_draft())
    sent: list[str] = []
    told: list[tuple[object, ...]] = []
    async with db() as session, session.begin():
        with direct.observing(sent.append):
            await direct.run_soon(
                session, "draft", _RETITLE_SAYING, then=told.extend, of_draft=1, new_title="一"
            )
            assert len(told) == (0 if postgres else 1)
            own = await direct.rows(
                session, _ADD_CONVERSATION_SAYING, who="wangxm", what="k", state={}, at=AT
            )
        assert own == [("wangxm",)], "the carrier's own rows, as without a passenger"
        assert len(sent) == (1 if postgres else 2), sent
        ((draft_id, title, created),) = told
        assert (draft_id, title, created.tzinfo is not None) == (1, "一", True), "typed as a plain read"
        told.clear()
        sent.clear()
        with direct.observing(sent.append):
            await direct.run_soon(
                session, "draft", _RETITLE_SAYING, then=told.extend, of_draft=1, new_title="二"
            )
            await direct.run_soon(
                session, "conversation", _RENAME_EVERY_KIND, then=told.extend, from_kind="k", to="renamed"
            )
            await direct.run(session, _ADD_CONVERSATION, who="lisi", what="k", state={}, at=AT)
            assert len(told) == 2, "a statement whose rows are not read carries nothing that tells"
        assert len(sent) == (2 if postgres else 3), "both held in one statement, then the insert"
        told.clear()
        await direct.run_soon(session, "draft", _RETITLE_SAYING, then=told.extend, of_draft=1, new_title="三")
    assert [row[1] for row in told] == ["三"], "told at the commit"
    assert await stored_title(db) == "三"


async def test_a_held_back_update_riding_on_an_insert_into_its_own_table_leaves_the_new_row_alone(
    db: SessionFactory, database_url: str
) -> None:
    """An UPDATE that changes no key may ride on an INSERT into its own table (a tap closing
    its draft's open cards with the next stage's card): it changes the rows there were before,
    as if run first, not the new one; two writes to one table are never held together."""
    postgres = database_url.startswith("postgresql")
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="wangxm", what="k", state={}, at=AT)
    sent: list[str] = []
    renamed: list[tuple[object, ...]] = []
    async with db() as session, session.begin():
        with direct.observing(sent.append):
            await direct.run_soon(
                session, "conversation", _RENAME_EVERY_KIND, then=renamed.extend, from_kind="k", to="closed"
            )
            await direct.rows(session, _ADD_CONVERSATION_SAYING, who="lisi", what="k", state={}, at=AT)
        assert len(sent) == (1 if postgres else 2), "one statement for both"
        assert renamed == [("wangxm",)]
        sent.clear()
        with direct.observing(sent.append):
            await direct.run_soon(session, "conversation", _RENAME_EVERY_KIND, from_kind="k", to="x")
            await direct.run_soon(session, "conversation", _RENAME_EVERY_KIND, from_kind="x", to="y")
        assert len(sent) == (1 if postgres else 2), "the first ran before the second was held"
    async with db() as session:
        kinds = (
            await session.exec(select(Conversation.userid, Conversation.kind).order_by(Conversation.userid))
        ).all()
    assert kinds == [("lisi", "y"), ("wangxm", "closed")]


async def test_held_back_writes_to_one_table_go_together_only_when_they_name_different_rows(
    db: SessionFactory, database_url: str
) -> None:
    """run_soon(touches=…): writes to one table that name different keys (two drafts' rows) are
    held in one statement; a write naming a key held already runs after it, seeing it (an
    UPDATE of a row inserted just before renames it, a draft retitled twice keeps the last)."""
    postgres = database_url.startswith("postgresql")
    async with db() as session, session.begin():
        session.add(new_draft())
        session.add(new_draft(title="通报"))
    sent: list[str] = []
    async with db() as session, session.begin():
        with direct.observing(sent.append):
            await direct.run_soon(session, "draft", _RETITLE, touches=1, of_draft=1, new_title="甲")
            await direct.run_soon(session, "draft", _RETITLE, touches=2, of_draft=2, new_title="乙")
            assert len(sent) == (0 if postgres else 2), "different drafts: both held"
            await direct.run_soon(session, "draft", _RETITLE, touches=1, of_draft=1, new_title="丙")
            assert len(sent) == (1 if postgres else 3), "the same draft again: the two held run first"
            await direct.run_soon(
                session,
                "conversation",
                _ADD_CONVERSATION,
                touches="wangxm",
                who="wangxm",
                what="k",
                state={},
                at=AT,
            )
            await direct.run_soon(
                session, "conversation", _RENAME_KIND, touches="wangxm", of_user="wangxm", to="renamed"
            )
    async with db() as session:
        titles = (await session.exec(select(Draft.title).order_by(Draft.id))).all()
        kinds = (await session.exec(select(Conversation.kind))).all()
    assert titles == ["丙", "乙"]
    assert kinds == ["renamed"], "the rename ran after the insert it names"


async def test_at_most_so_many_writes_are_held_in_one_statement(
    db: SessionFactory, database_url: str
) -> None:
    postgres = database_url.startswith("postgresql")
    people = [f"u{n}" for n in range(direct.HELD_AT_MOST + 3)]
    sent: list[str] = []
    with direct.observing(sent.append):
        async with db() as session, session.begin():
            for who in people:
                await direct.run_soon(
                    session,
                    "conversation",
                    _ADD_CONVERSATION,
                    touches=who,
                    who=who,
                    what="k",
                    state={},
                    at=AT,
                )
    assert len(sent) == (2 if postgres else len(people)), (
        "the first HELD_AT_MOST, then the rest at the commit"
    )
    async with db() as session:
        stored = (await session.exec(select(Conversation.userid))).all()
    assert sorted(stored) == sorted(people)


async def test_a_taken_slot_is_refused_and_changes_nothing(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        session.add(new_draft())

    def decision(reviewer: str) -> StageDecision:
        return StageDecision(
            draft_id=1,
            version=1,
            stage=1,
            stage_name="一审",
            slot="*",
            reviewer_userid=reviewer,
            reviewer_name=reviewer,
            decision="approve",
            decided_at=AT,
            via="card",
        )

    async with db() as session, session.begin():
        first = decision("zhangkz")
        assert await drafts_repo.add_unless_taken(session=session, row=first)
        assert first.id is not None
        assert not await drafts_repo.add_unless_taken(session=session, row=decision("sunkz"))
    async with db() as session:
        rows = await drafts_repo.list_decisions(session=session, draft_id=1)
    assert [(r.reviewer_userid, r.checklist, r.finding_marks) for r in rows] == [("zhangkz", [], {})]


async def test_a_draft_the_session_holds_already_is_the_one_returned(db: SessionFactory) -> None:
    """As the ORM's own select: one object per row in a session, whoever loaded it first."""
    async with db() as session, session.begin():
        session.add(new_draft())
    async with db() as session, session.begin():
        held = await session.get(Draft, 1)
        assert held is not None
        held.title = "页面上改的标题"
        again = await drafts_repo.get_draft(session=session, draft_id=1, lock=True)
        assert again is held and again.title == "页面上改的标题"


async def conversation_of(db: SessionFactory, userid: str) -> str | None:
    async with db() as session:
        found = await session.get(Conversation, userid)
        return found.kind if found is not None else None


async def test_an_ended_conversation_is_gone_after_the_commit_and_at_once_for_the_transaction(
    db: SessionFactory, database_url: str
) -> None:
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="wangxm", what="collect_body", state={}, at=AT)
        await direct.run(session, _ADD_CONVERSATION, who="liuzr", what="reject_reason", state={}, at=AT)
    deletes: list[str] = []
    with direct.observing(lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None):
        async with db() as session, session.begin():
            for userid in ("wangxm", "liuzr", "wangxm", "nobody"):
                await drafts_repo.clear_conversation(session=session, userid=userid)
            assert await drafts_repo.get_conversation(session=session, userid="liuzr") is None
            assert len(deletes) == 1, "read again: deleted at once"
    # the rest at the commit, each person once: one statement for both on PostgreSQL, one call on SQLite
    assert len(deletes) == 1 + (1 if database_url.startswith("postgresql") else 2)
    assert await conversation_of(db, "wangxm") is None and await conversation_of(db, "liuzr") is None


async def test_a_conversation_begun_again_after_it_was_ended_survives_the_commit(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="wangxm", what="collect_body", state={}, at=AT)
    async with db() as session, session.begin():
        await drafts_repo.clear_conversation(session=session, userid="wangxm")
        await drafts_repo.clear_conversation(session=session, userid="wangxm")
        await drafts_repo.set_conversation(
            session=session, userid="wangxm", kind="reject_reason", data={}, at=AT
        )
    assert await conversation_of(db, "wangxm") == "reject_reason"
    async with db() as session, session.begin():
        await drafts_repo.clear_conversation(session=session, userid="wangxm")
        session.sync_session.rollback()  # nothing ended: the transaction rolled back
    assert await conversation_of(db, "wangxm") == "reject_reason"


async def test_ending_taken_back_inside_a_savepoint_that_rolls_back_is_given_back(db: SessionFactory) -> None:
    async with db() as session, session.begin():
        await direct.run(session, _ADD_CONVERSATION, who="wangxm", what="collect_body", state={}, at=AT)
    async with db() as session, session.begin():
        await drafts_repo.clear_conversation(session=session, userid="wangxm")
        savepoint = await session.begin_nested()
        await drafts_repo.set_conversation(
            session=session, userid="wangxm", kind="reject_reason", data={}, at=AT
        )
        await savepoint.rollback()  # the new one is undone: the ending stands
    assert await conversation_of(db, "wangxm") is None


@pytest.mark.parametrize(
    ("moment", "stored"),
    [
        (AT, "2026-05-11 02:30:15.123456"),
        (datetime(2026, 5, 11, 10, 30, tzinfo=timezone(timedelta(hours=8))), "2026-05-11 02:30:00.000000"),
        (datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "0999-01-02 03:04:05.000006"),
    ],
)
async def test_sqlite_keeps_a_moment_as_naive_utc_text_that_sorts(
    sqlite_url: str, moment: datetime, stored: str
) -> None:
    """The text SQLAlchemy's SQLite DATETIME writes (fixed width, so text order is time order),
    in UTC whatever the moment's zone, and read back as the same moment; a naive one is refused."""
    engine = make_engine(sqlite_url)
    await init_models(engine)
    db = make_session_factory(engine)
    try:
        async with db() as session, session.begin():
            await direct.run(session, _ADD_CONVERSATION, who="u1", what="k", state={}, at=moment)
            with pytest.raises(ValueError, match="naive"):
                await direct.run(
                    session, _ADD_CONVERSATION, who="u2", what="k", state={}, at=moment.replace(tzinfo=None)
                )
        async with db() as session:
            raw = await session.exec(text("SELECT created_at FROM conversation"))  # type: ignore[call-overload]
            assert [row[0] for row in raw.all()] == [stored]
            assert (await session.get(Conversation, "u1")).created_at == moment  # type: ignore[union-attr]
    finally:
        await engine.dispose()

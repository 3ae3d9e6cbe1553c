"""Drafts, versions, decisions, approval cards and conversations (caller owns the transaction)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import any_, bindparam, delete, event, func, literal_column, null, true, union_all, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.content import VersionContent
from storage import at_commit, direct
from storage.models import (
    ApprovalCard,
    Conversation,
    Delegation,
    Draft,
    DraftRead,
    DraftVersion,
    DraftWatcher,
    ProofRecord,
    StageAssignment,
    StageDecision,
    VersionFile,
)
from storage.schema import table_of


@functools.cache
def _value_keys(model: type[SQLModel]) -> tuple[str, ...]:
    """The columns an insert writes: every one but the key."""
    return tuple(c.key for c in table_of(model).columns if not c.primary_key)


@functools.cache
def _all_keys(model: type[SQLModel]) -> tuple[str, ...]:
    """The columns an insert of a row with its id drawn already writes: every one."""
    return tuple(c.key for c in table_of(model).columns)


@functools.cache
def _insert(model: type[SQLModel], *, unless_taken: bool) -> direct.Direct:
    """INSERT … RETURNING id, every column but the key a parameter; `unless_taken`: ON
    CONFLICT DO NOTHING (no row, no id)."""
    table = table_of(model)
    values: dict[str, Any] = {key: bindparam(key) for key in _value_keys(model)}

    def statement(dialect: str) -> Any:
        inserted = direct.dialect_insert(dialect, table).values(values)
        return (inserted.on_conflict_do_nothing() if unless_taken else inserted).returning(table.c.id)

    return direct.Direct(statement, writes_only=table.name)


@functools.cache
def _insert_keyed(model: type[SQLModel]) -> direct.Direct:
    """INSERT of a row whose id the caller drew already: every column a parameter."""
    table = table_of(model)
    return direct.Direct(table.insert().values({c.key: bindparam(c.key) for c in table.columns}))


def _row_values(row: SQLModel, keys: Sequence[str]) -> dict[str, Any]:
    """The new `row`'s values of `keys`, as an INSERT of it takes them."""
    held = row.__dict__  # (direct.record and the constructors set every field there)
    return {key: held[key] if key in held else getattr(row, key) for key in keys}


async def _add(session: AsyncSession, row: SQLModel, *, unless_taken: bool = False) -> Any:
    """Insert the new `row` in one statement (not through the session's flush): its id, or
    None when `unless_taken` and a unique constraint kept it out."""
    values = _row_values(row, _value_keys(type(row)))
    _draft_written(session, values.get("draft_id"))
    return await direct.scalar(session, _insert(type(row), unless_taken=unless_taken), **values)


async def _add_soon(session: AsyncSession, row: StageDecision | ApprovalCard) -> None:
    """Hold back the INSERT of the new `row`, whose id was drawn already, with the
    transaction's other writes to its draft's rows (direct.run_soon)."""
    model = type(row)
    values = _row_values(row, _all_keys(model))
    _draft_written(session, row.draft_id)
    await direct.run_soon(session, table_of(model).name, _insert_keyed(model), touches=row.draft_id, **values)


async def add_unless_taken(*, session: AsyncSession, row: SQLModel) -> bool:
    """Insert the new `row` in one statement unless it would break a unique constraint of its
    table (another person's decision or signature for the same place committed first): then
    False, and nothing changed. On success the row has its id; it is not in the session (a
    later change to it is not saved unless written). A tap's decision on PostgreSQL is written
    with the tap's next write instead, when that cannot happen (_add_decision_soon)."""
    if isinstance(row, StageDecision) and await _add_decision_soon(session, row):
        return True
    new_id = await _add(session, row, unless_taken=True)
    if new_id is None:
        return False
    if isinstance(row, StageDecision):  # the version's decisions as read are one short now
        (await _DECISIONS_READ.kept(session)).pop((row.draft_id, row.version), None)
    row.id = new_id
    return True


async def _add_decision_soon(session: AsyncSession, row: StageDecision) -> bool:
    """A decision on a version whose draft card_with_draft locked on PostgreSQL, where it drew
    the decision's id once the lock was granted: when the decisions it read then leave no
    doubt that the row breaks neither unique constraint (one decision a reviewer a round; one a
    slot, and a shared slot's stage holds none yet), its INSERT is held back to ride on the
    tap's next write (direct.run_soon), and True. Nothing else can add a decision meanwhile:
    every decision is made with its draft locked, and the lock lasts to the commit."""
    drawn = (await _DECISION_IDS_DRAWN.kept(session)).pop((row.draft_id, row.version), None)
    if drawn is None:
        return False
    decision_id, decided = drawn
    shared_slot = row.slot != row.reviewer_userid
    if any(
        round_of == row.round and (reviewer == row.reviewer_userid or (shared_slot and stage == row.stage))
        for stage, reviewer, _, round_of in decided
    ):
        return False  # the database's constraints answer (taken, or not after all)
    row.id = decision_id
    await _add_soon(session, row)
    (await _DECISIONS_READ.kept(session)).pop((row.draft_id, row.version), None)
    return True


async def add_draft(
    *, session: AsyncSession, draft: Draft, content: VersionContent, findings: list[dict[str, Any]]
) -> Draft:
    """Insert a draft and its version 1; returns it with its id, in the session (the services
    change it and the flush writes that)."""
    # Each in one statement: the session's flush of a new object costs many times more.
    draft.id = await _add(session, draft)
    direct.attach(session, Draft, draft)
    await add_version(
        session=session,
        draft=draft,
        content=content,
        findings=findings,
        at=draft.created_at,
        by=draft.submitter_userid,
    )
    return draft


async def add_version(
    *,
    session: AsyncSession,
    draft: Draft,
    content: VersionContent,
    findings: list[dict[str, Any]],
    at: datetime,
    by: str,
) -> None:
    """The draft's current version number with its text, HTML, hash, files and 智能识错 findings
    (never changed later)."""
    assert draft.id is not None
    version = direct.record(
        DraftVersion,
        draft_id=draft.id,
        version=draft.version,
        body=content.body,
        body_html=content.body_html,
        source=content.source,
        content_sha256=content.content_sha256,
        findings=findings,
        created_at=at,
        created_by=by,
    )
    version.id = await _add(session, version)
    # the stage about to start sends this text: known, not read back
    (await _BODIES_READ.kept(session))[draft.id, draft.version] = content.body
    for file in content.files:
        session.add(
            VersionFile(
                draft_id=draft.id,
                version=draft.version,
                role=file.role,
                sha256=file.sha256,
                name=file.name[:200],
                content_type=file.content_type,
                size=file.size,
            )
        )


async def list_submitted_by(*, session: AsyncSession, userid: str, limit: int) -> Sequence[Draft]:
    """A person's own drafts, newest first."""
    statement = (
        select(Draft).where(Draft.submitter_userid == userid).order_by(col(Draft.id).desc()).limit(limit)
    )
    return (await session.exec(statement)).all()


async def list_in_review(*, session: AsyncSession) -> Sequence[Draft]:
    """Drafts in review, longest waiting first."""
    statement = select(Draft).where(Draft.status == "in_review").order_by(col(Draft.stage_entered_at))
    return (await session.exec(statement)).all()


async def get_version(*, session: AsyncSession, draft_id: int, version: int) -> DraftVersion | None:
    statement = select(DraftVersion).where(DraftVersion.draft_id == draft_id, DraftVersion.version == version)
    return (await session.exec(statement)).first()


async def list_version_files(*, session: AsyncSession, draft_id: int, version: int) -> Sequence[VersionFile]:
    statement = (
        select(VersionFile)
        .where(VersionFile.draft_id == draft_id, VersionFile.version == version)
        .order_by(col(VersionFile.id))
    )
    return (await session.exec(statement)).all()


async def draft_has_file(*, session: AsyncSession, draft_id: int, sha256: str) -> VersionFile | None:
    """The draft's file with this hash in any version, or None (a guessed hash of another draft)."""
    statement = select(VersionFile).where(VersionFile.draft_id == draft_id, VersionFile.sha256 == sha256)
    return (await session.exec(statement.limit(1))).first()


async def last_read_version(*, session: AsyncSession, draft_id: int, userid: str) -> int | None:
    row = await session.get(DraftRead, (draft_id, userid))
    return row.version if row is not None else None


async def mark_read(*, session: AsyncSession, draft_id: int, userid: str, version: int, at: datetime) -> None:
    row = await session.get(DraftRead, (draft_id, userid))
    if row is None:
        session.add(DraftRead(draft_id=draft_id, userid=userid, version=version, at=at))
    elif version > row.version:
        row.version, row.at = version, at
        session.add(row)


# The statements every decision runs, built once and run on the driver's connection
# (storage.direct: the ORM's bookkeeping cost more than the statements). Values come in as
# parameters.
_DRAFT_TABLE = table_of(Draft)
_DRAFT_BY_ID = core_select(_DRAFT_TABLE).where(_DRAFT_TABLE.c.id == bindparam("draft_id"))
_DRAFT = direct.Direct(_DRAFT_BY_ID)
_DRAFT_LOCKED = direct.Direct(_DRAFT_BY_ID.with_for_update())
_BODY = direct.Direct(
    select(DraftVersion.body).where(
        DraftVersion.draft_id == bindparam("draft_id"), DraftVersion.version == bindparam("version")
    )
)
_DECISION_TABLE = table_of(StageDecision)
_DECISIONS_IN_ORDER = direct.Direct(
    core_select(_DECISION_TABLE)
    .where(_DECISION_TABLE.c.draft_id == bindparam("draft_id"))
    .order_by(_DECISION_TABLE.c.id)
)
_CARD_TABLE = table_of(ApprovalCard)
_CARD = direct.Direct(core_select(_CARD_TABLE).where(_CARD_TABLE.c.id == bindparam("card_id")))
# A tapped card and its draft in one read, the draft locked as get_draft(lock=True) locks it,
# with the version's text, and what a decision reads once the lock is held: the version's
# decisions (JSON: [[id, stage, reviewer, decision, round], …]) and whether the round has a
# 转审/加签. On SQLite subqueries of the same statement read them (its one writer holds the
# whole database from BEGIN IMMEDIATE: nothing changes between the read and the lock); on
# PostgreSQL a subquery would read the snapshot taken before a wait for the lock, so the locked
# row is read in a CTE and the two reads are VOLATILE functions called on it (migration 0020),
# each taking a snapshot of its own once the lock is granted.
_VERSION_TABLE = table_of(DraftVersion)


def _card_with_draft(dialect: str, *, many: bool = False) -> Any:
    """The read of one card (`card_id`), or with `many` of several (`card_ids`, an array:
    PostgreSQL only), their drafts locked in id order (two groups locking some of the same
    drafts wait for each other, never each for the other)."""
    draft = _DRAFT_TABLE.c
    tapped = (
        core_select(
            *(column.label(f"card_{column.key}") for column in _CARD_TABLE.columns),
            *(column.label(f"draft_{column.key}") for column in _DRAFT_TABLE.columns),
            # the text of the draft's version, which a tap that moves it on sends to the next stage
            core_select(_VERSION_TABLE.c.body)
            .where(_VERSION_TABLE.c.draft_id == draft.id, _VERSION_TABLE.c.version == draft.version)
            .scalar_subquery()
            .label("body"),
        )
        .join_from(_CARD_TABLE, _DRAFT_TABLE, _CARD_TABLE.c.draft_id == draft.id)
        .with_for_update(of=_DRAFT_TABLE)
    )
    if many:
        card_ids = bindparam("card_ids", type_=ARRAY(_CARD_TABLE.c.id.type))
        tapped = tapped.where(_CARD_TABLE.c.id == any_(card_ids)).order_by(draft.id)
    else:
        tapped = tapped.where(_CARD_TABLE.c.id == bindparam("card_id"))
    if dialect == "postgresql":
        locked = tapped.cte("tapped").prefix_with("MATERIALIZED")  # (never folded into the query below)
        return core_select(
            *locked.c,
            func.sanshen_version_decisions(locked.c.draft_id, locked.c.draft_version),
            func.sanshen_round_reassigned(locked.c.draft_id, locked.c.draft_version, locked.c.draft_round),
            # the id of the decision the tap may record, drawn once the lock is granted: a
            # draft's decisions stay in the order they were made by id, whichever instance made them
            func.nextval(literal_column(f"'{_DECISION_TABLE.name}_id_seq'::regclass")),
            # and of the card a tap moving the draft on sends: its INSERT is then held back
            # with the group's other writes (an id never used leaves a gap, nothing else)
            func.nextval(literal_column(f"'{_CARD_TABLE.name}_id_seq'::regclass")),
            *([_away_now()] if many else []),
        )
    decisions = _DECISION_TABLE.c
    assignments = _ASSIGNMENT_TABLE.c
    return tapped.add_columns(
        core_select(
            func.json_group_array(
                func.json_array(
                    decisions.id,
                    decisions.stage,
                    decisions.reviewer_userid,
                    decisions.decision,
                    decisions.round,
                )
            )
        )
        .where(decisions.draft_id == draft.id, decisions.version == draft.version)
        .scalar_subquery(),
        core_select(assignments.id)
        .where(
            assignments.draft_id == draft.id,
            assignments.version == draft.version,
            assignments.round == draft.round,
        )
        .exists(),
    )


def _away_now() -> Any:
    """Who is away at `at` (what _AWAY reads) as one JSON array of [userid, delegate, until],
    a column of the read ahead: a subquery of nothing else, so it is computed once."""
    away = table_of(Delegation).c
    return (
        core_select(
            func.coalesce(
                func.json_agg(func.json_build_array(away.userid, away.delegate, away.until)),
                literal_column("'[]'::json"),
            )
        )
        .where(_RUNNING_AT)
        .scalar_subquery()
        .label("away")
    )


_CARD_WITH_DRAFT = direct.Direct(_card_with_draft)
_CARDS_WITH_DRAFTS = direct.Direct(lambda dialect: _card_with_draft(dialect, many=True))  # (PostgreSQL)
_CARD_COLUMNS = _all_keys(ApprovalCard)
_DRAFT_COLUMNS = _all_keys(Draft)
# Closes the draft's open cards and says which they were, in one statement.
# (It reads no other table and changes no key: held back on PostgreSQL, it runs with the tap's
# other held writes in one statement, the next stage's card included.)
_CLOSE_OPEN_CARDS = direct.Direct(
    update(_CARD_TABLE)
    .where(_CARD_TABLE.c.draft_id == bindparam("of_draft"), _CARD_TABLE.c.closed.is_(False))
    .values(closed=true())
    .returning(_CARD_TABLE.c.id, _CARD_TABLE.c.response_code),
    writes_only=_CARD_TABLE.name,
    changes_no_key=True,
)
_ASSIGNMENT_TABLE = table_of(StageAssignment)
_ROUND_ASSIGNMENTS = direct.Direct(
    core_select(_ASSIGNMENT_TABLE)
    .where(
        _ASSIGNMENT_TABLE.c.draft_id == bindparam("draft_id"),
        _ASSIGNMENT_TABLE.c.version == bindparam("version"),
        _ASSIGNMENT_TABLE.c.round == bindparam("round"),
    )
    .order_by(_ASSIGNMENT_TABLE.c.id)
)
# A version's decisions in order (kind 0), then its round's 转审/加签 (kind 1): what a decision
# needs once its draft is locked, in one read instead of two (most rounds have no 转审, and then
# stage_assignment needs no read of its own).
_DECISIONS_THEN_ASSIGNMENTS = direct.Direct(
    union_all(
        core_select(
            literal_column("0").label("kind"),
            _DECISION_TABLE.c.id,
            _DECISION_TABLE.c.stage,
            _DECISION_TABLE.c.reviewer_userid,
            _DECISION_TABLE.c.decision,
            _DECISION_TABLE.c.round,
        ).where(
            _DECISION_TABLE.c.draft_id == bindparam("draft_id"),
            _DECISION_TABLE.c.version == bindparam("version"),
        ),
        core_select(
            literal_column("1"),
            _ASSIGNMENT_TABLE.c.id,
            _ASSIGNMENT_TABLE.c.stage,
            null(),
            null(),
            _ASSIGNMENT_TABLE.c.round,
        ).where(
            _ASSIGNMENT_TABLE.c.draft_id == bindparam("draft_id"),
            _ASSIGNMENT_TABLE.c.version == bindparam("version"),
            _ASSIGNMENT_TABLE.c.round == bindparam("round"),
        ),
    ).order_by(literal_column("kind"), literal_column("id"))
)
# Everyone away at a moment: few rows (the people on leave now), filtered in Python.
_RUNNING_AT = col(Delegation.until) > bindparam("at")  # a delegation still running at `at`
_AWAY = direct.Direct(select(Delegation.userid, Delegation.delegate, Delegation.until).where(_RUNNING_AT))


class _ReadOnce:
    """Rows a transaction reads once and asks for again (a tap asks who may decide its stage,
    then the next one's; callbacks applied together share one transaction), kept in the
    session by key until the transaction ends or a flush adds, changes or removes a `model`
    row. A row written by a plain statement instead is put in the copy by its writer
    (add_version does so for a version's text)."""

    _all: list[_ReadOnce] = []

    def __init__(self, model: type[SQLModel] | tuple[type[SQLModel], ...], what: str = "rows") -> None:
        self.model = model  # (or models: a change to any of them drops the copy)
        named = model if isinstance(model, type) else model[0]
        self.info_key = f"sanshen_read_once_{named.__name__}_{what}"
        _ReadOnce._all.append(self)

    async def kept(self, session: AsyncSession) -> dict[Any, Any]:
        """What this transaction read so far, by key (writable: the caller adds what it reads)."""
        sync = session.sync_session
        if not sync._is_clean():
            await session.flush()  # (a changed row drops the copy here)
        kept = sync.info.get(self.info_key)
        transaction = direct.innermost_transaction(sync)
        if kept is None or kept[0] is not transaction:
            kept = sync.info[self.info_key] = (transaction, {})
        return cast(dict[Any, Any], kept[1])

    def kept_already(self, session: AsyncSession) -> dict[Any, Any] | None:
        """What this transaction read so far, if it read any (None: nothing to drop; no copy
        is made, and the session is not flushed for it)."""
        sync = session.sync_session
        kept = sync.info.get(self.info_key)
        if kept is None or kept[0] is not direct.innermost_transaction(sync):
            return None
        return cast(dict[Any, Any], kept[1])


_ASSIGNMENTS_READ = _ReadOnce(StageAssignment)  # (draft, version, round) → its assignments in order
_BODIES_READ = _ReadOnce(DraftVersion)  # (draft, version) → its text (a version's text never changes)
# (draft, version) → its decisions as version_decisions gives them, read with the draft locked
# (card_with_draft): valid to the end of the transaction, which holds the lock, unless this
# transaction adds a decision to that version (add_unless_taken drops it then).
_DECISIONS_READ = _ReadOnce(StageDecision)
# (draft, version) → (an id drawn for its next decision, its decisions as read), both at the
# lock (card_with_draft on PostgreSQL): taken by the next decision add_unless_taken adds to the
# version (used or not), and gone with a flush that changes a decision.
_DECISION_IDS_DRAWN = _ReadOnce(StageDecision, "drawn_ids")
# draft → an id drawn for its next card (card_with_draft on PostgreSQL), taken by add_card
_CARD_IDS_DRAWN = _ReadOnce(ApprovalCard, "drawn_ids")
_AWAY_READ = _ReadOnce(Delegation)  # None → (the earliest moment asked, the rows _AWAY read then)
# card id → (its draft's id, what card_with_draft reads of it), read ahead for a group of taps
# (read_cards_ahead); gone with a flush that changes any row the read covers, and by draft with
# this module's own writes (_draft_written).
_READ_AHEAD = _ReadOnce((ApprovalCard, Draft, DraftVersion, StageDecision, StageAssignment), "ahead")


@event.listens_for(Session, "after_flush")
def _forget_changed_reads(sync: Session, _context: Any) -> None:
    for read in _ReadOnce._all:
        if read.info_key in sync.info and any(
            isinstance(changed, read.model) for changed in (*sync.new, *sync.dirty, *sync.deleted)
        ):
            del sync.info[read.info_key]


_CONVERSATION_TABLE = table_of(Conversation)
_FORGET_CONVERSATION = direct.Direct(
    delete(_CONVERSATION_TABLE).where(_CONVERSATION_TABLE.c.userid == bindparam("of_user"))
)
_FORGET_CONVERSATIONS = direct.Direct(  # (PostgreSQL: of_user an array)
    delete(_CONVERSATION_TABLE).where(
        _CONVERSATION_TABLE.c.userid
        == any_(bindparam("of_user", type_=ARRAY(_CONVERSATION_TABLE.c.userid.type)))
    )
)


async def get_draft(*, session: AsyncSession, draft_id: int, lock: bool = False) -> Draft | None:
    """A draft by id; `lock` takes a row lock (PostgreSQL) so decisions on it serialise."""
    # In the session: the services change it and the flush writes that.
    return await direct.persistent(session, Draft, _DRAFT_LOCKED if lock else _DRAFT, draft_id=draft_id)


@functools.cache
def _update_draft(columns: tuple[str, ...]) -> direct.Direct:
    values: dict[str, Any] = {column: bindparam(f"new_{column}") for column in columns}
    return direct.Direct(
        update(_DRAFT_TABLE).where(_DRAFT_TABLE.c.id == bindparam("of_draft")).values(values)
    )


async def update_draft(*, session: AsyncSession, draft: Draft, **changes: Any) -> None:
    """Set `changes` on the draft and write exactly those columns, in one UPDATE (the session's
    flush does not write them again): on PostgreSQL held back with the transaction's other
    writes (direct.run_soon), as a tap moving the draft on writes it with its decision and the
    next stage's card, and a group of taps all theirs in one round trip."""
    for key, value in changes.items():
        set_committed_value(draft, key, value)
    params = {f"new_{key}": value for key, value in changes.items()}
    _draft_written(session, draft.id)
    await direct.run_soon(
        session,
        _DRAFT_TABLE.name,
        _update_draft(tuple(sorted(changes))),
        touches=draft.id,
        of_draft=draft.id,
        **params,
    )


async def get_body(*, session: AsyncSession, draft_id: int, version: int) -> str:
    kept = await _BODIES_READ.kept(session)
    if (draft_id, version) not in kept:
        kept[draft_id, version] = (
            await direct.scalar(session, _BODY, draft_id=draft_id, version=version) or ""
        )
    return cast(str, kept[draft_id, version])


async def list_versions(*, session: AsyncSession, draft_id: int) -> Sequence[DraftVersion]:
    return (
        await session.exec(
            select(DraftVersion).where(DraftVersion.draft_id == draft_id).order_by(col(DraftVersion.version))
        )
    ).all()


async def list_decisions(*, session: AsyncSession, draft_id: int) -> Sequence[StageDecision]:
    """A draft's decisions in order, as records: changing one saves nothing."""
    return await direct.models(session, StageDecision, _DECISIONS_IN_ORDER, draft_id=draft_id)


async def version_decisions(
    *, session: AsyncSession, draft_id: int, version: int, round_: int
) -> list[tuple[int, str, str, int]]:
    """A version's decisions in order, each as (stage, reviewer, decision, round); read together
    with whether round `round_` has a 转审 or 加签, so that stage_assignment asks again only
    when it has one. Call it with the draft locked (on PostgreSQL a decision committed before
    the lock was granted then counts); a tap's card_with_draft has read them already."""
    known = (await _DECISIONS_READ.kept(session)).get((draft_id, version))
    if known is not None:
        return list(known)
    found = await direct.rows(
        session, _DECISIONS_THEN_ASSIGNMENTS, draft_id=draft_id, version=version, round=round_
    )
    decisions = [
        (stage, reviewer, decision, round_of)
        for kind, _, stage, reviewer, decision, round_of in found
        if kind == 0
    ]
    if len(decisions) == len(found):  # none: what stage_assignment would read is known
        (await _ASSIGNMENTS_READ.kept(session)).setdefault((draft_id, version, round_), [])
    return decisions


async def add_card(
    *,
    session: AsyncSession,
    draft: Draft,
    recipients: Sequence[str],
    at: datetime,
    nonce: str,
    step: str = "review",
) -> ApprovalCard:
    """A new card row with a task_id unique forever (WeCom refuses a reused one, 42014): the
    draft, version, round and stage, and a random `nonce` of 12 hex digits for the cards one
    stage can have (a 转审, a card sent again)."""
    assert draft.id is not None
    kind = "p" if step == "proof" else "s"
    card = direct.record(
        ApprovalCard,
        task_id=f"sanshen-d{draft.id}-v{draft.version}-r{draft.round}-{kind}{draft.stage}-{nonce}",
        draft_id=draft.id,
        version=draft.version,
        round=draft.round,
        stage=draft.stage,
        step=step,
        recipients="|".join(recipients),
        created_at=at,
    )
    drawn = (await _CARD_IDS_DRAWN.kept(session)).pop(draft.id, None)
    if drawn is not None:  # (PostgreSQL, a tapped card's draft) held back with the tap's other writes
        card.id = drawn
        await _add_soon(session, card)  # (a nonce drawn twice fails the transaction: 1 in 2^48)
    elif not await add_unless_taken(session=session, row=card):  # a nonce drawn twice: 1 in 2^48
        raise RuntimeError(f"card task_id {card.task_id} already taken")
    return card


async def list_proofs(
    *,
    session: AsyncSession,
    draft_id: int,
    version: int | None = None,
    round_: int | None = None,
    after_stage: int | None = None,
) -> Sequence[ProofRecord]:
    """校 signatures of a draft (of one version, round and 校 step when given), in order."""
    statement = select(ProofRecord).where(ProofRecord.draft_id == draft_id)
    if version is not None:
        statement = statement.where(ProofRecord.version == version)
    if round_ is not None:
        statement = statement.where(ProofRecord.round == round_)
    if after_stage is not None:
        statement = statement.where(ProofRecord.after_stage == after_stage)
    return (await session.exec(statement.order_by(col(ProofRecord.id)))).all()


async def get_card(*, session: AsyncSession, card_id: int) -> ApprovalCard | None:
    """A card as a record: changing it saves nothing."""
    return await direct.first_model(session, ApprovalCard, _CARD, card_id=card_id)


async def card_with_draft(*, session: AsyncSession, card_id: int) -> tuple[ApprovalCard, Draft] | None:
    """A card (a record, as get_card) and its draft (in the session and locked, as get_draft
    with `lock`), read together: a tap needs both, and then the version's decisions and the
    round's 转审/加签 (version_decisions and stage_assignment find them read). Read already
    when read_cards_ahead read it and nothing changed its draft since."""
    ahead = await _READ_AHEAD.kept(session)
    found = ahead.pop(card_id, None)
    row = found[1] if found is not None else await direct.first(session, _CARD_WITH_DRAFT, card_id=card_id)
    if row is None:
        return None
    split, end = len(_CARD_COLUMNS), len(_CARD_COLUMNS) + len(_DRAFT_COLUMNS)
    card = direct.build(ApprovalCard, _CARD_COLUMNS, row[:split])
    stored = direct.build(Draft, _DRAFT_COLUMNS, row[split:end])
    body, decisions, reassigned, *drawn = row[end:]
    if body is not None:  # (the body of the version stored, which the read saw)
        (await _BODIES_READ.kept(session))[stored.id, stored.version] = body
    decided = sorted(json.loads(decisions))  # [id, stage, reviewer, decision, round], by id
    version_decided = [
        (stage, reviewer, decision, round_of) for _, stage, reviewer, decision, round_of in decided
    ]
    (await _DECISIONS_READ.kept(session))[stored.id, stored.version] = version_decided
    if drawn:  # (PostgreSQL)
        decision_id, card_id = drawn
        (await _DECISION_IDS_DRAWN.kept(session))[stored.id, stored.version] = (decision_id, version_decided)
        (await _CARD_IDS_DRAWN.kept(session))[stored.id] = card_id
    if not reassigned:  # what stage_assignment would read is known
        (await _ASSIGNMENTS_READ.kept(session))[stored.id, stored.version, stored.round] = []
    return card, direct.attach(session, Draft, stored)


async def read_cards_ahead(*, session: AsyncSession, card_ids: Sequence[int], at: datetime) -> None:
    """On PostgreSQL, what card_with_draft reads for each of `card_ids` (taps that will be
    applied in this transaction), in one statement: their drafts are locked from now on, in
    id order, and each card's read is kept until its tap asks for it, or until something
    changes its draft, its cards, decisions or versions (then the tap reads again). Who is
    away at `at` comes with it (what active_delegates reads once a transaction). Elsewhere
    nothing: SQLite's reads cost no round trip."""
    wanted = list(dict.fromkeys(card_ids))
    if len(wanted) < 2 or session.sync_session.get_bind().dialect.name != "postgresql":
        return  # (one card is read by its own tap in one statement all the same)
    ahead = await _READ_AHEAD.kept(session)
    card_at, draft_at = _CARD_COLUMNS.index("id"), len(_CARD_COLUMNS) + _DRAFT_COLUMNS.index("id")
    rows = await direct.rows(session, _CARDS_WITH_DRAFTS, card_ids=wanted, at=at)
    for row in rows:
        ahead[row[card_at]] = (row[draft_at], row[:-1])
    away = await _AWAY_READ.kept(session)
    if rows and _away_kept(away, at) is None:
        found = [(userid, delegate, datetime.fromisoformat(until)) for userid, delegate, until in rows[0][-1]]
        away[None] = (at, found)


def _draft_written(session: AsyncSession, draft_id: int | None) -> None:
    """Forget what read_cards_ahead read of `draft_id`'s cards: this transaction changes it.
    (Every write to a draft's rows comes here, most in transactions that read nothing ahead.)"""
    ahead = _READ_AHEAD.kept_already(session)
    if not ahead:
        return
    for card_id in [card_id for card_id, (of_draft, _) in ahead.items() if of_draft == draft_id]:
        del ahead[card_id]


async def close_open_cards(
    *, session: AsyncSession, draft_id: int, then: Callable[[list[tuple[int, str | None]]], None]
) -> None:
    """Mark every open card of the draft closed, in one statement, and tell `then` the (id,
    response_code) of each card it closed, by id, once it has run: at once on SQLite, on
    PostgreSQL with the transaction's next write (direct.run_soon), before the commit's work."""

    def closed(rows: list[tuple[Any, ...]]) -> None:
        then(sorted((int(card_id), code) for card_id, code in rows))

    _draft_written(session, draft_id)
    await direct.run_soon(
        session, _CARD_TABLE.name, _CLOSE_OPEN_CARDS, then=closed, touches=draft_id, of_draft=draft_id
    )


async def get_conversation(*, session: AsyncSession, userid: str) -> Conversation | None:
    await _forget_now(session, userid)
    return await session.get(Conversation, userid)


async def set_conversation(
    *, session: AsyncSession, userid: str, kind: str, data: dict[str, Any], at: datetime
) -> None:
    await _forget_now(session, userid)
    existing = await session.get(Conversation, userid)
    if existing is None:
        session.add(Conversation(userid=userid, kind=kind, data=data, created_at=at))
    else:
        existing.kind = kind
        existing.data = data
        existing.created_at = at
        session.add(existing)


async def clear_conversation(*, session: AsyncSession, userid: str) -> None:
    """End what `userid` was in the middle of. Every 同意 does this, almost always for nobody:
    unless this transaction read the row, the DELETE waits for the commit (one statement for
    all the callbacks sharing it), or for the next read or write of that person's row."""
    loaded = session.sync_session.identity_map.get(session.identity_key(Conversation, userid))
    if loaded is not None:  # this transaction read it through the session: delete it there
        await session.delete(loaded)
        return
    at_commit.queue(session.sync_session, _FORGOTTEN, userid)


async def _forget_now(session: AsyncSession, userid: str) -> None:
    """The DELETE a clear_conversation left for the commit, now: the row is used again."""
    if at_commit.take(session.sync_session, _FORGOTTEN, userid):
        await direct.run(session, _FORGET_CONVERSATION, of_user=userid)


def _forget_at_commit(sync: Session, userids: list[str]) -> None:
    rows = [{"of_user": userid} for userid in dict.fromkeys(userids)]
    direct.run_many_soon_now(
        sync, _CONVERSATION_TABLE.name, _FORGET_CONVERSATION, _FORGET_CONVERSATIONS, rows
    )


_FORGOTTEN = "conversation_forgotten"
at_commit.on_commit(_FORGOTTEN, _forget_at_commit)


async def version_findings(*, session: AsyncSession, draft_id: int, version: int) -> list[dict[str, Any]]:
    """The 智能识错 findings kept with one version ([] when it had none)."""
    statement = select(DraftVersion.findings).where(
        DraftVersion.draft_id == draft_id, DraftVersion.version == version
    )
    return list((await session.exec(statement)).first() or [])


async def stage_assignment(
    *, session: AsyncSession, draft_id: int, version: int, round_: int, stage: int
) -> StageAssignment | None:
    """The latest 转审 or 加签 of this stage (None: the chain's assignees apply)."""
    kept = await _ASSIGNMENTS_READ.kept(session)
    key = (draft_id, version, round_)
    if key not in kept:
        kept[key] = await direct.models(
            session, StageAssignment, _ROUND_ASSIGNMENTS, draft_id=draft_id, version=version, round=round_
        )
    latest = [row for row in kept[key] if row.stage == stage]
    return latest[-1] if latest else None


async def active_delegates(*, session: AsyncSession, userids: Sequence[str], at: datetime) -> dict[str, str]:
    """away reviewer → delegate, for those of `userids` who are away at `at`."""
    if not userids:
        return {}
    wanted = set(userids)
    return {
        away: delegate
        for away, delegate, until in await _away_since(session, at)
        if away in wanted and until > at
    }


async def _away_since(session: AsyncSession, at: datetime) -> list[tuple[Any, ...]]:
    """Delegations still running at `at` (and maybe some ending before it): read once a transaction."""
    kept = await _AWAY_READ.kept(session)
    found = _away_kept(kept, at)
    if found is None:
        found = await direct.rows(session, _AWAY, at=at)
        kept[None] = (at, found)
    return found


def _away_kept(kept: dict[Any, Any], at: datetime) -> list[tuple[Any, ...]] | None:
    """The delegations this transaction read (`_AWAY_READ`), if read at `at` or earlier: then
    they include every one still running at `at`. None: not read, or only later."""
    if None in kept and kept[None][0] <= at:
        return cast(list[tuple[Any, ...]], kept[None][1])
    return None


async def list_watchers(*, session: AsyncSession, draft_id: int) -> list[str]:
    rows = await session.exec(
        select(DraftWatcher.userid).where(DraftWatcher.draft_id == draft_id).order_by(col(DraftWatcher.at))
    )
    return list(rows.all())


async def add_watcher(*, session: AsyncSession, draft_id: int, userid: str, by: str, at: datetime) -> bool:
    """Copy `userid` on the draft; False if they already were."""
    if await session.get(DraftWatcher, (draft_id, userid)) is not None:
        return False
    session.add(DraftWatcher(draft_id=draft_id, userid=userid, added_by=by, at=at))
    await session.flush()
    return True

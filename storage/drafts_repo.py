"""Drafts, versions, decisions, approval cards and conversations (caller owns the transaction)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.content import VersionContent
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
def _insert_unless_taken(table: Any, dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing().returning(table.c.id)


async def add_unless_taken(*, session: AsyncSession, row: SQLModel) -> bool:
    """Insert the new `row` in one statement unless it would break a unique constraint of its
    table (another person's decision or signature for the same place committed first): then
    False, and nothing changed. On success the row has its id and belongs to the session (a
    later change to it, such as its audit_id, is saved at the flush)."""
    table = table_of(type(row))
    statement = _insert_unless_taken(table, session.get_bind().dialect.name)
    values = {c.key: getattr(row, c.key) for c in table.columns if not c.primary_key}
    new_id = (await session.exec(statement, params=values)).scalar()
    if new_id is None:
        return False
    row.id = new_id
    make_transient_to_detached(row)
    session.add(row)
    return True


async def add_draft(
    *, session: AsyncSession, draft: Draft, content: VersionContent, findings: list[dict[str, Any]]
) -> Draft:
    """Insert a draft and its version 1; returns it with its id."""
    session.add(draft)
    await session.flush()
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
    session.add(
        DraftVersion(
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
    )
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


# The statements every decision runs are built once: building one (and its cache key) costs
# more than running it. Values come in as parameters.
_DRAFT = select(Draft).where(Draft.id == bindparam("draft_id"))
_DRAFT_LOCKED = _DRAFT.with_for_update()
_BODY = select(DraftVersion.body).where(
    DraftVersion.draft_id == bindparam("draft_id"), DraftVersion.version == bindparam("version")
)
_DECISIONS = select(StageDecision).where(StageDecision.draft_id == bindparam("draft_id"))
_DECISIONS_IN_ORDER = _DECISIONS.order_by(col(StageDecision.id))
_DECISIONS_OF_VERSION_IN_ORDER = _DECISIONS.where(StageDecision.version == bindparam("version")).order_by(
    col(StageDecision.id)
)
_CARD = select(ApprovalCard).where(ApprovalCard.id == bindparam("card_id"))
_OPEN_CARDS = select(ApprovalCard).where(
    ApprovalCard.draft_id == bindparam("draft_id"), col(ApprovalCard.closed).is_(False)
)
_CLOSE_OPEN_CARDS = (
    update(ApprovalCard)
    .where(col(ApprovalCard.draft_id) == bindparam("of_draft"), col(ApprovalCard.closed).is_(False))
    .values(closed=True)
)
_STAGE_ASSIGNMENT = (
    select(StageAssignment)
    .where(
        StageAssignment.draft_id == bindparam("draft_id"),
        StageAssignment.version == bindparam("version"),
        StageAssignment.round == bindparam("round"),
        StageAssignment.stage == bindparam("stage"),
    )
    .order_by(col(StageAssignment.id).desc())
    .limit(1)
)
_ACTIVE_DELEGATES = select(Delegation.userid, Delegation.delegate).where(
    col(Delegation.userid).in_(bindparam("userids", expanding=True)), Delegation.until > bindparam("at")
)


async def get_draft(*, session: AsyncSession, draft_id: int, lock: bool = False) -> Draft | None:
    """A draft by id; `lock` takes a row lock (PostgreSQL) so decisions on it serialise."""
    statement = _DRAFT_LOCKED if lock else _DRAFT
    return (await session.exec(statement, params={"draft_id": draft_id})).first()


async def get_body(*, session: AsyncSession, draft_id: int, version: int) -> str:
    row = (await session.exec(_BODY, params={"draft_id": draft_id, "version": version})).first()
    return row or ""


async def list_versions(*, session: AsyncSession, draft_id: int) -> Sequence[DraftVersion]:
    return (
        await session.exec(
            select(DraftVersion).where(DraftVersion.draft_id == draft_id).order_by(col(DraftVersion.version))
        )
    ).all()


async def list_decisions(
    *, session: AsyncSession, draft_id: int, version: int | None = None
) -> Sequence[StageDecision]:
    if version is None:
        return (await session.exec(_DECISIONS_IN_ORDER, params={"draft_id": draft_id})).all()
    params = {"draft_id": draft_id, "version": version}
    return (await session.exec(_DECISIONS_OF_VERSION_IN_ORDER, params=params)).all()


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
    card = ApprovalCard(
        task_id=f"sanshen-d{draft.id}-v{draft.version}-r{draft.round}-{kind}{draft.stage}-{nonce}",
        draft_id=draft.id,
        version=draft.version,
        round=draft.round,
        stage=draft.stage,
        step=step,
        recipients="|".join(recipients),
        created_at=at,
    )
    if not await add_unless_taken(session=session, row=card):  # a nonce drawn twice: 1 in 2^48
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
    return (await session.exec(_CARD, params={"card_id": card_id})).first()


async def list_open_cards(*, session: AsyncSession, draft_id: int) -> Sequence[ApprovalCard]:
    return (await session.exec(_OPEN_CARDS, params={"draft_id": draft_id})).all()


async def close_open_cards(*, session: AsyncSession, draft_id: int) -> None:
    """Mark every open card of the draft closed, in one statement."""
    await session.exec(_CLOSE_OPEN_CARDS, params={"of_draft": draft_id})


async def get_conversation(*, session: AsyncSession, userid: str) -> Conversation | None:
    return await session.get(Conversation, userid)


async def set_conversation(
    *, session: AsyncSession, userid: str, kind: str, data: dict[str, Any], at: datetime
) -> None:
    existing = await session.get(Conversation, userid)
    if existing is None:
        session.add(Conversation(userid=userid, kind=kind, data=data, created_at=at))
    else:
        existing.kind = kind
        existing.data = data
        existing.created_at = at
        session.add(existing)


async def clear_conversation(*, session: AsyncSession, userid: str) -> None:
    existing = await session.get(Conversation, userid)
    if existing is not None:
        await session.delete(existing)


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
    params = {"draft_id": draft_id, "version": version, "round": round_, "stage": stage}
    return (await session.exec(_STAGE_ASSIGNMENT, params=params)).first()


async def active_delegates(*, session: AsyncSession, userids: Sequence[str], at: datetime) -> dict[str, str]:
    """away reviewer → delegate, for those of `userids` who are away at `at`."""
    if not userids:
        return {}
    rows = await session.exec(_ACTIVE_DELEGATES, params={"userids": list(userids), "at": at})
    return dict(rows.all())


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

"""Work a transaction hands to its commit: kept aside until then, dropped with a savepoint that rolls back.

Three things wait for the commit. Audit entries are linked into the chain only then, so the
chain's head row is locked for the commit alone (storage.audit_repo). Outbox rows are added
then, all at once, so a callback that queues five messages writes them in one INSERT instead
of five (bot.wecom.outbox). A conversation ended (every 同意 ends one, almost always nobody's)
is deleted then, unless its row is used again first (storage.drafts_repo). All must behave as
if done on the spot: an item queued inside a savepoint that rolls back (a handler that refused,
a decision that lost its race) never reaches the database, and one queued in a savepoint that
was released waits for the real commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from storage import direct

Finisher = Callable[[Session, list[Any]], None]

_INFO_KEY = "sanshen_at_commit"
_TAKEN_KEY = "sanshen_at_commit_taken"  # (item, the savepoint that took it): see take
_finishers: dict[str, Finisher] = {}


@dataclass(frozen=True)
class _Queued:
    kind: str
    item: Any
    transaction: Any  # the innermost SessionTransaction when it was queued (None: not begun yet)


def on_commit(kind: str, finisher: Finisher) -> None:
    """Register what happens to the items of `kind` as their transaction commits:
    `finisher(session, items)`, items in the order they were queued, inside the transaction."""
    _finishers[kind] = finisher


def queue(session: Session, kind: str, item: Any) -> None:
    """Hand `item` to the commit of the transaction `session` is in (a sync Session: an
    AsyncSession's is `.sync_session`)."""
    if kind not in _finishers:
        raise KeyError(f"nothing is registered to finish {kind!r} at commit")
    innermost = direct.innermost_transaction(session)
    session.info.setdefault(_INFO_KEY, []).append(_Queued(kind, item, innermost))


def take(session: Session, kind: str, item: Any) -> bool:
    """Take back every queued `item` of `kind` (True if there was one): the caller does its
    work now instead. A savepoint that rolls back after the taking gives them back."""
    queued: list[_Queued] = session.info.get(_INFO_KEY, [])
    found = [q for q in queued if q.kind == kind and q.item == item]
    if not found:
        return False
    queued[:] = [q for q in queued if not (q.kind == kind and q.item == item)]
    if session.in_nested_transaction():
        taker = direct.innermost_transaction(session)
        session.info.setdefault(_TAKEN_KEY, []).extend((q, taker) for q in found)
    return True


def finish(session: Session) -> None:
    """Run the finishers now for everything queued. A commit does this by itself; a session
    whose transaction is committed through its connection instead (start-up's seed, see
    storage.db.init_models) calls it before that."""
    direct.run_held_now(session)  # (what they tell may queue more: a closed card to grey)
    queued: list[_Queued] = session.info.pop(_INFO_KEY, [])
    session.info.pop(_TAKEN_KEY, None)
    for kind, finisher in _finishers.items():
        items = [q.item for q in queued if q.kind == kind]
        if items:
            finisher(session, items)


@event.listens_for(Session, "before_commit")
def _finish_on_commit(session: Session) -> None:
    # before_commit also fires when a savepoint is released: the items wait for the real commit.
    if not session.in_nested_transaction():
        finish(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the whole transaction: everything goes
        session.info.pop(_INFO_KEY, None)
        session.info.pop(_TAKEN_KEY, None)
        return

    def inside(transaction: Any) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    queued: list[_Queued] = session.info.get(_INFO_KEY, [])
    taken: list[tuple[_Queued, Any]] = session.info.get(_TAKEN_KEY, [])
    # What was taken inside the savepoint comes back (the work done instead is undone), unless
    # it was queued inside it too.
    given_back = [q for q, at in taken if inside(at) and not inside(q.transaction)]
    session.info[_TAKEN_KEY] = [(q, at) for q, at in taken if not inside(at)]
    session.info[_INFO_KEY] = [q for q in [*queued, *given_back] if not inside(q.transaction)]

"""智能识错 in review: versions checked before their 一审 card, findings kept, marked by reviewers, 误报 learned."""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot import views
from bot.core.config import Settings
from bot.core.errors import UserFacingError
from bot.proofread import Lexicon, check, typo
from bot.rules.finding_marks import MARK_LABELS
from bot.services.scope import Scope
from storage import drafts_repo, findings_repo
from storage.audit_repo import append_audit
from storage.models import Draft

# A 误报 on these teaches the allow-list its text (a name, a phrase, a number, a host). Format
# findings are not learned: their text (「四、」, 「,」) would silence the rule everywhere.
LEARNED_KINDS = frozenset({"typo", "wording", "leader", "privacy", "link"})
LEARNED_MIN_CHARS = 2  # the lexicon's shortest allowed term


@functools.lru_cache(maxsize=2)
def _lists(lists_dir: str) -> Lexicon:
    return Lexicon.load(Path(lists_dir)) if lists_dir else Lexicon.load()


@functools.lru_cache(maxsize=4)
def _with_learned(lists_dir: str, learned: frozenset[str]) -> Lexicon:
    return _lists(lists_dir).with_allowed(learned)


def lexicon_for(settings: Settings, learned: frozenset[str] = frozenset()) -> Lexicon:
    """The shipped lists with the unit's (findings.lists_dir) and the learned 误报 terms, built
    once per set of terms; a bad file raises bot.proofread.LexiconError (start-up reads it
    first, so it stops there)."""
    return _with_learned(settings.findings.lists_dir, learned)


def warm(settings: Settings) -> None:
    """Build the lexicon and load the typo model (1.5 s, jieba's dictionary) before the first
    submission needs them; blocking: start-up runs it in a thread, off the event loop."""
    lexicon_for(settings)
    typo.model()


async def check_body(scope: Scope, draft: Draft, body: str) -> list[dict[str, Any]]:
    """Check a new version's text; its findings numbered from 1 (the numbers /check and the
    page show), their counts put on the draft for every card of this version."""
    learned = await findings_repo.learned_terms(session=scope.session)
    found = check(body, lexicon=lexicon_for(scope.settings, learned))
    records = [{"n": number, **asdict(finding)} for number, finding in enumerate(found, start=1)]
    draft.findings = len(records)
    draft.severe_findings = sum(1 for record in records if record["severity"] == "severe")
    return records


def audit_details(draft: Draft) -> dict[str, Any]:
    """What the submit and revise entries record of the check: how many, how many severe."""
    return {"findings": draft.findings, "severe_findings": draft.severe_findings}


async def marks_for_approval(scope: Scope, draft: Draft) -> dict[str, str]:
    """The acting reviewer's marks on the current version's severe findings, which 同意 records;
    raises UserFacingError (nothing changes) while any of them is unmarked."""
    if not draft.severe_findings:
        return {}
    assert draft.id is not None
    records = await drafts_repo.version_findings(
        session=scope.session, draft_id=draft.id, version=draft.version
    )
    marks = await findings_repo.marks_of(
        session=scope.session, draft_id=draft.id, version=draft.version, userid=scope.user
    )
    severe = [record["n"] for record in records if record["severity"] == "severe"]
    unmarked = [number for number in severe if number not in marks]
    if unmarked:
        scope.log.info(
            "approval by %s on draft %s refused: severe findings %s unmarked", scope.user, draft.id, unmarked
        )
        raise UserFacingError(views.findings_unmarked(draft, unmarked))
    return {str(number): marks[number] for number in severe}


async def mark(scope: Scope, draft: Draft, mark: str, numbers: list[int]) -> str:
    """The acting person's mark on findings of the current version (in review only); a 误报
    adds the finding's text to the learned allow-list. Audited; returns the answer."""
    assert mark in MARK_LABELS and draft.id is not None
    if draft.status != "in_review":
        raise UserFacingError(views.findings_not_in_review(draft))
    records = {
        record["n"]: record
        for record in await drafts_repo.version_findings(
            session=scope.session, draft_id=draft.id, version=draft.version
        )
    }
    unknown = [number for number in numbers if number not in records]
    if unknown:
        raise UserFacingError(views.no_such_findings(draft, unknown, len(records)))
    numbers = list(dict.fromkeys(numbers))  # each once, in the order given
    now = scope.now()
    learned: list[str] = []
    for number in numbers:
        await findings_repo.set_mark(
            session=scope.session,
            draft_id=draft.id,
            version=draft.version,
            number=number,
            userid=scope.user,
            mark=mark,
            at=now,
        )
        record = records[number]
        if (
            mark == "false_alarm"
            and record["kind"] in LEARNED_KINDS
            and len(record["text"]) >= LEARNED_MIN_CHARS
            and await findings_repo.learn(
                session=scope.session,
                term=record["text"],
                kind=record["kind"],
                draft_id=draft.id,
                userid=scope.user,
                at=now,
            )
        ):
            learned.append(record["text"])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="finding_mark",
        draft_id=draft.id,
        details={
            # the findings themselves are kept with the version: no personal data copied here
            "version": draft.version,
            "mark": mark,
            "numbers": numbers,
            **({"learned": learned} if learned else {}),
        },
    )
    return views.findings_marked(draft, mark, numbers, learned)

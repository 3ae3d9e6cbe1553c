"""智能识错 in review: every submitted version checked before its 一审 card, its findings kept and listed."""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.core.config import Settings
from bot.proofread import Lexicon, check
from storage.models import Draft


@functools.lru_cache(maxsize=4)
def _lexicon(lists_dir: str) -> Lexicon:
    return Lexicon.load(Path(lists_dir)) if lists_dir else Lexicon.load()


def lexicon_for(settings: Settings) -> Lexicon:
    """The shipped lists with the unit's (findings.lists_dir), built once per process; a bad
    file raises bot.proofread.LexiconError (start-up reads it first, so it stops there)."""
    return _lexicon(settings.findings.lists_dir)


def check_body(settings: Settings, draft: Draft, body: str) -> list[dict[str, Any]]:
    """Check a new version's text; its findings numbered from 1 (the numbers /check and the
    page show), their counts put on the draft for every card of this version."""
    found = check(body, lexicon=lexicon_for(settings))
    records = [{"n": number, **asdict(finding)} for number, finding in enumerate(found, start=1)]
    draft.findings = len(records)
    draft.severe_findings = sum(1 for record in records if record["severity"] == "severe")
    return records


def audit_details(draft: Draft) -> dict[str, Any]:
    """What the submit and revise entries record of the check: how many, how many severe."""
    return {"findings": draft.findings, "severe_findings": draft.severe_findings}

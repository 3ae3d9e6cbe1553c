"""智能识错: a pure, fast proofreading engine; findings carry offsets, kind, suggestion and rule.

Usage: ``check(text)`` with the shipped lists, or ``check(text, lexicon=Lexicon.load(unit_dir))``
with a unit's additions; build the Lexicon once and reuse it. Findings assist human review
(钦州 三审三校 五(二)2: 人工审校与智能识错纠错互补); they never decide anything.
"""

from bot.proofread.engine import check
from bot.proofread.findings import KINDS, SEVERITIES, Finding
from bot.proofread.lexicon import Lexicon, LexiconError

__all__ = ["KINDS", "SEVERITIES", "Finding", "Lexicon", "LexiconError", "check"]

"""领导人姓名职务 (kind 3): titles not held, names one character off, leaders out of order."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal

from bot.proofread import typo
from bot.proofread.findings import Finding, finding
from bot.proofread.leader_table import Leader, LeaderTable
from bot.proofread.lexicon import Lexicon

KIND = "leader"
RULE_TABLE = "领导人姓名职务表：{name} 现任 {titles}"
RULE_ORDER = "领导人排序：按领导人职务表排序号"

_HAN = re.compile(r"[\u4e00-\u9fff]+")
_NOT_HAN = re.compile(r"[^\u4e00-\u9fff]")
# Words before a title that end a clause rather than a name: 会议由市委副书记、市长张三主持.
_LEAD_IN = "由的有和与及是为在对向请"
# Between two listed leaders (each with the titles and 同志 around the name): one separator,
# or, after 、 or 和, other people's names (not in the table) themselves separated by 、 or 和.
# No sentence mark, no verb phrase: "张三主持，李四出席" is not a list.
_GAP = re.compile(r"[、，,和及与](?:[\u4e00-\u9fff·]{2,12}?[、和])*")
# A title word followed by these is part of another word: 委员会, 常委会, 书记处, 主席团, 主任科员,
# 市长热线, 局长信箱, 市长助理 (a title of its own only when the table lists it), 部长级.
_COMPOUND_AFTER = {"委": "会", "员": "会", "记": "处", "席": "团"}
_NEVER_AFTER = ("科员", "热线", "信箱", "助理", "级")
# A former office: 时任市长张三, 原市委书记张三, 曾任湛江市副市长的张三 are not checked against
# the current titles.
_PAST = re.compile(r"(?:时任|曾任|历任|原任|前任|原)[\u4e00-\u9fff]{0,8}$")


def rule(leader: Leader) -> str:
    """The rule text of a name or title finding: what the table says this leader holds."""
    return RULE_TABLE.format(name=leader.name, titles="、".join(leader.titles))


def _sounds() -> dict[str, str] | None:
    """character → the characters that sound like it (the typo check's shipped table); None
    only where a test says so, to exercise the rules that do not rely on sound."""
    return typo.same_sounds()


def similar(a: str, b: str) -> bool:
    """Whether two different characters share a reading (a pinyin input slip: 风 for 丰)."""
    sounds = _sounds()
    return sounds is not None and b in sounds.get(a, "")


@dataclass(slots=True)
class _Mention:
    """A leader named in the text: the name's span, and the span with its titles and 同志."""

    start: int
    end: int
    leader: Leader
    first: int = 0
    last: int = 0
    sure: bool = False  # a name of 3+ characters, one off a known name, or with a title or 同志


class _Scan:
    """Where names and title words are in one text, from one pass of the table's automaton."""

    def __init__(self, text: str, table: LeaderTable) -> None:
        self.text = text
        self.table = table
        self.title_from: dict[int, int] = {}  # a title's start -> the longest one's end
        self.title_to: dict[int, int] = {}  # a title's end -> the longest one's start
        self.covered: set[int] = set()  # positions inside a name or a title word
        names: dict[int, int] = {}
        assert table.automaton is not None
        for last, (length, is_name, is_title) in table.automaton.iter(text):
            end = last + 1
            start = end - length
            if is_name and names.get(start, 0) < end:
                names[start] = end
            if is_title and not self._compound(start, end):
                self.covered.update(range(start, end))
                if self.title_from.get(start, 0) < end:
                    self.title_from[start] = end
                if self.title_to.get(end, end) > start:
                    self.title_to[end] = start
        self.mentions: list[_Mention] = []
        reach = -1
        for start in sorted(names):  # leftmost, then longest: 张三丰 rather than 张三 inside it
            if start >= reach:
                end = names[start]
                leader = table.by_name[text[start:end]]
                self.mentions.append(_Mention(start, end, leader, sure=end - start > 2))
                self.covered.update(range(start, end))
                reach = end

    def _compound(self, start: int, end: int) -> bool:
        text = self.text
        after = _COMPOUND_AFTER.get(text[end - 1])
        if after is not None and text.startswith(after, end):
            return True
        return text.startswith(_NEVER_AFTER, end)


def find(text: str, lexicon: Lexicon) -> list[Finding]:
    """Leaders' findings against the unit's table; none without a table."""
    table = lexicon.leaders
    if table is None or not text:
        return []
    scan = _Scan(text, table)
    if not scan.title_from and len(scan.mentions) < 2:
        return []  # no title word and no list: nothing to check
    found: list[Finding] = []
    for mention in _near_names(scan):
        name = mention.leader.name
        found.append(finding(text, mention.start, mention.end, KIND, "severe", name, rule(mention.leader)))
        scan.mentions.append(mention)
    scan.mentions.sort(key=lambda m: m.start)
    found += _titles(scan)
    found += _order(scan, found)
    return found


# -- names one character off -------------------------------------------------------------------


def _near_names(scan: _Scan) -> list[_Mention]:
    """Strings next to a title word that are one character off a known name; each becomes a
    mention of that leader. A name of three or more characters qualifies when the changed
    character sounds the same or the string is set off on its far side (punctuation, 同志,
    another title); a two-character name only next to a title of its own, and when the changed
    character sounds the same (without a sound table: set off on its far side)."""
    text, table = scan.text, scan.table
    found: dict[tuple[int, int], _Mention] = {}
    for end, start in scan.title_to.items():  # 职务+姓名: the name starts where the title ends
        title = text[start:end]
        spans = [(end, end + length, end + length) for length in table.name_lengths]
        _resolve(scan, title, spans, found)
    for start, end in scan.title_from.items():  # 姓名+职务: the name ends where the title starts
        title = text[start:end]
        stop = start - 1 if start and text[start - 1] in "（(" else start  # 张三同志（市长）
        stop -= 2 if text.endswith("同志", 0, stop) else 0
        spans = [(stop - length, stop, stop - length - 1) for length in table.name_lengths]
        _resolve(scan, title, spans, found)
    return list(found.values())


def _resolve(
    scan: _Scan,
    title: str,
    spans: list[tuple[int, int, int]],
    found: dict[tuple[int, int], _Mention],
) -> None:
    """The one leader that one of `spans` (start, end, the index just outside) misspells, if any."""
    text, table = scan.text, scan.table
    options: list[tuple[bool, int, int, int, Leader]] = []
    for start, end, outside in spans:
        if start < 0 or end > len(text) or (start, end) in found:
            continue
        candidate = text[start:end]
        if not _HAN.fullmatch(candidate) or any(i in scan.covered for i in range(start, end)):
            continue
        apart = _set_off(scan, outside, before=outside < start)
        for i in range(len(candidate)):
            for leader in table.blanked.get(candidate[:i] + "?" + candidate[i + 1 :], ()):
                sounds = similar(candidate[i], leader.name[i])
                if len(candidate) == 2:
                    if not leader.holds(title):
                        continue
                    ok = sounds or (_sounds() is None and apart)
                else:
                    ok = sounds or apart
                if ok:
                    options.append((sounds, len(candidate), start, end, leader))
    if not options:
        return
    best = max(options, key=lambda o: (o[0], o[1]))
    rivals = {o[4].name for o in options if (o[0], o[1]) == (best[0], best[1])}
    if len(rivals) == 1:
        _, _, start, end, leader = best
        found[(start, end)] = _Mention(start, end, leader, sure=True)


def _set_off(scan: _Scan, at: int, *, before: bool) -> bool:
    """Whether the character at `at`, just outside a candidate name, ends it: none there, not a
    Chinese character, 同志 or 等 after it, a title word on its far side."""
    text = scan.text
    if at < 0 or at >= len(text) or _NOT_HAN.match(text, at):
        return True
    if before:
        return at + 1 in scan.title_to
    return at in scan.title_from or text.startswith(("同志", "等"), at)


# -- titles not held ---------------------------------------------------------------------------


def _titles(scan: _Scan) -> list[Finding]:
    """Each title word written next to a mention (市委副书记、市长张三; 张三书记; 张三（市长）)
    that the leader does not hold; a title between two names belongs to neither, and titles
    after 时任/原/曾任 are former ones."""
    text = scan.text
    starts = {m.start for m in scan.mentions}
    ends = {m.end for m in scan.mentions}
    found: list[Finding] = []
    for mention in scan.mentions:
        leader = mention.leader
        chain = _titles_before(scan, mention.start, ends)
        mention.first = chain[0][0] if chain else mention.start
        after, mention.last = _titles_after(scan, mention.end, starts)
        mention.sure = mention.sure or mention.first < mention.start or mention.last > mention.end
        if chain and _PAST.search(text, max(0, mention.first - 10), mention.first):
            chain = []
        for start, end in (*chain, *after):
            if not leader.holds(text[start:end]):
                suggestion = "、".join(leader.titles)
                found.append(finding(text, start, end, KIND, "severe", suggestion, rule(leader)))
    return found


def _titles_before(scan: _Scan, at: int, name_ends: set[int]) -> list[tuple[int, int]]:
    """The titles written before a name, joined by 、, stopping at one that follows a name. A
    title further back counts only after a mark or a word that cannot end a name (由, 的 …):
    in 陈某书记、市长张三 the 书记 is 陈某's, whoever he is."""
    text = scan.text
    chain: list[tuple[int, int]] = []
    while (start := scan.title_to.get(at)) is not None and start not in name_ends:
        if chain and start and _HAN.match(text, start - 1) and text[start - 1] not in _LEAD_IN:
            break
        chain.append((start, at))
        if start == 0 or text[start - 1] != "、":
            break
        at = start - 1
    chain.reverse()
    return chain


def _titles_after(scan: _Scan, at: int, name_starts: set[int]) -> tuple[list[tuple[int, int]], int]:
    """The titles written after a name (after 同志 and an opening bracket, if any), joined by 、,
    stopping at one that precedes a name; and where the mention ends."""
    text = scan.text
    if text.startswith("同志", at):
        at += 2
    last = at
    bracket = text.startswith(("（", "("), at)
    if bracket:
        at += 1
    chain: list[tuple[int, int]] = []
    while (end := scan.title_from.get(at)) is not None and end not in name_starts:
        if chain and _HAN.match(text, end) and not text.startswith(("同志", "等"), end):
            break  # 张三书记、市长陈某: a title further on may be the next person's
        chain.append((at, end))
        if not text.startswith("、", end):
            break
        at = end + 1
    if chain:
        last = chain[-1][1]
        if bracket and text.startswith(("）", ")"), last):
            last += 1
    return chain, last


# -- order of precedence -----------------------------------------------------------------------


def _order(scan: _Scan, found: list[Finding]) -> list[Finding]:
    """Leaders listed together (separated by 、，和 …) in another order than the table's: one
    finding over the listed names. A list of two-character names alone, none with a title or
    同志, is not read (领导和管理 may be two names or two words). Not reported when a name or
    title finding lies inside it (fix those first; findings of one kind do not overlap)."""
    text = scan.text
    taken = sorted(f.start for f in found)
    results: list[Finding] = []
    group: list[_Mention] = []
    for mention in [*scan.mentions, None]:
        if mention is not None and group and _GAP.fullmatch(text, group[-1].last, mention.first):
            group.append(mention)
            continue
        if len(group) > 1:
            results += _group_order(text, group, taken)
        group = [mention] if mention is not None else []
    return results


def _group_order(text: str, group: list[_Mention], taken: list[int]) -> list[Finding]:
    """The order finding of one list, if it is out of order; `taken`: other findings' starts."""
    if not any(m.sure for m in group):
        return []
    ranked: list[tuple[Decimal, _Mention]] = []
    seen: set[str] = set()
    for m in group:
        if m.leader.order is not None and m.leader.name not in seen:
            seen.add(m.leader.name)
            ranked.append((m.leader.order, m))
    if len(ranked) < 2 or all(a[0] <= b[0] for a, b in zip(ranked, ranked[1:], strict=False)):
        return []
    start, end = ranked[0][1].start, ranked[-1][1].end
    i = bisect_left(taken, start)
    if i < len(taken) and taken[i] < end:
        return []
    names = "、".join(m.leader.name for _, m in sorted(ranked, key=lambda r: r[0]))
    return [finding(text, start, end, KIND, "warn", names, RULE_ORDER)]

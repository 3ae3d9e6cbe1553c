"""The word lists: shipped lists, a unit's additions and allow-list, all in one automaton."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick

from bot.proofread import leader_table
from bot.proofread.findings import SEVERITIES
from bot.proofread.leader_table import LeaderTable, TableError


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A word list matched by the automaton: its kind, its file name and its Chinese label."""

    kind: str
    file: str
    label: str


# Lists in the TSV format (term, suggestion, severity, source), shipped in lists/ and optionally
# repeated in a unit's directory.
LISTS: tuple[ListSpec, ...] = (
    ListSpec("typo", "typo.tsv", "错别字清单"),
    ListSpec("wording", "wording.tsv", "规范表述清单"),
    ListSpec("link", "ads.tsv", "广告用语清单"),
)
ALLOW_FILE = "allow.txt"  # terms never flagged (place names, the unit's own address …), one a line
DOMAINS_FILE = "domains.txt"  # link hosts that are fine, with their subdomains, one a line
# The unit's 领导人姓名职务表 (kind 3, leader), either or both; none is shipped: leaders are local.
LEADERS_FILES = ("leaders.tsv", "leaders.xlsx")
UNIT_PREFIX = "本单位"  # a unit's entries say so in their rule: "本单位规范表述清单：…"

_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_ALLOW = object()  # the automaton's marker for an allow-listed term


@dataclass(frozen=True, slots=True)
class Entry:
    """One term of a list: what to flag, the correct form ("" if none), how bad, its rule text."""

    kind: str
    term: str
    suggestion: str
    severity: str
    rule: str


class LexiconError(ValueError):
    """A list file that cannot be used; ``message`` names the file, the line and the reason."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        where = f"{source} 第 {line} 行" if line else source
        self.message = f"配置错误：{where}：{reason}"
        super().__init__(self.message)


def _lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines that are neither blank nor comments (#)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LexiconError(str(path), f"无法读取（{exc.strerror or exc}）") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LexiconError(str(path), "不是 UTF-8 编码的文本，请另存为 UTF-8") from exc
    numbered = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            numbered.append((number, line))
    return numbered


def read_list(path: Path, spec: ListSpec, *, label: str | None = None) -> list[Entry]:
    """Entries of one TSV list: term<TAB>suggestion<TAB>severity<TAB>source; only the term is
    required, severity defaults to warn. Raises LexiconError on the first malformed line."""
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, line in _lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) > 4:
            reason = f"列数过多（{len(fields)} 列），应为：错误写法、正确写法、级别、来源"
            raise LexiconError(str(path), reason, number)
        term, suggestion, severity, note = (*(f.strip() for f in fields), "", "", "")[:4]
        if not term:
            raise LexiconError(str(path), "第一列（错误写法）为空", number)
        if any(ch.isspace() for ch in term):
            reason = f"词条“{term}”含空格：各列之间须用制表符（Tab）分隔"
            raise LexiconError(str(path), reason, number)
        if len(term) < 2:
            raise LexiconError(str(path), f"词条“{term}”过短：至少 2 个字，否则误报太多", number)
        if severity and severity not in SEVERITIES:
            reason = f"级别“{severity}”无效，应为 severe、warn 或 info"
            raise LexiconError(str(path), reason, number)
        if suggestion == term:
            raise LexiconError(str(path), f"正确写法与错误写法相同（“{term}”）", number)
        if term in seen:
            raise LexiconError(str(path), f"词条“{term}”与第 {seen[term]} 行重复", number)
        seen[term] = number
        head = label or spec.label
        rule = f"{head}：{note}" if note else head
        entries.append(Entry(spec.kind, term, suggestion, severity or "warn", rule))
    return entries


def read_allow(path: Path) -> list[str]:
    """Allow-listed terms, one a line; a finding lying inside one is dropped."""
    terms = []
    for number, line in _lines(path):
        term = line.strip()
        if "\t" in term:
            raise LexiconError(str(path), "每行只写一个词条，不能含制表符", number)
        if len(term) < 2:
            raise LexiconError(str(path), f"词条“{term}”过短：至少 2 个字", number)
        terms.append(term)
    return terms


def read_domains(path: Path) -> list[str]:
    """Allowed link domains, one a line ("example.gov.cn"; a leading "*." or "." is ignored)."""
    domains = []
    for number, line in _lines(path):
        domain = line.strip().lower().removeprefix("*.").removeprefix(".")
        if not _DOMAIN.fullmatch(domain):
            reason = f"“{line.strip()}”不是有效的域名（例：zhanjiang.gov.cn）"
            raise LexiconError(str(path), reason, number)
        domains.append(domain)
    return domains


def _automaton(entries: Iterable[Entry], allowed: frozenset[str]) -> ahocorasick.Automaton | None:
    """One automaton over the entries' terms and the allowed terms (None when there are none)."""
    by_term: dict[str, list[Any]] = {}
    for entry in entries:
        by_term.setdefault(entry.term, []).append(entry)
    for term in allowed:
        by_term.setdefault(term, []).append(_ALLOW)
    if not by_term:
        return None
    automaton = ahocorasick.Automaton()
    for term, values in by_term.items():
        automaton.add_word(term, (len(term), tuple(values)))
    automaton.make_automaton()
    return automaton


def read_leaders(directory: Path) -> LeaderTable | None:
    """The unit's 领导人姓名职务表 from leaders.tsv and/or leaders.xlsx (姓名, 职务 separated by
    、, 排序号); None when it has neither. A name in both files is a duplicate."""
    rows: list[leader_table.Row] = []
    found = False
    try:
        for name in LEADERS_FILES:
            path = directory / name
            if not path.exists():
                continue
            found = True
            if path.suffix == ".xlsx":
                rows += leader_table.xlsx_rows(path)
            else:
                rows += leader_table.tsv_rows(str(path), _lines(path))
        return leader_table.build(rows) if found else None
    except TableError as exc:
        raise LexiconError(exc.source, exc.reason, exc.line) from exc


class Lexicon:
    """Every term to look for, in one Aho-Corasick automaton, plus the allowed link domains.

    Build it once (``Lexicon.load()``, or ``default_lexicon()`` for the shipped lists) and reuse it:
    building costs milliseconds, a check with it costs a pass over the text.
    """

    def __init__(
        self,
        entries: Iterable[Entry] = (),
        *,
        allow: Iterable[str] = (),
        domains: Iterable[str] = (),
        leaders: LeaderTable | None = None,
    ) -> None:
        by_term: dict[str, dict[str, Entry]] = {}
        for entry in entries:  # a later entry of the same kind and term replaces an earlier one
            by_term.setdefault(entry.term, {})[entry.kind] = entry
        self.entries = tuple(e for kinds in by_term.values() for e in kinds.values())
        self.allow: frozenset[str] = frozenset(allow)
        self.domains: tuple[str, ...] = tuple(dict.fromkeys(d.lower() for d in domains))
        self.leaders: LeaderTable | None = leaders if leaders else None  # an empty table is none
        self._automaton = _automaton(self.entries, self.allow)

    def with_allowed(self, terms: Iterable[str]) -> Lexicon:
        """This lexicon with more allow-listed terms (a unit's learned 误报), or itself if none is new."""
        extra = frozenset(terms) - self.allow
        if not extra:
            return self
        clone = copy.copy(self)
        clone.allow = self.allow | extra
        clone._automaton = _automaton(self.entries, clone.allow)
        return clone

    @classmethod
    def load(cls, unit_dir: str | Path | None = None) -> Lexicon:
        """The shipped lists plus, when given, a unit's directory holding any of wording.tsv,
        ads.tsv (same format, added to or replacing shipped terms), allow.txt, domains.txt and
        the leaders' table (leaders.tsv and/or leaders.xlsx)."""
        shipped = resources.files("bot.proofread") / "lists"
        entries: list[Entry] = []
        for spec in LISTS:
            with resources.as_file(shipped / spec.file) as path:
                entries += read_list(path, spec)
        with resources.as_file(shipped / DOMAINS_FILE) as path:
            domains = read_domains(path)
        with resources.as_file(shipped / ALLOW_FILE) as path:
            allow = read_allow(path)
        leaders = None
        if unit_dir is not None:
            directory = Path(unit_dir)
            if not directory.is_dir():
                raise LexiconError(str(directory), "目录不存在")
            for spec in LISTS:
                if (directory / spec.file).exists():
                    label = UNIT_PREFIX + spec.label
                    entries += read_list(directory / spec.file, spec, label=label)
            if (directory / ALLOW_FILE).exists():
                allow += read_allow(directory / ALLOW_FILE)
            if (directory / DOMAINS_FILE).exists():
                domains += read_domains(directory / DOMAINS_FILE)
            leaders = read_leaders(directory)
        return cls(entries, allow=allow, domains=domains, leaders=leaders)

    def scan(self, text: str) -> tuple[list[tuple[int, int, Entry]], list[tuple[int, int]]]:
        """One pass over `text`: every (start, end, entry) matched, and the allow-listed spans."""
        hits: list[tuple[int, int, Entry]] = []
        allowed: list[tuple[int, int]] = []
        if self._automaton is None or not text:
            return hits, allowed
        for last, (length, values) in self._automaton.iter(text):
            start, end = last - length + 1, last + 1
            for value in values:
                if value is _ALLOW:
                    allowed.append((start, end))
                else:
                    hits.append((start, end, value))
        return hits, allowed

    def allows_host(self, host: str) -> bool:
        """Whether a link to `host` is fine: it is an allowed domain or lies under one."""
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def memory_bytes(self) -> int:
        """The automaton's own size as pyahocorasick reports it (0 when there are no terms)."""
        return int(self._automaton.get_stats()["total_size"]) if self._automaton is not None else 0


@functools.cache
def default_lexicon() -> Lexicon:
    """The shipped lists, built on first use and shared afterwards."""
    return Lexicon.load()

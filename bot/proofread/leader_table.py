"""领导人姓名职务表: a unit's leaders (name, current titles, order) read, checked and indexed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import ahocorasick

HEADER = ("姓名", "职务", "排序号")
# Titles recognised next to a known name besides those in the unit's table: a leader called by
# one of these and not holding it is flagged. Ad-hoc roles (组长, 河长, 总指挥) are left out: a
# leader holds many that no table lists.
GENERIC_TITLES: tuple[str, ...] = (
    "书记",
    "副书记",
    "常委",
    "委员",
    "秘书长",
    "副秘书长",
    "省长",
    "副省长",
    "市长",
    "副市长",
    "常务副市长",
    "州长",
    "副州长",
    "县长",
    "副县长",
    "常务副县长",
    "区长",
    "副区长",
    "常务副区长",
    "镇长",
    "副镇长",
    "乡长",
    "副乡长",
    "主任",
    "副主任",
    "主席",
    "副主席",
    "部长",
    "副部长",
    "厅长",
    "副厅长",
    "局长",
    "副局长",
    "处长",
    "副处长",
    "科长",
    "副科长",
    "院长",
    "副院长",
    "检察长",
    "副检察长",
)
# A title that differs from a held one by these in front is another office: 副市长 is not 市长,
# 代市长 (acting) is not 市长.
_NOT_THE_SAME = ("副", "代")
_NAME = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff·•・]*[\u4e00-\u9fff]")
_TITLE_SPLIT = re.compile(r"[、，,；;]")
_ORDER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class TableError(ValueError):
    """A row of the table that cannot be used: its file, its line (row) and the reason."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source, self.reason, self.line = source, reason, line
        super().__init__(f"{source} {line}: {reason}")


@dataclass(frozen=True, slots=True)
class Leader:
    """One leader: the name, the titles held now (in the table's order), the precedence rank
    (smaller comes first; None: not ranked) and where the table says so."""

    name: str
    titles: tuple[str, ...]
    order: Decimal | None
    source: str = ""
    line: int = 0

    def holds(self, title: str) -> bool:
        """Whether `title` as written names one of this leader's offices: the same title, or one
        that is the other's tail after an organ (市委书记 and 书记; not 副市长 and 市长)."""
        return any(_same_office(title, held) for held in self.titles)


def _same_office(written: str, held: str) -> bool:
    if written == held:
        return True
    longer, shorter = (written, held) if len(written) > len(held) else (held, written)
    return longer.endswith(shorter) and not longer[: -len(shorter)].endswith(_NOT_THE_SAME)


@dataclass(frozen=True, slots=True)
class Row:
    """A raw row: its file, its line (row) number and its cells as text."""

    source: str
    line: int
    cells: tuple[str, ...]


def tsv_rows(source: str, lines: Iterable[tuple[int, str]]) -> list[Row]:
    """Rows of leaders.tsv from its numbered non-comment lines; a first line 姓名… is a header."""
    rows = [Row(source, n, tuple(c.strip() for c in line.split("\t"))) for n, line in lines]
    if rows and rows[0].cells[0] == HEADER[0]:
        rows.pop(0)
    return rows


def xlsx_rows(path: Path) -> list[Row]:
    """Rows of leaders.xlsx, first worksheet, below its header row; blank rows are skipped."""
    from openpyxl import load_workbook  # only a unit with an .xlsx table pays for the import

    source = str(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl errors alike: the file is unusable
        reason = "无法读取：不是有效的 .xlsx 文件，请用 Excel 或 WPS 另存为 .xlsx"
        raise TableError(source, reason) from exc
    try:
        rows = []
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            cells = [_cell(v) for v in values]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                rows.append(Row(source, number, tuple(cells)))
        return rows
    finally:
        workbook.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def build(rows: Iterable[Row]) -> LeaderTable:
    """The table from raw rows (姓名, 职务, 排序号); TableError on the first bad one."""
    leaders: list[Leader] = []
    names: dict[str, Row] = {}
    orders: dict[Decimal, Row] = {}
    for row in rows:
        leader = _leader(row)
        if leader.name in names:
            reason = f"姓名“{leader.name}”与{_where(names[leader.name], row)}重复"
            raise TableError(row.source, reason, row.line)
        if leader.order is not None and leader.order in orders:
            first = orders[leader.order]
            reason = f"排序号 {row.cells[2]} 与{_where(first, row)}（{first.cells[0]}）重复"
            raise TableError(row.source, reason, row.line)
        names[leader.name] = row
        if leader.order is not None:
            orders[leader.order] = row
        leaders.append(leader)
    return LeaderTable(leaders)


def _where(first: Row, row: Row) -> str:
    where = f"第 {first.line} 行"
    return where if first.source == row.source else f" {first.source} {where}"


def _leader(row: Row) -> Leader:
    def fail(reason: str) -> TableError:
        return TableError(row.source, reason, row.line)

    if len(row.cells) > 3:
        raise fail(f"列数过多（{len(row.cells)} 列），应为：姓名、职务、排序号")
    name, titles_cell, order_cell = (*row.cells, "", "")[:3]
    if not name:
        raise fail("第一列（姓名）为空")
    if any(ch.isspace() for ch in name):
        raise fail(f"姓名“{name}”含空格：各列之间须用制表符（Tab）分隔")
    if len(name) < 2:
        raise fail(f"姓名“{name}”过短：至少 2 个字")
    if not _NAME.fullmatch(name):
        raise fail(f"姓名“{name}”应为汉字（少数民族姓名可用间隔号“·”）")
    if not titles_cell:
        raise fail("第二列（职务）为空：写现任职务，多个职务用顿号“、”分隔")
    titles: list[str] = []
    for title in (t.strip() for t in _TITLE_SPLIT.split(titles_cell)):
        if not title:
            raise fail(f"职务“{titles_cell}”有空项：职务之间只用一个顿号“、”")
        if any(ch.isspace() for ch in title):
            raise fail(f"职务“{title}”含空格：多个职务用顿号“、”分隔")
        if len(title) < 2:
            raise fail(f"职务“{title}”过短：至少 2 个字")
        if title in titles:
            raise fail(f"职务“{title}”重复")
        titles.append(title)
    order: Decimal | None = None
    if order_cell:
        if not _ORDER.fullmatch(order_cell):
            raise fail(f"排序号“{order_cell}”不是数字：写 1、2、3…，数字小的排在前面")
        try:
            order = Decimal(order_cell)
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
            raise fail(f"排序号“{order_cell}”不是数字") from exc
    return Leader(name, tuple(titles), order, row.source, row.line)


class LeaderTable:
    """The leaders and, built once, one automaton over their names and every title word, plus
    an index of each name with one character blanked out (for names off by one character)."""

    def __init__(self, leaders: Sequence[Leader]) -> None:
        self.leaders: tuple[Leader, ...] = tuple(leaders)
        self.by_name: dict[str, Leader] = {leader.name: leader for leader in self.leaders}
        self.titles: frozenset[str] = frozenset(
            {*GENERIC_TITLES, *(t for leader in self.leaders for t in leader.titles)}
        )
        lengths = {len(name) for name in self.by_name}
        self.name_lengths: tuple[int, ...] = tuple(sorted(lengths, reverse=True))
        self.blanked: dict[str, list[Leader]] = {}
        for leader in self.leaders:
            for i in range(len(leader.name)):
                key = leader.name[:i] + "?" + leader.name[i + 1 :]
                self.blanked.setdefault(key, []).append(leader)
        self.automaton: ahocorasick.Automaton | None = None
        if self.leaders:
            automaton = ahocorasick.Automaton()
            for word in {*self.by_name, *self.titles}:
                automaton.add_word(word, (len(word), word in self.by_name, word in self.titles))
            automaton.make_automaton()
            self.automaton = automaton

    def __len__(self) -> int:
        return len(self.leaders)

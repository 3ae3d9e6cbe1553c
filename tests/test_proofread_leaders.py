"""智能识错 kind 3 (leader): the unit's 领导人姓名职务表 (leaders.tsv / leaders.xlsx), titles not
held, names one character off, leaders listed out of order, and the table's errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli.main import main
from bot.proofread import Finding, Lexicon, LexiconError, check, leaders
from bot.proofread.leaders import RULE_ORDER
from tests.test_proofread import write

TABLE = """# 本单位领导人姓名职务表：姓名<TAB>职务（多个用、分隔）<TAB>排序号
姓名\t职务\t排序号
张建国\t市委书记\t1
李明华\t市委副书记、市长\t2
王秀英\t市人大常委会主任\t3
赵德胜\t市政协主席\t4
钱丰\t市委常委、常务副市长\t5
孙立新\t副市长\t6
周敏\t副市长\t7
"""
ZHANG = "领导人姓名职务表：张建国 现任 市委书记"
LI = "领导人姓名职务表：李明华 现任 市委副书记、市长"
WANG = "领导人姓名职务表：王秀英 现任 市人大常委会主任"
QIAN = "领导人姓名职务表：钱丰 现任 市委常委、常务副市长"
SUN = "领导人姓名职务表：孙立新 现任 副市长"
ZHOU = "领导人姓名职务表：周敏 现任 副市长"


def F(text: str, start: int, end: int, severity: str, suggestion: str, rule: str) -> Finding:
    """The expected leader finding; its text is read from `text`, so a wrong offset shows."""
    return Finding(start, end, "leader", severity, text[start:end], suggestion, rule)


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory: pytest.TempPathFactory) -> Lexicon:
    directory = tmp_path_factory.mktemp("lists")
    write(directory, "leaders.tsv", TABLE)
    return Lexicon.load(directory)


@pytest.fixture
def no_pinyin(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if no character sounded like another (the rules that do not rely on sound)."""
    monkeypatch.setattr(leaders, "_sounds", lambda: None)


def found(text: str, lexicon: Lexicon) -> list[Finding]:
    return [f for f in check(text, lexicon=lexicon) if f.kind == "leader"]


# -- the table ---------------------------------------------------------------------------------


def test_table_is_read_with_titles_and_order(lexicon: Lexicon) -> None:
    table = lexicon.leaders
    assert table is not None and len(table) == 7
    li = table.by_name["李明华"]
    assert (li.titles, str(li.order)) == (("市委副书记", "市长"), "2")
    assert li.holds("市长") and li.holds("副书记") and li.holds("市委副书记")
    assert not li.holds("书记") and not li.holds("副市长") and not li.holds("市委书记")
    qian = table.by_name["钱丰"]
    assert qian.holds("副市长") and qian.holds("常委") and not qian.holds("市长")


def test_no_table_no_leader_findings(tmp_path: Path) -> None:
    text = "市长张建国出席会议，出席的有孙立新、李明华、张建国。"
    assert Lexicon.load().leaders is None and Lexicon.load(tmp_path).leaders is None
    assert check(text) == [] and check(text, lexicon=Lexicon.load(tmp_path)) == []
    write(tmp_path, "leaders.tsv", "姓名\t职务\t排序号\n# 尚未填写\n")
    assert Lexicon.load(tmp_path).leaders is None  # a header alone is no table


# -- titles not held ---------------------------------------------------------------------------


def test_title_before_the_name(lexicon: Lexicon) -> None:
    text = "市长张建国出席会议，副市长李明华主持。"
    assert found(text, lexicon) == [
        F(text, 0, 2, "severe", "市委书记", ZHANG),
        F(text, 10, 13, "severe", "市委副书记、市长", LI),
    ]


def test_title_after_the_name_with_tongzhi_and_brackets(lexicon: Lexicon) -> None:
    text = "张建国市长指出，孙立新同志（市长）强调，王秀英主任讲话。"
    assert found(text, lexicon) == [
        F(text, 3, 5, "severe", "市委书记", ZHANG),
        F(text, 14, 16, "severe", "副市长", SUN),
    ]


def test_a_deputy_is_not_the_office_and_the_office_is_not_the_deputy(lexicon: Lexicon) -> None:
    text = "李明华书记、钱丰市长，孙立新副市长。"
    assert found(text, lexicon) == [
        F(text, 3, 5, "severe", "市委副书记、市长", LI),  # 市委副书记 is not 书记
        F(text, 8, 10, "severe", "市委常委、常务副市长", QIAN),  # 常务副市长 is not 市长
    ]


def test_titles_in_a_list_belong_to_the_right_person(lexicon: Lexicon) -> None:
    text = "市长张建国、副市长李明华，市委常委、市长孙立新出席。"
    assert found(text, lexicon) == [
        F(text, 0, 2, "severe", "市委书记", ZHANG),
        F(text, 6, 9, "severe", "市委副书记、市长", LI),
        F(text, 13, 17, "severe", "副市长", SUN),
        F(text, 18, 20, "severe", "副市长", SUN),
    ]
    text = "张建国书记、市长李明华出席。"  # 书记 after 张建国, 市长 before 李明华: both right
    assert found(text, lexicon) == []
    text = "张建国市长李明华出席。"  # a title between two names belongs to neither
    assert found(text, lexicon) == []
    text = "陈大明书记、市长李明华。张建国书记、副市长陈小明。会议由市委副书记、市长张建国主持。"
    assert found(text, lexicon) == [  # 书记 is 陈大明's, 副市长 陈小明's; 市长 after 由 is 张建国's
        F(text, 28, 33, "severe", "市委书记", ZHANG),
        F(text, 34, 36, "severe", "市委书记", ZHANG),
    ]


def test_former_titles_are_not_checked(lexicon: Lexicon) -> None:
    text = "时任市长张建国，原副市长李明华，时任湛江市市长王秀英。"
    assert found(text, lexicon) == []


def test_a_correct_text_with_several_leaders_has_no_finding(lexicon: Lexicon) -> None:
    text = (
        "4月12日，市委书记张建国主持召开市委常委会会议。市委副书记、市长李明华，"
        "市人大常委会主任王秀英，市政协主席赵德胜出席会议。会上，张建国书记强调，要压实责任；"
        "李明华市长就做好政务公开工作提出要求。市委常委、常务副市长钱丰，副市长孙立新、周敏同志参加。"
        "出席会议的有张建国、李明华、王秀英、赵德胜、钱丰和孙立新等同志。"
    )
    assert check(text, lexicon=lexicon) == []


@pytest.mark.parametrize(
    "text",
    [
        "城市长远发展规划，县区长期坚持，委员会主任科员，拨打市长热线或写信到局长信箱。",
        "市委书记处理来信，市委常委会议，政协主席团会议，市长助理列席，正处长级干部。",
        "市长张建设项目推进会，副市长孙立军主持，局长李明出席，书记王秀云讲话。",
        "张建国际合作，李明华东路，周敏捷的反应，钱丰收的年景，孙立新闻发布会。",
        "市长周民主持。",  # 周民 is one off 周敏, but 市长 is not 周敏's office
    ],
)
def test_ordinary_words_and_other_people_are_never_flagged(lexicon: Lexicon, text: str) -> None:
    assert found(text, lexicon) == []


# -- names one character off -------------------------------------------------------------------


def test_name_one_character_off_before_punctuation(lexicon: Lexicon, no_pinyin: None) -> None:
    text = "市委书记张建民，市委副书记、市长李明划同志，王秀瑛主任。会见王秀瑛主任。孙立心同志（副市长）"
    assert found(text, lexicon) == [
        F(text, 4, 7, "severe", "张建国", ZHANG),
        F(text, 16, 19, "severe", "李明华", LI),
        F(text, 22, 25, "severe", "王秀英", WANG),
        F(text, 36, 39, "severe", "孙立新", SUN),
    ]  # after 会见 nothing sets 王秀瑛 off: without sound it is left alone


def test_two_character_name_next_to_its_own_title(lexicon: Lexicon, no_pinyin: None) -> None:
    text = "副市长周民。常务副市长钱风，市长周民，副市长周民主持。"
    assert found(text, lexicon) == [
        F(text, 3, 5, "severe", "周敏", ZHOU),
        F(text, 11, 13, "severe", "钱丰", QIAN),
    ]


def test_same_sound_names(lexicon: Lexicon) -> None:
    text = "会见王秀瑛主任，市委书记张建果主持会议，副市长周民主持，副市长孙立军主持。"
    assert found(text, lexicon) == [
        F(text, 2, 5, "severe", "王秀英", WANG),
        F(text, 12, 15, "severe", "张建国", ZHANG),
        F(text, 23, 25, "severe", "周敏", ZHOU),
    ]  # 孙立军 does not sound like 孙立新: another person, not flagged


def test_a_misspelt_name_is_not_also_a_wrong_title(lexicon: Lexicon, no_pinyin: None) -> None:
    text = "市长张建民，"
    assert found(text, lexicon) == [
        F(text, 0, 2, "severe", "市委书记", ZHANG),  # read as 张建国, who is not 市长
        F(text, 2, 5, "severe", "张建国", ZHANG),
    ]


# -- order of precedence -----------------------------------------------------------------------


def test_leaders_listed_out_of_order(lexicon: Lexicon) -> None:
    text = "出席会议的有孙立新、李明华和张建国。"
    assert found(text, lexicon) == [F(text, 6, 17, "warn", "张建国、李明华、孙立新", RULE_ORDER)]
    text = "市长李明华，市委书记张建国，副市长孙立新出席。"
    assert found(text, lexicon) == [F(text, 2, 20, "warn", "张建国、李明华、孙立新", RULE_ORDER)]
    text = "孙立新、陈大明、张建国出席。"  # a name not in the table inside the list
    assert found(text, lexicon) == [F(text, 0, 11, "warn", "张建国、孙立新", RULE_ORDER)]
    text = "周敏同志、钱丰同志出席。"
    assert found(text, lexicon) == [F(text, 0, 7, "warn", "钱丰、周敏", RULE_ORDER)]


@pytest.mark.parametrize(
    "text",
    [
        "出席会议的有张建国、李明华和孙立新。",
        "市委书记张建国，市委副书记、市长李明华，副市长孙立新出席。",
        "孙立新主持会议。张建国出席。",  # two sentences
        "孙立新主持会议，张建国讲话。",  # two clauses, not a list
        "周敏、钱丰出席。",  # two-character names alone: maybe words, not read as a list
    ],
)
def test_leaders_in_order_or_not_a_list(lexicon: Lexicon, text: str) -> None:
    assert found(text, lexicon) == []


def test_order_gives_way_to_a_wrong_title_inside_the_list(lexicon: Lexicon) -> None:
    text = "李明华书记、市长张建国出席。"
    assert found(text, lexicon) == [
        F(text, 3, 5, "severe", "市委副书记、市长", LI),
        F(text, 6, 8, "severe", "市委书记", ZHANG),
    ]


def test_allow_list_suppresses_a_leader_finding(tmp_path: Path) -> None:
    write(tmp_path, "leaders.tsv", TABLE)
    text = "时值换届，副市长李明华。"
    assert [f.text for f in check(text, lexicon=Lexicon.load(tmp_path))] == ["副市长"]
    write(tmp_path, "allow.txt", "副市长李明华\n")
    assert check(text, lexicon=Lexicon.load(tmp_path)) == []


# -- the table's errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("姓名\t职务\t排序号\n\t市长\t1\n", 2, "第一列（姓名）为空"),
        ("张\t市长\t1\n", 1, "姓名“张”过短：至少 2 个字"),
        ("张三\t市长\t1\n李四\t副市长\t2\n张三\t书记\t3\n", 3, "姓名“张三”与第 1 行重复"),
        ("张三\t市长\t一\n", 1, "排序号“一”不是数字：写 1、2、3…，数字小的排在前面"),
        ("张三\t市长\t1\n李四\t副市长\t1\n", 2, "排序号 1 与第 1 行（张三）重复"),
        ("张三\t\t1\n", 1, "第二列（职务）为空：写现任职务，多个职务用顿号“、”分隔"),
        ("张三\t市长、长\t1\n", 1, "职务“长”过短：至少 2 个字"),
        ("张三\t市长、市长\t1\n", 1, "职务“市长”重复"),
        ("张三\t市长、、书记\t1\n", 1, "职务“市长、、书记”有空项：职务之间只用一个顿号“、”"),
        ("张 三\t市长\t1\n", 1, "姓名“张 三”含空格：各列之间须用制表符（Tab）分隔"),
        ("Zhang San\t市长\t1\n", 1, "姓名“Zhang San”含空格：各列之间须用制表符（Tab）分隔"),
        ("ZhangSan\t市长\t1\n", 1, "姓名“ZhangSan”应为汉字（少数民族姓名可用间隔号“·”）"),
        ("张三\t市长\t1\t备注\n", 1, "列数过多（4 列），应为：姓名、职务、排序号"),
    ],
)
def test_malformed_table_names_file_line_and_reason(
    tmp_path: Path, content: str, line: int, reason: str
) -> None:
    path = write(tmp_path, "leaders.tsv", content)
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert caught.value.message == f"配置错误：{path} 第 {line} 行：{reason}"


def test_table_allows_minority_names_decimals_and_no_order(tmp_path: Path) -> None:
    write(tmp_path, "leaders.tsv", "买买提·艾力\t副市长\t2.5\n李四\t市长，市委副书记\t\n")
    table = Lexicon.load(tmp_path).leaders
    assert table is not None
    assert [(x.name, x.titles, x.order) for x in table.leaders] == [
        ("买买提·艾力", ("副市长",), table.by_name["买买提·艾力"].order),
        ("李四", ("市长", "市委副书记"), None),
    ]
    assert str(table.by_name["买买提·艾力"].order) == "2.5"


def test_table_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "leaders.tsv", "张三\t市长\t1\n".encode("gbk"))
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert caught.value.message == f"配置错误：{path}：不是 UTF-8 编码的文本，请另存为 UTF-8"


# -- the .xlsx table ---------------------------------------------------------------------------


def xlsx(path: Path, rows: list[tuple[object, ...]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def test_xlsx_table_is_read(tmp_path: Path) -> None:
    xlsx(
        tmp_path / "leaders.xlsx",
        [
            ("姓名", "职务", "排序号"),
            ("张建国", "市委书记", 1),
            (None, None, None),  # a blank row is skipped
            ("李明华", "市委副书记、市长", 2.0),
            ("孙立新", "副市长", "3", None),  # an empty cell after the three columns is fine
        ],
    )
    lexicon = Lexicon.load(tmp_path)
    text = "市长张建国出席，出席的有孙立新、李明华。"
    assert found(text, lexicon) == [
        F(text, 0, 2, "severe", "市委书记", ZHANG),
        F(text, 12, 19, "warn", "李明华、孙立新", RULE_ORDER),
    ]


def test_xlsx_errors_name_the_row(tmp_path: Path) -> None:
    rows = [("姓名", "职务", "排序号"), ("张三", "市长", 1), ("李四", "副市长", "第二")]
    path = xlsx(tmp_path / "leaders.xlsx", rows)
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    reason = "排序号“第二”不是数字：写 1、2、3…，数字小的排在前面"
    assert caught.value.message == f"配置错误：{path} 第 3 行：{reason}"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    reason = "无法读取：不是有效的 .xlsx 文件，请用 Excel 或 WPS 另存为 .xlsx"
    assert caught.value.message == f"配置错误：{path}：{reason}"


def test_tsv_and_xlsx_together_share_one_table(tmp_path: Path) -> None:
    tsv = write(tmp_path, "leaders.tsv", "张三\t市长\t1\n")
    path = xlsx(tmp_path / "leaders.xlsx", [("姓名", "职务", "排序号"), ("李四", "副市长", 2)])
    table = Lexicon.load(tmp_path).leaders
    assert table is not None and sorted(table.by_name) == ["张三", "李四"]
    xlsx(path, [("姓名", "职务", "排序号"), ("李四", "副市长", 2), ("张三", "书记", 3)])
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert caught.value.message == f"配置错误：{path} 第 3 行：姓名“张三”与 {tsv} 第 1 行重复"


# -- the command line --------------------------------------------------------------------------


def test_cli_prints_a_leader_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "leaders.tsv", TABLE)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("市长张建国出席。".encode())))
    code = main(["proofread", "-", "--lexicon", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "start": 0,
            "end": 2,
            "kind": "leader",
            "severity": "severe",
            "text": "市长",
            "suggestion": "市委书记",
            "rule": ZHANG,
        },
    ]


def test_cli_bad_table_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "leaders.tsv", "张三\t市长\tfirst\n")
    draft = write(tmp_path, "draft.txt", "市长张三。")
    assert main(["proofread", str(draft), "--lexicon", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    reason = "排序号“first”不是数字：写 1、2、3…，数字小的排在前面"
    assert (out, err) == ("", f"配置错误：{bad} 第 1 行：{reason}\n")

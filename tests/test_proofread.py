"""智能识错 (bot.proofread) and `sanshen proofread`: the exact findings of each kind, clean
official prose with none, a unit's lists and allow-list, config errors and the CLI contract."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from docx import Document

from bot.cli.main import main
from bot.proofread import Finding, Lexicon, LexiconError, check
from bot.proofread.formatting import (
    RULE_DATE,
    RULE_HALF_WIDTH,
    RULE_ORDINAL,
    RULE_REPEATED,
    RULE_UNPAIRED,
    chinese_number,
)
from bot.proofread.lexicon import default_lexicon
from bot.proofread.links import RULE_LINK
from bot.proofread.privacy import RULE_ADDRESS, RULE_CARD, RULE_EMAIL, RULE_ID, RULE_MOBILE
from bot.proofread.wording import RULE_COUNTRIES

# 钦政办〔2023〕39号 in full, as published (a government normative document: not subject to
# copyright, 著作权法 第五条). bench/bench_proofread.py builds its text from it too.
QINZHOU = Path(__file__).parent / "texts" / "qinzhou-2023-website-newmedia-rules.txt"

# Paragraphs of the Zhanjiang 2021 draft rules, verbatim.
ZHANJIANG_PARAGRAPHS = (
    "（联系人：卢海桃，联系电话：0759-3181387）",
    (
        "第一条 为进一步规范全市政府网站和政务新媒体管理，促进政府网站和政务新媒体健康有"
        "序发展，根据《中华人民共和国网络安全法》《中华人民共和国政府信息公开条例》和《广"
        "东省人民政府办公厅转发国务院办公厅关于印发政府网站发展指引的通知》（粤府办〔20"
        "17〕51号）、《广东省人民政府办公厅关于印发广东省推进政务新媒体健康有序发展实"
        "施意见的通知》（粤办函〔2019〕90号）等法律法规及政策文件精神，结合我市实际"
        "，制定本制度。"
    ),
    (
        "第七条 信息采集。政府网站和政务新媒体信息内容管理人员采集信息时，应审核其真实性"
        "、完整性、可靠性、准确性和安全性，确保来自合法、正规渠道，不得刊登、转发商业广告"
        "或链接商业广告页面，不得发布涉密、敏感信息。"
    ),
    (
        "第十二条 建立值班值守制度。政府网站和政务新媒体开设单位要确保 24 小时应急响"
        "应，及时处理突发事件，发现重大舆情要按规定按程序及时转送、上报相关部门。加强日常"
        "监测，通过机器扫描、人工检查等方法，对政府网站和政务新媒体的整体运行情况、链接可"
        "用情况、栏目更新情况、信息内容质量等进行日常巡检，每日浏览网站和新媒体内容，认真"
        "审看新发布的稿件信息，及时发现问题、纠正错漏并做好记录。"
    ),
    (
        "第十五条 建立应急处置制度。规范政府网站和政务新媒体信息内容突发事件处置流程、方"
        "式、时限、口径等。发生信息内容安全事件，应及时向单位主要负责人和上级主管部门报告"
        "，同时上报宣传、网信、公安等相关部门予以处置，妥善做好内容纠错、整改、删除、舆情"
        "应对等工作，消除事件影响。"
    ),
    (
        "第十七条 对违反《中华人民共和国保守国家秘密法》《中华人民共和国政府信息公开条例"
        "》等法律法规规章，未建立政府信息公开保密审查机制的，要暂停信息发布。对在政府网站"
        "上发布涉密文件资料、转载不良或有害信息、损害公众权益的，要及时采取补救措施，并依"
        "法严肃追究有关人员的责任。"
    ),
    "（一）涉密信息不得上网发布。上网信息应严格履行审核程序，未经审核不得发布。",
)

LIST_WORDING = "规范表述清单："
LIST_ADS = "广告用语清单："
TAIWAN_LEADER = LIST_WORDING + "新华社禁用词 涉台，不称“总统”，称“台湾地区领导人”"
TAIWAN_ELECTION = LIST_WORDING + "新华社禁用词 涉台，称“台湾地区领导人选举”"
TAIWAN_AUTHORITIES = LIST_WORDING + "新华社禁用词 涉台，不称“台湾政府”，称“台湾当局”或“台湾方面”"
HK_GOVERNMENT = LIST_WORDING + "涉港澳表述，称“香港特别行政区政府”或“香港特区政府”"
AS_OF = LIST_WORDING + "“截至”后接时间，表示到某时为止；“截止”不带时间宾语"
ENUMERATION_COMMA = LIST_WORDING + "公文规范，并列的机关名称之间用顿号"
PLAN_QUOTES = LIST_WORDING + "规划名称中的“十四五”加引号"
AD_SELLING = LIST_ADS + "湛江 第七条，不得刊登、转发商业广告"
AD_CLAIM = LIST_ADS + "《广告法》第九条，不得使用“国家级”“最佳”等绝对化用语"


def F(text: str, start: int, end: int, kind: str, severity: str, suggestion: str, rule: str) -> Finding:
    """The expected finding; its text is read from `text`, so a wrong offset shows as wrong text."""
    return Finding(start, end, kind, severity, text[start:end], suggestion, rule)


# -- 2. wording --------------------------------------------------------------------------------


def test_wording_taiwan_and_hong_kong_terms_get_the_correct_form() -> None:
    text = "据报道，台湾总统府和台湾政府发言人称，香港政府将于近日公布台湾总统大选结果。"
    assert check(text) == [
        F(text, 4, 8, "wording", "severe", "台湾地区领导人", TAIWAN_LEADER),
        F(text, 10, 14, "wording", "severe", "台湾当局", TAIWAN_AUTHORITIES),
        F(text, 19, 23, "wording", "warn", "香港特区政府", HK_GOVERNMENT),
        # the longest term from one start wins: not also 台湾总统 inside it
        F(text, 29, 35, "wording", "severe", "台湾地区领导人选举", TAIWAN_ELECTION),
    ]
    assert [f.text for f in check(text)] == ["台湾总统", "台湾政府", "香港政府", "台湾总统大选"]


def test_wording_official_document_misphrasings() -> None:
    text = "截止目前，各地认真落实党中央国务院决策部署，推进十四五规划实施。"
    assert check(text) == [
        F(text, 0, 4, "wording", "warn", "截至目前", AS_OF),
        F(text, 11, 17, "wording", "warn", "党中央、国务院", ENUMERATION_COMMA),
        F(text, 24, 29, "wording", "info", "“十四五”规划", PLAN_QUOTES),
    ]


def test_wording_regions_listed_among_countries() -> None:
    text = "我市与美国、香港、日本等国家开展合作，与台湾、新加坡等国，并与香港等国家和地区交流。"
    assert check(text) == [
        F(text, 11, 14, "wording", "severe", "等国家和地区", RULE_COUNTRIES),
        F(text, 26, 28, "wording", "severe", "等国家和地区", RULE_COUNTRIES),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "党的十八大以来，各级党委政府坚持以人民为中心，十八大以来取得历史性成就。",
        "香港特别行政区政府、澳门特区政府、台湾地区领导人、台湾当局，内地与香港、澳门的交流。",
        "截至目前，推动“十四五”规划实施，共建“一带一路”倡议，党中央、国务院高度重视。",
        "香港等国际金融中心，香港、新加坡等国家和地区，台湾同胞等各界人士。",
        "国家级非物质文化遗产，评选最佳实践案例，把握最佳时机，实行经评审的最低投标价法。",
        "1912年1月1日中华民国临时政府成立，中华民国时期的档案；从弱智能走向强智能。",
    ],
)
def test_wording_correct_usage_is_not_flagged(text: str) -> None:
    assert check(text) == []


# -- 4. privacy --------------------------------------------------------------------------------


def test_privacy_id_mobile_and_address_are_found_with_a_masked_hint() -> None:
    text = (
        "申请人张某，身份证号440802199003071234，手机13812345678，备用138-0000-1234，"
        "家住湛江市赤坎区南桥路12号3栋201室。"
    )
    assert check(text) == [
        F(text, 10, 28, "privacy", "severe", "440802********1234", RULE_ID),
        F(text, 31, 42, "privacy", "severe", "138****5678", RULE_MOBILE),
        F(text, 45, 58, "privacy", "severe", "138****1234", RULE_MOBILE),
        F(text, 61, 79, "privacy", "warn", "", RULE_ADDRESS),
    ]
    assert check(text)[3].text == "湛江市赤坎区南桥路12号3栋201室"


def test_privacy_bank_cards_and_personal_mail() -> None:
    text = "请转账至6222021234567890128或6225 8801 2345 6783，联系邮箱zhang.san@qq.com。"
    assert check(text) == [
        F(text, 4, 23, "privacy", "severe", "6222***********0128", RULE_CARD),
        F(text, 24, 43, "privacy", "severe", "6225********6783", RULE_CARD),
        F(text, 48, 64, "privacy", "warn", "z***@qq.com", RULE_EMAIL),
    ]


def test_privacy_id_with_x_check_digit() -> None:
    text = "身份证：11010519491231002X。"
    assert check(text) == [F(text, 4, 22, "privacy", "severe", "110105********002X", RULE_ID)]


@pytest.mark.parametrize(
    "text",
    [
        "身份证号440802199003071235（校验码不符）",
        "身份证号440802199002301237（2月30日不存在，校验码相符）",
        "编号2440802199003071234和44080219900307123456（更长的数字串）",
        "编号013812345678、138123456789和3.13812345678都不是手机号",
        "项目总投资15000000000元，13800000000人次",
        "咨询电话：0759-3181387、12345；传真：0759-3181388。",
        "钦政办〔2023〕39号、粤府办〔2017〕51号，20231212，2023年12月12日。",
        "统一社会信用代码914408003149876504（通过卢恩校验，但它是信用代码）",
        "订单号6222021234567890127（卢恩校验不符），序号 2222021234567890128",
        "投诉邮箱：zjszfb@zhanjiang.gov.cn。",
        "在市区中心的人民路5号，位于开发区管委会位于人民大道8号。",
    ],
)
def test_privacy_numbers_that_are_not_personal_data(text: str) -> None:
    assert [f for f in check(text) if f.kind == "privacy"] == []


# -- 5. format ---------------------------------------------------------------------------------


def test_format_half_width_marks_repeats_and_impossible_dates() -> None:
    text = "各单位要加强管理,严格审核(试行)办法。。请于2023年2月29日前报送！！……——"
    assert check(text) == [
        F(text, 8, 9, "format", "info", "，", RULE_HALF_WIDTH),
        F(text, 13, 14, "format", "info", "（", RULE_HALF_WIDTH),
        F(text, 16, 17, "format", "info", "）", RULE_HALF_WIDTH),
        F(text, 19, 21, "format", "warn", "。", RULE_REPEATED),
        F(text, 23, 33, "format", "warn", "", RULE_DATE),
        F(text, 36, 38, "format", "warn", "！", RULE_REPEATED),
    ]


def test_format_dates_that_do_not_exist() -> None:
    text = "2024年2月29日、2月29日、2月30日、2026年13月、2025年4月31日、2025年4月30日、2026年0月"
    assert [f.text for f in check(text)] == ["2月30日", "2026年13月", "2025年4月31日", "2026年0月"]
    assert {f.rule for f in check(text)} == {RULE_DATE}


def test_format_unpaired_brackets_within_a_paragraph() -> None:
    text = "《钦州市政府网站管理办法》要求“先审后发”（见附件\n“三审三校”】\n1）第一项\nChina’s economy"
    assert check(text) == [
        F(text, 21, 22, "format", "warn", "", RULE_UNPAIRED),  # （ never closed in its paragraph
        F(text, 32, 33, "format", "warn", "", RULE_UNPAIRED),  # 】 never opened
    ]


def test_format_unpaired_opener_skipped_by_a_closer() -> None:
    text = "“加强《管理”工作"
    assert check(text) == [F(text, 3, 4, "format", "warn", "", RULE_UNPAIRED)]


def test_format_ordinals_that_skip_or_repeat() -> None:
    text = (
        "一、总则\n（一）目的\n（二）依据\n（四）范围\n二、职责\n（一）主管\n（三）主办\n"
        "1. 市级\n2. 县级\n2. 乡级\n第二条 各级\n（二）无前文\n四、附则"
    )
    assert check(text) == [
        F(text, 17, 20, "format", "warn", "（三）", RULE_ORDINAL),
        F(text, 34, 37, "format", "warn", "（二）", RULE_ORDINAL),
        F(text, 52, 54, "format", "warn", "3.", RULE_ORDINAL),
    ]


def test_format_ordinals_skip_at_the_top_level() -> None:
    text = "一、总则\n二、职责\n四、附则\n五、其他"
    assert check(text) == [F(text, 10, 12, "format", "warn", "三、", RULE_ORDINAL)]


def test_chinese_numbers() -> None:
    assert [chinese_number(n) for n in ("一", "九", "十", "十一", "二十", "二十三", "九十九")] == [
        1,
        9,
        10,
        11,
        20,
        23,
        99,
    ]
    assert chinese_number("一一") is None and chinese_number("十十") is None


# -- 6. links and advertising ------------------------------------------------------------------


def test_links_outside_the_allowed_domains_and_advertising() -> None:
    text = (
        "详见 https://www.example.com/ad?id=1。或访问 www.shop.com、qinzhou.gov.cn、"
        "http://www.gov.cn/zhengce/ 和 zhang@qq.com，扫码领取优惠，全网最低价。"
    )
    assert check(text) == [
        F(text, 3, 34, "link", "warn", "", RULE_LINK),  # the 。 after it is not part of it
        F(text, 39, 51, "link", "warn", "", RULE_LINK),
        F(text, 96, 108, "privacy", "warn", "z***@qq.com", RULE_EMAIL),  # a mailbox, not a link
        F(text, 109, 113, "link", "warn", "", AD_SELLING),
        F(text, 116, 120, "link", "warn", "", AD_CLAIM),
    ]


def test_links_bare_domain_with_a_path_and_file_names_are_not_links() -> None:
    text = "下载地址 example.net/files/a.zip，附件2.pdf、报告.docx、版本 v1.2.3。"
    assert check(text) == [F(text, 5, 28, "link", "warn", "", RULE_LINK)]


# -- clean official prose ----------------------------------------------------------------------


def test_clean_qinzhou_rules_have_no_findings() -> None:
    text = QINZHOU.read_text(encoding="utf-8")
    assert len(text) > 12000
    assert check(text) == []


@pytest.mark.parametrize("paragraph", ZHANJIANG_PARAGRAPHS)
def test_clean_zhanjiang_paragraphs_have_no_findings(paragraph: str) -> None:
    assert check(paragraph) == []


def test_findings_are_sorted_and_quote_the_text() -> None:
    text = QINZHOU.read_text(encoding="utf-8") + "\n截止目前,联系13812345678，或www.shop.com。。"
    found = check(text)
    assert [f.kind for f in found] == ["wording", "format", "privacy", "link", "format"]
    assert found == sorted(found, key=lambda f: (f.start, f.end, f.kind))
    assert all(f.text == text[f.start : f.end] for f in found)


# -- the unit's lists --------------------------------------------------------------------------


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_unit_wording_entries_are_added_and_replace_shipped_ones(tmp_path: Path) -> None:
    write(
        tmp_path,
        "wording.tsv",
        "# 本单位补充\n钦州港口区\t钦州港区\t\t本市地名\n截止目前\t截至目前\tinfo\n我局局长\t\tsevere\t\n",
    )
    lexicon = Lexicon.load(tmp_path)
    text = "截止目前，钦州港口区与我局局长。台湾政府"
    assert check(text, lexicon=lexicon) == [
        F(text, 0, 4, "wording", "info", "截至目前", "本单位规范表述清单"),
        F(text, 5, 10, "wording", "warn", "钦州港区", "本单位规范表述清单：本市地名"),
        F(text, 11, 15, "wording", "severe", "", "本单位规范表述清单"),
        F(text, 16, 20, "wording", "severe", "台湾当局", TAIWAN_AUTHORITIES),  # shipped, still there
    ]
    assert check(text) != check(text, lexicon=lexicon)  # the default lexicon is not touched


def test_allow_list_suppresses_findings_inside_its_terms(tmp_path: Path) -> None:
    write(tmp_path, "allow.txt", "# 地名与本单位公开地址\n瞎子岭村\n钦州市南珠东大街18号\n")
    write(tmp_path, "domains.txt", "people.com.cn\n*.news.cn\n")
    lexicon = Lexicon.load(tmp_path)
    text = (
        "瞎子岭村位于钦州市南珠东大街18号附近，见 http://politics.people.com.cn/a.html 与 "
        "www.news.cn，另一瞎子。"
    )
    assert check(text, lexicon=lexicon) == [
        F(text, 75, 77, "wording", "warn", "盲人", LIST_WORDING + "新华社禁用词 社会，不使用蔑称，称“盲人”"),
    ]
    assert [f.text for f in check(text)] == [
        "瞎子",
        "钦州市南珠东大街18号",
        "http://politics.people.com.cn/a.html",
        "www.news.cn",
        "瞎子",
    ]


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("wording.tsv", "# 注释\n\n甲乙\t丙丁\thigh\t说明\n", 3, "级别“high”无效，应为 severe、warn 或 info"),
        (
            "wording.tsv",
            "台湾政府 台湾当局\n",
            1,
            "词条“台湾政府 台湾当局”含空格：各列之间须用制表符（Tab）分隔",
        ),
        ("ads.tsv", "买\t\twarn\n", 1, "词条“买”过短：至少 2 个字，否则误报太多"),
        ("wording.tsv", "甲乙\t丙丁\n乙丙\t\n甲乙\t戊己\n", 3, "词条“甲乙”与第 1 行重复"),
        (
            "wording.tsv",
            "甲乙\t丙丁\twarn\t说明\t多余\n",
            1,
            "列数过多（5 列），应为：错误写法、正确写法、级别、来源",
        ),
        ("wording.tsv", "\t丙丁\n", 1, "第一列（错误写法）为空"),
        ("wording.tsv", "甲乙\t甲乙\n", 1, "正确写法与错误写法相同（“甲乙”）"),
        ("allow.txt", "地名\n赤\n", 2, "词条“赤”过短：至少 2 个字"),
        ("domains.txt", "gov.cn\nhttp://x.com\n", 2, "“http://x.com”不是有效的域名（例：zhanjiang.gov.cn）"),
    ],
)
def test_malformed_unit_file_names_file_line_and_reason(
    tmp_path: Path, name: str, content: str, line: int, reason: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert caught.value.message == f"配置错误：{path} 第 {line} 行：{reason}"


def test_unit_file_not_utf8_and_missing_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "wording.tsv", "台湾政府\t台湾当局\n".encode("gbk"))
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert caught.value.message == f"配置错误：{path}：不是 UTF-8 编码的文本，请另存为 UTF-8"
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path / "nowhere")
    assert caught.value.message == f"配置错误：{tmp_path / 'nowhere'}：目录不存在"


def test_default_lexicon_is_built_once() -> None:
    assert default_lexicon() is default_lexicon()
    assert default_lexicon().allows_host("www.qinzhou.gov.cn")
    assert not default_lexicon().allows_host("gov.cn.example.com")
    assert Lexicon().allows_host("www.gov.cn") is False and check("台湾政府", lexicon=Lexicon()) == []
    assert check("") == [] and check("\n\n") == []


# -- the command line --------------------------------------------------------------------------

DRAFT = "截止目前，联系13812345678。"
DRAFT_LINES = [
    {
        "start": 0,
        "end": 4,
        "kind": "wording",
        "severity": "warn",
        "text": "截止目前",
        "suggestion": "截至目前",
        "rule": AS_OF,
    },
    {
        "start": 7,
        "end": 18,
        "kind": "privacy",
        "severity": "severe",
        "text": "13812345678",
        "suggestion": "138****5678",
        "rule": RULE_MOBILE,
    },
]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(["proofread", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_cli_txt_prints_one_json_object_per_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "draft.txt", DRAFT)
    code = main(["proofread", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        '{"start": 0, "end": 4, "kind": "wording", "severity": "warn", "text": "截止目前", '
        '"suggestion": "截至目前", "rule": "' + AS_OF + '"}'
    )
    assert [json.loads(line) for line in out.splitlines()] == DRAFT_LINES


def test_cli_clean_text_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, str(QINZHOU)) == (0, [], "")


def test_cli_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(DRAFT.encode("utf-8"))))
    assert run_cli(capsys, "-") == (0, DRAFT_LINES, "")


def docx_bytes(*paragraphs: str) -> bytes:
    document = Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_cli_docx_offsets_are_into_the_extracted_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "draft.docx", docx_bytes("关于加强管理的通知", DRAFT))
    code, lines, err = run_cli(capsys, str(path))
    # mammoth separates paragraphs with a blank line: the draft starts at 9 + 2
    assert (code, err) == (0, "")
    assert lines == [{**line, "start": line["start"] + 11, "end": line["end"] + 11} for line in DRAFT_LINES]


def test_cli_docx_on_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(docx_bytes(DRAFT))))
    assert run_cli(capsys, "-") == (0, DRAFT_LINES, "")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "无法读取 {path}：文件不存在\n"),
        (
            "gbk.txt",
            DRAFT.encode("gbk"),
            "无法读取 {path}：不是 UTF-8 编码的文本（第 1 个字节起），请另存为 UTF-8 或 .docx\n",
        ),
        (
            "broken.docx",
            b"PK\x03\x04 not really a zip",
            "无法读取 {path}：文件已损坏，无法读取，请重新导出后上传\n",
        ),
    ],
)
def test_cli_unreadable_input_exits_1_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert run_cli(capsys, str(path)) == (1, [], message.format(path=path))


def test_cli_non_utf8_stdin_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xb2\xe2\xca\xd4\xff")))
    code, lines, err = run_cli(capsys, "-")
    assert (code, lines) == (1, [])
    assert err == "无法读取 标准输入：不是 UTF-8 编码的文本（第 1 个字节起），请另存为 UTF-8 或 .docx\n"


def test_cli_lexicon_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "allow.txt", "截止目前\n")
    draft = write(tmp_path, "draft.txt", DRAFT)
    assert run_cli(capsys, str(draft), "--lexicon", str(tmp_path)) == (0, DRAFT_LINES[1:], "")
    bad = write(tmp_path, "domains.txt", "不是域名\n")
    code, lines, err = run_cli(capsys, str(draft), "--lexicon", str(tmp_path))
    assert (code, lines) == (2, [])
    assert err == f"配置错误：{bad} 第 1 行：“不是域名”不是有效的域名（例：zhanjiang.gov.cn）\n"

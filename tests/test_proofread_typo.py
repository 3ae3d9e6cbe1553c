"""智能识错 kind 1, 错别字 (typo): the shipped list and the same-sound and similar-shape checks at
exact offsets,
correct words that hold a confusable character, clean official prose, a unit's typo.tsv and
allow.txt, and `sanshen proofread -` printing a typo finding."""

from __future__ import annotations

import io
import json
import sys
from importlib import resources
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.proofread import Finding, Lexicon, check
from bot.proofread.lexicon import LISTS, read_list
from bot.proofread.typo import RULE_SHAPE, RULE_SOUND, model

QINZHOU = Path(__file__).parent / "texts" / "qinzhou-2023-website-newmedia-rules.txt"
TYPO_LIST = "错别字清单："
IDIOM = TYPO_LIST + "成语误写，应为“{}”"
COMMON = TYPO_LIST + "常见错别字，应为“{}”"
VARIANT = TYPO_LIST + "异形词，推荐词形“{}”"


def F(text: str, start: int, end: int, severity: str, suggestion: str, rule: str) -> Finding:
    """The expected typo finding; its text is read from `text`, so a wrong offset shows."""
    return Finding(start, end, "typo", severity, text[start:end], suggestion, rule)


def typos(text: str, lexicon: Lexicon | None = None) -> list[Finding]:
    return [f for f in check(text, lexicon=lexicon) if f.kind == "typo"]


def sound(wrong: str, right: str) -> str:
    return RULE_SOUND.format(wrong=wrong, right=right)


def shipped_typo_list() -> list[tuple[str, str]]:
    spec = next(s for s in LISTS if s.kind == "typo")
    with resources.as_file(resources.files("bot.proofread") / "lists" / spec.file) as path:
        return [(e.term, e.suggestion) for e in read_list(path, spec)]


# -- the shipped list -------------------------------------------------------------------------


def test_typo_listed_misspellings_get_the_correct_form() -> None:
    text = "我们要再接再励，按装设备，迫不急待地签定合同，把各项工作贯策落实到位。"
    assert check(text) == [
        F(text, 3, 7, "warn", "再接再厉", IDIOM.format("再接再厉")),
        F(text, 8, 10, "warn", "安装", COMMON.format("安装")),
        F(text, 13, 17, "warn", "迫不及待", IDIOM.format("迫不及待")),
        F(text, 18, 20, "warn", "签订", COMMON.format("签订")),
        F(text, 28, 32, "warn", "贯彻落实", COMMON.format("贯彻落实")),
    ]


def test_typo_variant_forms_are_info() -> None:
    text = "请核对帐号和帐户余额，既使有困难也要一筹莫展地想办法。"
    assert typos(text) == [
        F(text, 3, 5, "info", "账号", VARIANT.format("账号")),
        F(text, 6, 8, "info", "账户", VARIANT.format("账户")),
        F(text, 11, 13, "warn", "即使", COMMON.format("即使")),
    ]


def test_typo_every_listed_form_is_found_and_its_correction_is_clean() -> None:
    entries = shipped_typo_list()
    assert len(entries) >= 300
    for wrong, right in entries:
        assert [(f.text, f.suggestion) for f in typos(f"今年{wrong}。")] == [(wrong, right)]
        assert typos(f"今年{right}。") == [], right


def test_typo_list_does_not_repeat_the_wording_list() -> None:
    wording = next(s for s in LISTS if s.kind == "wording")
    with resources.as_file(resources.files("bot.proofread") / "lists" / wording.file) as path:
        terms = {e.term for e in read_list(path, wording)}
    assert not terms & {wrong for wrong, _ in shipped_typo_list()}


# -- the same-sound check ---------------------------------------------------------------------


def test_typo_same_sound_character_that_makes_no_word() -> None:
    text = "要坚持以人民为中心的发展思相，加快推进项目建设，确保按期竣攻。"
    assert typos(text) == [
        F(text, 12, 14, "warn", "思想", sound("思相", "思想")),
        F(text, 28, 30, "warn", "竣工", sound("竣攻", "竣工")),
    ]


def test_typo_similar_shape_character_even_inside_a_longer_word() -> None:
    # 推 and 准 share a component but not a sound; the correction completes the idiom 准确无误
    text = "请确保数据推确无误，防止出现差错。"
    assert typos(text) == [
        F(text, 5, 7, "warn", "准确", RULE_SHAPE.format(wrong="推确", right="准确")),
    ]


def test_typo_a_list_of_one_character_abbreviations_is_not_read_as_words() -> None:
    # 各委、办、局 lists bodies by one character each; the same run is still checked elsewhere
    text = "市直各委、办、局要统一思相认识。"
    assert typos(text) == [F(text, 11, 13, "warn", "思想", sound("思相", "思想"))]


def test_typo_correct_forms_of_the_list_and_current_policy_words_are_words() -> None:
    # 张弛有度 is the list's correct form (jieba's dictionary lacks it: 弛有 was read as 持有);
    # 提质增效, 宜居宜业 and 厕所革命 are current policy words (lists/words.txt)
    text = "工作要张弛有度。推进基础设施提质增效，建设宜居宜业和美乡村，开展厕所革命。"
    assert typos(text) == []


@pytest.mark.parametrize(
    "text",
    [
        # correct words that hold a character of a listed misspelling or a same-sound one
        "按照规定安装设备，即使遇到困难也要再接再厉，不能自已。",
        "记录相关信息，按排名先后公布，准备加强监管，将流量引导至官网。",
        "关注消费者权益，交通迅速发展，便捷经济的服务，依次进行。",
        "弗吉尼亚州代表团到访，双方签订合作协议，部署下一步工作。",
        # words newer than jieba's dictionary, abbreviations and a 文号's issuer
        "市政府网站、微博、微信公众号和抖音政务号同步发布，实行三审三校。",
        "根据《通知》（粤府办〔2017〕51号）要求，各委、办、局认真落实。",
        "经研究，同意你单位关于调整内设机构的请示。特此通知。",
    ],
)
def test_typo_correct_words_are_not_flagged(text: str) -> None:
    assert typos(text) == []


def test_typo_clean_qinzhou_paragraphs_have_no_typo_finding() -> None:
    paragraphs = [p for p in QINZHOU.read_text(encoding="utf-8").split("\n") if p.strip()]
    assert len(paragraphs) > 100
    assert [(p, f) for p in paragraphs for f in typos(p)] == []


def test_typo_model_is_loaded_once_without_importing_jieba_or_pypinyin() -> None:
    imported = {"jieba", "pypinyin"} & set(sys.modules)
    assert model() is model()
    assert model().freq("思想") > 10_000 and model().freq("思相") == 0
    assert "想" in model().sounds["相"]
    assert "准" in model().shapes["推"] and "辩" not in model().shapes["辨"]  # 辩 sounds the same
    assert {"jieba", "pypinyin"} & set(sys.modules) == imported


# -- a unit's lists ---------------------------------------------------------------------------


def write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    return path


def test_typo_unit_entries_are_added_and_replace_shipped_ones(tmp_path: Path) -> None:
    write(tmp_path, "typo.tsv", "# 本单位\n钦洲市\t钦州市\t\t本市地名\n按装\t安装\tinfo\n")
    lexicon = Lexicon.load(tmp_path)
    text = "钦洲市按装路灯，再接再励。"
    assert typos(text, lexicon) == [
        F(text, 0, 3, "warn", "钦州市", "本单位错别字清单：本市地名"),
        F(text, 3, 5, "info", "安装", "本单位错别字清单"),
        F(text, 8, 12, "warn", "再接再厉", IDIOM.format("再接再厉")),  # shipped, still there
    ]
    assert typos(text) == [
        F(text, 3, 5, "warn", "安装", COMMON.format("安装")),
        F(text, 8, 12, "warn", "再接再厉", IDIOM.format("再接再厉")),
    ]


def test_typo_unit_allow_list_suppresses_both_checks(tmp_path: Path) -> None:
    write(tmp_path, "allow.txt", "思相村\n按装屯\n")
    lexicon = Lexicon.load(tmp_path)
    text = "思相村和按装屯的群众，发展思相要统一。"
    assert typos(text, lexicon) == [F(text, 13, 15, "warn", "思想", sound("思相", "思想"))]
    assert [f.text for f in typos(text)] == ["思相", "按装", "思相"]


def test_typo_unit_allow_list_stops_a_window_reaching_into_a_term(tmp_path: Path) -> None:
    write(tmp_path, "allow.txt", "相岭\n")
    text = "发展思相岭南文化。"
    assert [f.text for f in typos(text)] == ["思相"]
    assert typos(text, Lexicon.load(tmp_path)) == []


# -- the command line -------------------------------------------------------------------------


def test_typo_cli_stdin_prints_a_typo_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = "各单位要再接再励。"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(draft.encode("utf-8"))))
    code = main(["proofread", "-"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "start": 4,
            "end": 8,
            "kind": "typo",
            "severity": "warn",
            "text": "再接再励",
            "suggestion": "再接再厉",
            "rule": IDIOM.format("再接再厉"),
        },
    ]

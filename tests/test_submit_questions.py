"""No default ticks (保密审查表 注3): a /submit without 来源/公开/平台 is asked for each; old default keys are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.stack import Stack
from bot.core.config import ConfigError, load_settings, settings_from_mapping
from tests.flow import drafts, last_text, say, texts

ROOT = Path(__file__).resolve().parent.parent


async def test_a_missing_source_is_asked_for_then_the_draft_is_created(stack: Stack) -> None:
    await say(stack, "wangxm", "/submit 防汛通知\n公开：主动公开\n平台：政府网站\n定于6月举行防汛演练。")
    asked = last_text(stack, "wangxm")
    assert "还缺少：信息来源" in asked and "1 本机关制发" in asked and "转载：人民网" in asked
    assert await drafts(stack) == [], "no draft before every box is ticked"
    assert not texts(stack, "zhaoli"), "no reviewer is told yet"

    await say(stack, "wangxm", "转载")
    assert "须注明转载来源" in last_text(stack, "wangxm") and "1 本机关制发" in last_text(stack, "wangxm")
    assert await drafts(stack) == []

    assert "已收到投稿" in await say(stack, "wangxm", "转载：人民网")
    (draft,) = await drafts(stack)
    assert (
        draft.title,
        draft.source_kind,
        draft.source_note,
        draft.disclosure,
        draft.platforms,
        draft.category,
    ) == (
        "防汛通知",
        "reprint",
        "人民网",
        "active",
        "website",
        "reprint",
    )
    await say(stack, "wangxm", "1")
    assert len(await drafts(stack)) == 1, "the conversation is over"


async def test_each_missing_box_is_asked_in_turn_and_the_body_collected_after(stack: Stack) -> None:
    await say(stack, "zhaoli", "/submit 专题报道")
    assert "还缺少：信息来源、公开属性、发布平台" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "1")
    assert "请回复公开属性" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/done")
    assert "请回复公开属性" in last_text(stack, "zhaoli"), "/done answers with the open question"
    await say(stack, "zhaoli", "2")
    assert "请回复发布平台" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "2、3")
    assert "请继续发送正文" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "第一段。")
    await say(stack, "zhaoli", "/done")
    (draft,) = await drafts(stack)
    assert (draft.source_kind, draft.disclosure, draft.platforms) == ("own", "on_request", "newmedia,other")


async def test_cancel_drops_a_submission_waiting_for_answers(stack: Stack) -> None:
    await say(stack, "wangxm", "/submit 防汛通知\n来源：本机关制发\n正文")
    assert "还缺少：公开属性、发布平台" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/cancel")
    assert last_text(stack, "wangxm") == "已取消。"
    await say(stack, "wangxm", "1")
    await say(stack, "wangxm", "1")
    assert await drafts(stack) == []


@pytest.mark.parametrize("key", ["default_source", "default_disclosure", "default_platforms"])
def test_a_config_with_a_default_tick_is_refused_by_name(key: str) -> None:
    value = ["website"] if key == "default_platforms" else "own"
    data = {
        "wecom": {"corp_id": "ww1", "agent_id": 1, "secret": "s", "token": "t", "encoding_aes_key": "a" * 43},
        "review": {key: value},
    }
    with pytest.raises(ConfigError) as refused:
        settings_from_mapping(data, env={})
    assert str(refused.value) == f"review.{key}: 已取消：保密审查表注3 要求投稿人自行勾选，请在投稿时写明"


def test_check_config_exits_2_on_a_default_tick(tmp_path: Path) -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(example.replace("[review]\n", '[review]\ndefault_source = "own"\n'), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == "配置错误 review.default_source: 已取消：保密审查表注3 要求投稿人自行勾选，请在投稿时写明\n"
    )
    path.write_text(example, encoding="utf-8")
    assert (
        load_settings(path, env={}).export.form_heading("某单位")
        == "某单位政府门户网站及政务新媒体政务信息发布保密审查表"
    )

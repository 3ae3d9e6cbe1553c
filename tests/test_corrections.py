"""纠错 and 撤稿 of a published draft, each a 错情 with its kind and the people who signed the version
(湛江 第十七条 补救措施, 钦州 五(三) 错情评估): a correction goes back through the whole chain, a
retraction is taken down by its publisher and confirmed; wrong people and wrong input change nothing."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlmodel import select

from bot.cli.stack import Stack
from storage.account_models import AccountPost, Recheck
from storage.models import Draft, ErrorCase, StageDecision
from tests.flow import active_card, at, last_text, say, tap, texts
from tests.test_export import received_file
from tests.test_review_flow import SUBMISSION

LINK = "https://www.example.gov.cn/art/2026/11/23/1.html"
SIGNERS = "一审 王小明，二审 张科长，三审 刘主任"


async def publish(fresh_stack: Stack) -> None:
    await say(fresh_stack, "wangxm", SUBMISSION)
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await at(fresh_stack, minutes=10)
        await tap(fresh_stack, reviewer, "同意")
    await say(fresh_stack, "chenfb", f"/published 1 示范发布 {LINK}")
    await say(fresh_stack, "chenfb", "/published 1 示范微博")


async def draft_status(fresh_stack: Stack) -> str:
    async with fresh_stack.db() as session:
        draft = await session.get(Draft, 1)
        assert draft is not None
        return draft.status


async def cases(fresh_stack: Stack) -> list[ErrorCase]:
    async with fresh_stack.db() as session:
        return list((await session.exec(select(ErrorCase))).all())


async def test_a_correction_records_the_error_and_sends_the_draft_through_review_again(
    fresh_stack: Stack,
) -> None:
    await publish(fresh_stack)
    await say(fresh_stack, "wangxm", SUBMISSION)  # draft 2, still in review
    await say(fresh_stack, "wangxm", "/correct 2 错别字 第二段“防讯”应为“防汛”")
    assert "当前为“审核中”，只有已通过三审的稿件才能纠错或撤稿" in last_text(fresh_stack, "wangxm")
    await say(fresh_stack, "sunkz", "/correct 1 错别字 第二段“防讯”应为“防汛”")
    assert "只有发布人员、领导和管理员（纠错还有投稿人）" in last_text(fresh_stack, "sunkz")
    await say(fresh_stack, "chenfb", "/correct 1 笔误 第二段")
    assert "错情种类“笔误”不认识，应为：错别字、表述、政治性、泄密、链接、其他" in last_text(
        fresh_stack, "chenfb"
    )
    await say(fresh_stack, "chenfb", "/correct 1 错别字")
    assert "请写明错在哪里" in last_text(fresh_stack, "chenfb")
    assert await cases(fresh_stack) == [] and await draft_status(fresh_stack) == "approved"

    await say(fresh_stack, "chenfb", "/correct 1 错别字 第二段“防讯”应为“防汛”")
    assert last_text(fresh_stack, "chenfb") == (
        "已登记错情1号（错别字）：稿件1号《关于开展2025年防汛演练的通知》已退回投稿人修改，修改稿须重新经过三审。"
        f"原稿签发人：{SIGNERS}。"
    )
    assert last_text(fresh_stack, "wangxm").startswith(
        "【纠错】稿件1号《关于开展2025年防汛演练的通知》（第1版）发布后发现错别字问题"
    )
    (case,) = await cases(fresh_stack)
    assert (case.version, case.kind, case.action, case.recorded_by) == (1, "typo", "correct", "chenfb")
    assert [(s["stage"], s["userid"]) for s in case.signers] == [
        ("一审", "wangxm"),
        ("二审", "zhangkz"),
        ("三审", "liuzr"),
    ]
    assert await draft_status(fresh_stack) == "rejected"
    await say(fresh_stack, "chenfb", "/correct 1 错别字 再来一次")
    assert "当前为“已退回”" in last_text(fresh_stack, "chenfb"), "once returned, not again"

    await say(fresh_stack, "wangxm", "/revise 1\n各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。")
    assert "一审" in last_text(fresh_stack, "wangxm")
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await tap(fresh_stack, reviewer, "同意")
    assert await draft_status(fresh_stack) == "approved"
    await say(fresh_stack, "liuzr", "/errors")
    listed = last_text(fresh_stack, "liuzr")
    assert (
        "1. 2026-11-23 稿件1号《关于开展2025年防汛演练的通知》第1版 · 错别字 · 纠错：第二段“防讯”应为“防汛”"
        in listed
    )
    assert f"签发：{SIGNERS}" in listed
    await say(fresh_stack, "wangxm", "/draft 1")
    assert "陈发布 登记错情并退回纠错（第1版，错情1号）：第二段“防讯”应为“防汛”" in last_text(
        fresh_stack, "wangxm"
    )


async def test_a_retraction_is_taken_down_by_each_publisher_and_confirmed(fresh_stack: Stack) -> None:
    await publish(fresh_stack)
    await say(fresh_stack, "wangxm", "/retract 1 政治性 表述不当")
    assert "没有使用 /retract 的权限" in last_text(fresh_stack, "wangxm")
    await say(fresh_stack, "liuzr", "/retract 1 政治性 涉及台湾的表述不规范")
    assert last_text(fresh_stack, "liuzr") == (
        "已登记错情1号（政治性）：稿件1号《关于开展2025年防汛演练的通知》已撤稿，已通知发布人撤下 “示范发布”、“示范微博” "
        f"上的稿件并确认。原稿签发人：{SIGNERS}。"
    )
    assert await draft_status(fresh_stack) == "retracted"
    card = active_card(fresh_stack, "chenfb").payload["template_card"]
    assert card["main_title"]["title"] == "【撤稿】关于开展2025年防汛演练的通知"
    await say(fresh_stack, "chenfb", "/published 1 示范发布")
    assert "当前为“已撤稿”" in last_text(fresh_stack, "chenfb")
    await tap(fresh_stack, "chenfb", "已撤下")
    assert last_text(fresh_stack, "chenfb") == "已记录：稿件1号《关于开展2025年防汛演练的通知》已撤下。"
    async with fresh_stack.db() as session:
        posts = (await session.exec(select(AccountPost).order_by(AccountPost.id))).all()
    assert [(p.taken_down_by, p.taken_down_at is not None) for p in posts] == [("", False), ("chenfb", True)]
    await tap(fresh_stack, "chenfb", "已撤下")
    assert last_text(fresh_stack, "chenfb") == "已记录：稿件1号《关于开展2025年防汛演练的通知》已撤下。"
    async with fresh_stack.db() as session:
        posts = (await session.exec(select(AccountPost).order_by(AccountPost.id))).all()
    assert all(p.taken_down_by == "chenfb" for p in posts)
    await say(fresh_stack, "liuzr", "/retract 1 政治性 再撤一次")
    assert "当前为“已撤稿”" in last_text(fresh_stack, "liuzr")
    (case,) = await cases(fresh_stack)
    assert (case.kind, case.action, case.description) == ("political", "retract", "涉及台湾的表述不规范")
    await say(fresh_stack, "chenfb", "/export 2026-11")
    filename, content = received_file(fresh_stack, "chenfb")
    row = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))[5]
    assert (row[1], row[10], row[12], row[14]) == ("关于开展2025年防汛演练的通知", "√", "√", "同意")
    assert "已通过，发布后撤稿" in row[15], "the 保密审查表 shows the signatures and the retraction"
    await at(fresh_stack, days=2)
    assert not [t for t in texts(fresh_stack, "zhangkz") if t.startswith("【复核")], (
        "the re-checks closed with it"
    )
    async with fresh_stack.db() as session:
        notes = (await session.exec(select(Recheck.note))).all()
    assert notes == ["已撤稿：涉及台湾的表述不规范"] * 2


async def test_a_typo_correction_may_pass_a_configured_short_chain_of_two(database_url: str) -> None:
    from bot.cli.stack import running_stack, stack_settings
    from bot.core.clock import FrozenClock
    from tests.test_freshness import FRESHNESS, START

    settings = stack_settings(
        database_url, {"freshness": FRESHNESS, "review": {"typo_correction_stages": [1, 3]}}
    )
    async with running_stack(settings, FrozenClock(START)) as stack:
        await publish(stack)
        await say(stack, "chenfb", "/correct 1 错别字 第二段“防讯”应为“防汛”")
        assert "修改稿须重新经过一审、三审（错别字纠错短流程）" in last_text(stack, "chenfb")
        assert "/revise 1 重新送审（一审、三审）" in last_text(stack, "wangxm")
        await say(stack, "wangxm", "/revise 1\n各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。")
        await tap(stack, "wangxm", "同意")
        before = len(texts(stack, "zhangkz"))
        await tap(stack, "liuzr", "同意")  # 三审 right after 一审: 二审 is not asked
        assert await draft_status(stack) == "approved"
        assert len(texts(stack, "zhangkz")) == before
        async with stack.db() as session:
            stages = (
                await session.exec(
                    select(StageDecision.stage_name)
                    .where(StageDecision.version == 2)
                    .order_by(StageDecision.id)
                )
            ).all()
        assert stages == ["一审", "三审"]

        # an error of another kind: the whole chain again
        await say(stack, "chenfb", "/correct 1 表述 演练时间表述不清")
        assert "修改稿须重新经过三审" in last_text(stack, "chenfb")
        await say(stack, "wangxm", "/revise 1\n各有关单位：定于2026年6月举行防汛演练。")
        await tap(stack, "wangxm", "同意")
        assert await draft_status(stack) == "in_review"
        await tap(stack, "zhangkz", "同意")
        await tap(stack, "liuzr", "同意")
        assert await draft_status(stack) == "approved"


def test_a_short_chain_has_at_least_two_stages_in_order() -> None:
    import pytest

    from bot.cli.stack import stack_settings
    from bot.core.config import ConfigError

    for stages, reason in (([1], "至少两个审核环节"), ([3, 1], "至少两个审核环节"), ([1, 5], "第5审不存在")):
        with pytest.raises(ConfigError, match=reason):
            stack_settings("sqlite+aiosqlite:///x.db", {"review": {"typo_correction_stages": stages}})
    assert stack_settings(
        "sqlite+aiosqlite:///x.db", {"review": {"typo_correction_stages": [2, 3]}}
    ).review.typo_correction_stages == (2, 3)

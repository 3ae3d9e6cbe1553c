"""重要稿件: marked by the submitter or by keyword, signed by the 主要领导 after 三审 (审签), named on every card."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.models import AuditEntry
from tests.flow import META, active_card, decisions, drafts, last_text, say, tap
from tests.test_export import received_file

PRINCIPAL = {"userid": "wangzr", "name": "王主任", "roles": ["principal"]}


@pytest.fixture
async def unit(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {
        "staff": [*DEMO_STAFF, PRINCIPAL], "review": {"important_keywords": ["重大"]},
    })
    async with running_stack(settings, clock) as running:
        yield running


async def through_three_reviews(stack: Stack) -> None:
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")


async def test_an_important_draft_waits_for_the_principal_after_three_reviews(unit: Stack) -> None:
    stack = unit
    await say(stack, "wangxm", f"/submit 关于调整公交线路的通知\n{META}重要：是\n正文")
    card = active_card(stack, "zhaoli").payload["template_card"]
    assert "【重要稿件】" in card["sub_title_text"], "every card says it is important"
    await through_three_reviews(stack)
    (draft,) = await drafts(stack)
    assert (draft.status, draft.stage) == ("in_review", 4), "三审 is not the end of an important draft"
    signing = active_card(stack, "wangzr").payload["template_card"]
    assert signing["main_title"]["title"].startswith("【审签】") and "【重要稿件】" in signing["sub_title_text"]
    await say(stack, "liuzr", "/approve 1")  # the leader of 三审 cannot sign again
    assert "同一稿件的各审须由不同的人完成" in last_text(stack, "liuzr")
    await say(stack, "chenfb", "/approve 1")  # nor an admin
    assert "不是" in last_text(stack, "chenfb")
    await tap(stack, "wangzr", "同意")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"
    assert [(d.stage, d.stage_name, d.reviewer_userid) for d in await decisions(stack)][-1] == (4, "审签", "wangzr")
    await say(stack, "liuzr", "导出 2026-11")
    _, content = received_file(stack, "liuzr")
    remark = next(str(c.value) for c in load_workbook(io.BytesIO(content)).active["P"] if c.value and "稿件1号" in str(c.value))
    assert "重要稿件（主要领导审签）" in remark and "审签 王主任" in remark


async def test_a_keyword_makes_a_draft_important_and_the_record_says_why(unit: Stack) -> None:
    stack = unit
    await say(stack, "wangxm", f"/submit 关于重大项目开工的通知\n{META}正文")
    (draft,) = await drafts(stack)
    assert draft.important
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "submit"))).one()
    assert entry.details["important"] == ["重大"]
    await say(stack, "zhaoli", f"/submit 一般通知\n{META}重要：否\n正文")
    assert not (await drafts(stack))[1].important


async def test_without_a_principal_an_important_draft_is_refused_and_nothing_is_created(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 通知\n{META}重要：是\n正文")
    assert "没有主要领导" in last_text(stack, "wangxm")
    assert await drafts(stack) == []


async def test_with_proofreading_the_third_proof_follows_the_principals_signature(
    database_url: str, clock: FrozenClock
) -> None:
    settings = stack_settings(database_url, {"staff": [*DEMO_STAFF, PRINCIPAL]}, proofreading=True)
    async with running_stack(settings, clock) as stack:
        await say(stack, "wangxm", f"/submit 通知\n{META}重要：是\n正文")
        await tap(stack, "wangxm", "同意")
        await tap(stack, "wangxm", "校对无误")
        await tap(stack, "zhaoli", "校对无误")
        await tap(stack, "zhangkz", "同意")
        await tap(stack, "zhangkz", "校对无误")
        await tap(stack, "liuzr", "同意")
        (draft,) = await drafts(stack)
        assert (draft.stage, draft.step) == (4, "review"), "审签 comes straight after 三审"
        await tap(stack, "wangzr", "同意")
        (draft,) = await drafts(stack)
        assert (draft.stage, draft.step) == (4, "proof"), "三校 proofreads what the 主要领导 signed"
        assert active_card(stack, "sunkz").payload["template_card"]["main_title"]["title"] == "【三校】待校对稿件"

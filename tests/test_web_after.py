"""After 三审 on the draft page: 登记发布 (publishers), 发布后复核 (its re-checkers), 纠错 (also the
submitter) and 撤稿 — the same services as the chat commands, each form only for whom it is for."""

from __future__ import annotations

from sqlmodel import select

from bot.cli.browser import Phone
from bot.cli.stack import Stack
from storage.account_models import AccountPost, Recheck
from storage.models import Draft, ErrorCase
from tests.flow import last_text, say, tap
from tests.test_review_flow import SUBMISSION

LINK = "https://www.example.gov.cn/art/2026/11/23/1.html"


async def approved(stack: Stack) -> int:
    await say(stack, "wangxm", SUBMISSION)
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await tap(stack, reviewer, "同意")
    return 1


async def test_publish_recheck_and_correct_on_the_page(fresh_stack: Stack) -> None:
    stack = fresh_stack
    number = await approved(stack)
    async with Phone(stack, "sunkz") as reviewer:  # neither publisher nor re-checker
        page = await reviewer.get(f"/app/drafts/{number}/")
        assert "登记发布" not in page.plain and "纠错" not in page.plain and "发布后复核" not in page.plain
    async with Phone(stack, "wangxm") as submitter:
        page = await submitter.get(f"/app/drafts/{number}/")
        assert "登记发布" not in page.plain and "纠错" in page.plain and "撤稿" not in page.plain

    async with Phone(stack, "chenfb") as publisher:
        page = await publisher.get(f"/app/drafts/{number}/")
        assert "登记发布" in page.plain and "示范发布" in page.plain and "示范微博" in page.plain
        forged = await publisher.post(
            f"/app/drafts/{number}/publish", {"csrf": "forged", "account": "示范发布", "url": LINK}
        )
        assert forged.status == 403
        bad = await publisher.post(
            f"/app/drafts/{number}/publish",
            {"csrf": page.field("csrf"), "account": "示范发布", "url": "javascript:alert(1)"},
        )
        assert "链接应以 http:// 或 https:// 开头" in bad.plain
        done = await publisher.post(
            f"/app/drafts/{number}/publish", {"csrf": page.field("csrf"), "account": "示范发布", "url": LINK}
        )
        assert "已登记：稿件1号《关于开展2025年防汛演练的通知》已在“示范发布”发布" in done.plain
    async with stack.db() as session:
        (post,) = (await session.exec(select(AccountPost))).all()
        (recheck,) = (await session.exec(select(Recheck))).all()
    assert (post.url, post.recorded_by, recheck.assignee_list) == (LINK, "chenfb", ["zhangkz"])

    async with Phone(stack, "zhangkz") as rechecker:
        page = await rechecker.get(f"/app/drafts/{number}/")
        assert "发布后复核（示范发布）" in page.plain
        fields = {"csrf": page.field("csrf"), "recheck": str(recheck.id)}
        empty = await rechecker.post(
            f"/app/drafts/{number}/recheck", {**fields, "outcome": "problem", "note": ""}
        )
        assert "请写明发现的问题" in empty.plain
        done = await rechecker.post(
            f"/app/drafts/{number}/recheck", {**fields, "outcome": "problem", "note": "第二段日期有误"}
        )
        assert "发现问题" in done.plain and "发布后复核（示范发布）" not in done.plain
    assert "第二段日期有误" in last_text(stack, "wangxm")

    async with Phone(stack, "chenfb") as publisher:
        page = await publisher.get(f"/app/drafts/{number}/")
        fields = {"csrf": page.field("csrf"), "kind": "表述"}
        empty = await publisher.post(
            f"/app/drafts/{number}/correct", {**fields, "action": "correct", "description": ""}
        )
        assert "请写明错在哪里" in empty.plain
        done = await publisher.post(
            f"/app/drafts/{number}/correct", {**fields, "action": "correct", "description": "第二段日期有误"}
        )
        assert "已登记错情1号（表述）" in done.plain
        assert "纠错或撤稿" not in done.plain, "no longer approved: the forms are gone"
    async with stack.db() as session:
        (case,) = (await session.exec(select(ErrorCase))).all()
        draft = await session.get(Draft, number)
    assert (case.kind, case.action, case.recorded_by, draft and draft.status) == (
        "wording",
        "correct",
        "chenfb",
        "rejected",
    )
    await say(stack, "chenfb", "/published 1 示范发布 " + "https://x.gov.cn/" + "a" * 500)
    assert "链接请控制在 500 字以内" in last_text(stack, "chenfb")

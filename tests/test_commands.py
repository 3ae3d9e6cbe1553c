"""The at-a-glance commands (/pending, /draft, /mine, /help) and the router's answers to mistakes."""

from __future__ import annotations

from bot.cli.stack import Stack
from tests.flow import META, cards, drafts, last_text, say, tap
from tests.test_review_flow import SUBMISSION


async def test_pending_lists_my_stages_and_resends_cards(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await say(stack, "zhangkz", "/pending")
    listing = last_text(stack, "zhangkz")
    assert "待您审核 1 件" in listing and "二审" in listing
    before = len(cards(stack, "zhangkz"))
    await say(stack, "zhangkz", "待办 重发")
    assert len(cards(stack, "zhangkz")) == before + 1
    assert len(cards(stack, "sunkz")) == 1, "a re-send goes only to the person who asked"
    await tap(stack, "zhangkz", "同意")  # the re-sent card works
    await say(stack, "zhangkz", "/pending")
    assert "没有待审核" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", "/pending 全部")
    assert "用法：/pending" in last_text(stack, "zhangkz")


async def test_draft_shows_the_timeline_to_those_involved_only(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    (draft,) = await drafts(stack)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "不同意")
    await say(stack, "zhangkz", "数据需核实")
    await say(stack, "wangxm", f"/revise {draft.id}\n新正文")
    await say(stack, "wangxm", f"稿件 {draft.id}")
    view = last_text(stack, "wangxm")
    assert "状态：审核中，当前一审" in view and "共 2 版" in view
    for line in (
        "王小明 投稿",
        "王小明 一审同意（第1版）",
        "张科长 二审不同意（第1版）：数据需核实",
        "王小明 修改后重新送审（第2版）",
    ):
        assert line in view, line
    await say(stack, "zhaoli", f"/draft {draft.id}")  # zhaoli may decide 一审 now: involved
    assert "投稿人：王小明" in last_text(stack, "zhaoli")
    await tap(stack, "wangxm", "同意")
    await say(stack, "zhaoli", f"/draft {draft.id}")
    assert "无权查看" in last_text(stack, "zhaoli")
    await say(stack, "wangxm", "/draft 999")
    assert "没有找到编号为 999" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/draft")
    assert "用法：/draft" in last_text(stack, "wangxm")


async def test_mine_lists_and_paginates(stack: Stack) -> None:
    await say(stack, "wangxm", "/mine")
    assert "还没有投过稿" in last_text(stack, "wangxm")
    long_title = "关于进一步做好基层政务公开标准化规范化工作和政务新媒体信息内容建设管理的通知" * 2
    for n in range(12):
        await say(stack, "wangxm", f"/submit 第{n}号{long_title}\n{META}正文{n}")
        stack.clock.advance(minutes=1)  # the outbox paces messages per member per minute
    await say(stack, "wangxm", "我的")
    first = last_text(stack, "wangxm")
    assert "共 12 件" in first and "第 1/2 页" in first and "/mine 2" in first
    assert len(first.encode("utf-8")) <= 2048
    await say(stack, "wangxm", "/mine 2")
    second = last_text(stack, "wangxm")
    assert "第 2/2 页" in second and "1号《第0号" in second
    await say(stack, "wangxm", "/mine 9")
    assert "没有第 9 页" in last_text(stack, "wangxm")


async def test_help_shows_only_what_the_role_may_use(stack: Stack) -> None:
    await say(stack, "liuzr", "/help")
    leader_help = last_text(stack, "liuzr")
    assert "/approve" in leader_help and "/submit" not in leader_help
    await say(stack, "wangxm", "帮助")
    assert "/submit" in last_text(stack, "wangxm")
    await say(stack, "chenfb", "/help")  # an admin sees every command, still in one message
    admin_help = last_text(stack, "chenfb")
    assert "/export" in admin_help and "/duty" in admin_help and len(admin_help.encode()) <= 2048
    await say(stack, "chenfb", "/help 催办")
    assert "用法：/remind 编号" in last_text(stack, "chenfb")


async def test_unknown_command_suggests_and_refusal_says_why(stack: Stack) -> None:
    await say(stack, "wangxm", "/pendng")
    reply = last_text(stack, "wangxm")
    assert "没有 /pendng 这个命令" in reply and "/pending" in reply and "/help" in reply
    await say(stack, "liuzr", "/submit 标题\n正文")
    assert "没有使用 /submit 的权限" in last_text(stack, "liuzr") and "采编人员" in last_text(stack, "liuzr")
    assert await drafts(stack) == []


async def test_status_shows_the_pipeline_accounts_and_duty(database_url: str) -> None:
    from bot.cli.stack import running_stack, stack_settings
    from bot.core.clock import FrozenClock
    from tests.conftest import T0

    settings = stack_settings(
        database_url,
        {
            "duty": {"rotation": ["zhaoli"], "leader_rotation": ["liuzr"], "rotation_start": "2026-11-22"},
            "freshness": {"accounts": [{"name": "示范发布", "owners": ["zhaoli"]}]},
        },
    )
    async with running_stack(settings, FrozenClock(T0)) as stack:
        await stack.sweep()  # plans the roster
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        await say(stack, "zhaoli", "/posted 示范发布 2026-11-12 09:00 转载上级稿件")
        stack.clock.advance(hours=25)  # type: ignore[attr-defined]
        await say(stack, "zhangkz", "状态")
        status = last_text(stack, "zhangkz")
        assert "审核中：二审 1 件" in status
        assert "超过 24 小时未处理（按工作日计）：1 件" in status
        assert "待我审核：1 件" in status
        assert "示范发布（剩 47 小时）" in status
        assert "当前值班：主班 赵丽，带班领导 刘主任" in status


def test_help_text_is_kept_per_command_table_and_roles() -> None:
    """/help is made once per table and roles, then looked up: another table (another app) or
    other roles get their own text, never one kept for someone else."""
    from bot import views
    from bot.wecom.dispatcher import CommandTable, Router

    def table(*names: str) -> CommandTable:
        router = Router("t")
        for name in names:
            router.command(name, summary=f"做{name}", roles=("admin",) if name == "secret" else ())(
                lambda ctx, cmd: None
            )
        return CommandTable([router])

    first, second = table("alpha", "secret"), table("beta")
    assert "/alpha" in views.help_text(first.specs, ()) and "/secret" not in views.help_text(first.specs, ())
    assert "/secret" in views.help_text(first.specs, ("admin",))
    assert "/beta" in views.help_text(second.specs, ()) and "/alpha" not in views.help_text(second.specs, ())
    assert views.help_text(first.specs, ()) is views.help_text(first.specs, ())  # kept, not made again

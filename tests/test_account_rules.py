"""The 14×24-hour rule without holes (钦州 第二十六条): an account that never posted is assessed from
its registration, a 临时下线 needs a reason and an end, at most 30 days and once a calendar year,
注销 is final, and an update that did not pass review here is recorded with its reason and marked."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.cli.stack import Stack
from storage.account_models import AccountPause, AccountPost
from storage.models import AuditEntry
from tests.flow import at, count, last_text, say, tap, texts
from tests.test_freshness import START, account
from tests.test_review_flow import SUBMISSION

ADMIN = "chenfb"


async def test_an_account_that_never_posted_alarms_336_hours_after_registration(fresh_stack: Stack) -> None:
    await say(fresh_stack, ADMIN, "/accounts add 新号 网站 wangxm")
    assert (await account(fresh_stack, "新号")).deadline_at == START + timedelta(hours=336)
    await at(fresh_stack, hours=336 - 1)
    assert count(fresh_stack, "wangxm", "【超期告警】新号") == 0
    await at(fresh_stack, hours=1)
    alarm = next(t for t in texts(fresh_stack, ADMIN) if t.startswith("【超期告警】新号"))
    assert "超过 14 天未更新，已超期 0 天 0 小时（登记于 11-23 10:00，至今无更新记录）" in alarm
    assert count(fresh_stack, "wangxm", "【超期告警】新号") == 1


async def test_an_update_outside_review_needs_a_reason_and_is_marked(fresh_stack: Stack) -> None:
    await say(fresh_stack, "zhaoli", "/posted 示范发布")
    assert "经过本系统三审了吗" in last_text(fresh_stack, "zhaoli")
    await say(fresh_stack, "zhaoli", "/posted 示范发布 " + "长" * 201)
    assert "原因请控制在 200 字以内" in last_text(fresh_stack, "zhaoli")
    assert (await account(fresh_stack, "示范发布")).last_post_at is None, "nothing recorded"
    await say(fresh_stack, "zhaoli", "/posted 示范发布 转载省政府稿件")
    assert "记为未经本系统审核（转载省政府稿件）" in last_text(fresh_stack, "zhaoli")
    await say(fresh_stack, "sunkz", "/accounts")
    assert (
        "示范发布（微信公众号）：剩余 14 天 0 小时，期限 12-07 10:00（最近一次更新未经本系统审核）"
        in last_text(fresh_stack, "sunkz")
    )
    async with fresh_stack.db() as session:
        post = (await session.exec(select(AccountPost))).one()
    assert post.unreviewed_reason == "转载省政府稿件" and post.draft_id is None
    # a reviewed draft published later: the mark goes
    await say(fresh_stack, "wangxm", SUBMISSION)
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await tap(fresh_stack, reviewer, "同意")
    await at(fresh_stack, hours=1)
    await say(fresh_stack, ADMIN, "/published 1 示范发布")
    await say(fresh_stack, "sunkz", "/accounts")
    assert (
        "示范发布（微信公众号）：剩余 14 天 0 小时，期限 12-07 11:00\n"
        in last_text(fresh_stack, "sunkz") + "\n"
    )


async def test_a_pause_needs_an_end_and_a_reason_within_30_days_once_a_year(fresh_stack: Stack) -> None:
    refusals = [
        ("/accounts pause 示范发布", "用法：/accounts"),
        ("/accounts pause 示范发布 12月1日 改版", "应写成 YYYY-MM-DD"),
        ("/accounts pause 示范发布 2026-02-30 改版", "不存在"),
        ("/accounts pause 示范发布 2026-11-22 改版", "已过"),
        ("/accounts pause 示范发布 2026-12-01", "须写明原因"),
        ("/accounts pause 示范发布 2026-12-01 " + "长" * 201, "原因请控制在 200 字以内（现有 201 字）"),
        (
            "/accounts pause 示范发布 2026-12-23 改版",
            "不得超过 30 天（钦州 第二十六条），最晚只能暂停到 2026-12-22",
        ),
    ]
    for command, answer in refusals:
        await say(fresh_stack, ADMIN, command)
        assert answer in last_text(fresh_stack, ADMIN), command
    await say(fresh_stack, "zhaoli", "/accounts pause 示范发布 2026-12-01 改版")
    assert "只有管理员" in last_text(fresh_stack, "zhaoli")
    assert (await account(fresh_stack, "示范发布")).status == "active"
    await say(fresh_stack, ADMIN, "/accounts pause 示范发布 2026-12-22 网站改版临时下线")
    assert "暂停考核至 2026-12-22（网站改版临时下线）" in last_text(fresh_stack, ADMIN)
    await say(fresh_stack, ADMIN, "/accounts pause 示范发布 2026-12-22 再来一次")
    assert "已暂停考核，不能再暂停" in last_text(fresh_stack, ADMIN)
    await at(fresh_stack, days=2)
    await say(fresh_stack, ADMIN, "/accounts resume 示范发布")
    assert "已恢复考核" in last_text(fresh_stack, ADMIN) and "剩余 14 天 0 小时" in last_text(
        fresh_stack, ADMIN
    )
    await say(fresh_stack, ADMIN, "/accounts pause 示范发布 2026-12-20 又要改版")
    assert "今年已暂停 1 次（11-23），每年最多 1 次" in last_text(fresh_stack, ADMIN)
    async with fresh_stack.db() as session:
        pauses = (await session.exec(select(AccountPause))).all()
    assert [(p.reason, p.started_by, p.ended_at) for p in pauses] == [
        ("网站改版临时下线", ADMIN, START + timedelta(days=2))
    ]
    await at(fresh_stack, days=40)  # 2027: a new year, a new pause
    await say(fresh_stack, ADMIN, "/accounts pause 示范发布 2027-01-10 又要改版")
    assert "暂停考核至 2027-01-10" in last_text(fresh_stack, ADMIN)


async def test_closing_is_final_and_the_account_leaves_the_lists(fresh_stack: Stack) -> None:
    await say(fresh_stack, ADMIN, "/accounts close 示范微博")
    assert "账号“示范微博”已注销，不再考核" in last_text(fresh_stack, ADMIN)
    for command in ("/accounts resume 示范微博", "/accounts pause 示范微博 2026-12-01 改版"):
        await say(fresh_stack, ADMIN, command)
        assert "已注销" in last_text(fresh_stack, ADMIN) and "不能" in last_text(fresh_stack, ADMIN), command
    await say(fresh_stack, ADMIN, "/accounts resume 示范发布")
    assert "没有暂停考核，无需恢复" in last_text(fresh_stack, ADMIN)
    await at(fresh_stack, days=9)
    assert count(fresh_stack, "wangxm", "【超期告警】示范微博") == 0
    await say(fresh_stack, "sunkz", "/accounts")
    assert "示范微博" not in last_text(fresh_stack, "sunkz") and "示范发布" in last_text(fresh_stack, "sunkz")
    await fresh_stack.restart_bot()  # the config still lists it as active: 注销 is final all the same
    assert (await account(fresh_stack, "示范微博")).status == "closed"


async def test_a_second_account_on_one_platform_needs_a_reason(fresh_stack: Stack) -> None:
    await say(fresh_stack, ADMIN, "/accounts add 示范微博二号 微博 wangxm")
    assert (
        "本单位在微博已有账号“示范微博”，同一平台原则上只开设1个政务新媒体账号（钦州 第二十四条（三））"
        in last_text(fresh_stack, ADMIN)
    )
    await say(fresh_stack, ADMIN, "/accounts add 示范微博二号 微博 wangxm 理由：")
    assert "请在“理由：”后写明理由" in last_text(fresh_stack, ADMIN)
    await say(fresh_stack, ADMIN, "/accounts add 示范微博二号 微博 wangxm 理由：应急专用账号，经市政府办批准")
    assert last_text(fresh_stack, ADMIN) == (
        "已登记账号“示范微博二号”（微博），负责人：王小明。请在 12-07 10:00 前首次更新（14 天期限自登记起算）。"
    )
    async with fresh_stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "account_add"))).one()
    assert entry.details["override"] == "应急专用账号，经市政府办批准" and entry.details["same_platform"] == [
        "示范微博"
    ]
    await say(fresh_stack, ADMIN, "/accounts close 示范微博")
    await say(fresh_stack, ADMIN, "/accounts add 示范微博三号 抖音 wangxm")
    assert "已登记账号“示范微博三号”（抖音）" in last_text(fresh_stack, ADMIN)

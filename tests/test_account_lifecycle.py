"""Account lifecycle (钦州 第二十五、二十六条): 开设, 变更 and 注销 are asked for by an admin and approved
step by step on cards by the configured roles (分管领导, then 主要负责人), applied on the last 同意,
then filed within five working days — reminded before the deadline and daily after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.account_models import AccountRequest
from storage.models import AuditEntry
from tests.flow import active_card, at, count, last_text, say, tap
from tests.test_export import received_file
from tests.test_freshness import START, account
from tests.test_report import sheet_rows

ADMIN = "chenfb"
ACCOUNTS = [
    {"name": "示范发布", "platform": "微信公众号", "owners": ["zhaoli"]},
    {"name": "示范微博", "platform": "微博", "owners": ["wangxm"], "period_hours": 168},
]


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    staff = [*DEMO_STAFF, {"userid": "wangsj", "name": "王书记", "roles": ["principal"]}]
    settings = stack_settings(database_url, {"staff": staff, "freshness": {"accounts": ACCOUNTS}})
    async with running_stack(settings, FrozenClock(START)) as running:  # Monday 10:00
        yield running


async def requests(stack: Stack) -> list[AccountRequest]:
    async with stack.db() as session:
        return list((await session.exec(select(AccountRequest).order_by(AccountRequest.id))).all())


async def test_opening_is_approved_in_two_steps_then_filed_within_five_working_days(stack: Stack) -> None:
    refusals = [
        (ADMIN, "/accounts open 示范抖音 抖音 wangxm", "须写明理由"),
        (ADMIN, "/accounts open 示范抖音 抖音 nobody 理由：短视频宣传", "负责人 nobody 不在人员名单中"),
        (ADMIN, "/accounts open 示范发布 抖音 wangxm 理由：重名", "已存在"),
        ("wangxm", "/accounts open 示范抖音 抖音 wangxm 理由：短视频宣传", "只有管理员"),
    ]
    for user, command, answer in refusals:
        await say(stack, user, command)
        assert answer in last_text(stack, user), command
    assert await requests(stack) == []

    await say(stack, ADMIN, "/accounts open 示范抖音 抖音 wangxm 理由：短视频宣传")
    assert last_text(stack, ADMIN) == (
        "已提交申请1号：开设“示范抖音”（抖音，负责人：王小明）。理由：短视频宣传。审批：刘主任 → 王书记。"
    )
    card = active_card(stack, "liuzr").payload["template_card"]
    assert card["main_title"]["title"] == "【账号开设审批】示范抖音"
    assert "理由：短视频宣传" in card["sub_title_text"]
    await say(stack, "wangsj", "/accounts approve 1")  # not yet the principal's turn
    assert "当前由刘主任审批，本次操作未生效" in last_text(stack, "wangsj")
    await tap(stack, "liuzr", "同意")
    assert "已送王书记审批" in last_text(stack, "liuzr")
    await tap(stack, "wangsj", "不同意")
    assert "请写明不同意的理由：/accounts reject 1 理由" in last_text(stack, "wangsj")
    await say(stack, "wangsj", "/accounts reject 1 已有微信公众号，暂不新开")
    assert (
        last_text(stack, ADMIN)
        == "【账号申请】申请1号（开设“示范抖音”（抖音，负责人：王小明））王书记不同意：已有微信公众号，暂不新开。"
    )
    await say(stack, ADMIN, "/accounts")
    assert "示范抖音" not in last_text(stack, ADMIN)
    await say(stack, "liuzr", "/accounts approve 1")
    assert "申请1号已退回，本次操作未生效" in last_text(stack, "liuzr")

    await say(stack, ADMIN, "/accounts open 示范抖音 抖音 wangxm 理由：市政府要求开通短视频")
    await say(stack, "liuzr", "/accounts approve 2 同意")
    await say(stack, "wangsj", "/accounts 同意 2")
    assert (
        last_text(stack, "wangsj")
        == "已同意申请2号（开设“示范抖音”（抖音，负责人：王小明）），审批完成，已生效；备案期限 2026-11-30 10:00。"
    )
    assert "请于 2026-11-30 10:00 前（5个工作日内）报批审批表、报备基本信息表" in last_text(stack, ADMIN)
    created = await account(stack, "示范抖音")
    assert created.owner_list == ["wangxm"] and created.status == "active"

    await at(stack, days=5, hours=23)  # Sunday 09:00: a day and an hour before the deadline
    assert count(stack, ADMIN, "【备案提醒】") == 0
    await at(stack, hours=2)
    assert count(stack, ADMIN, "【备案提醒】申请2号（开设“示范抖音”）应于 11-30 10:00 前报批、报备") == 1
    await at(stack, hours=23)  # Monday 10:00: due
    assert count(stack, ADMIN, "【备案超期】申请2号") == 1
    await at(stack, hours=12)
    assert count(stack, ADMIN, "【备案超期】") == 1, "once a day"
    await at(stack, hours=12)
    assert (
        count(stack, ADMIN, "【备案超期】申请2号（开设“示范抖音”）应于 11-30 10:00 前报批、报备，已超期 1 天")
        == 1
    )
    await say(stack, ADMIN, "/accounts requests")
    assert "2. 开设“示范抖音”（抖音，负责人：王小明） · 待备案，11-30 10:00 前（已超期）" in last_text(
        stack, ADMIN
    )
    await say(stack, ADMIN, "/accounts filed 2")
    assert "请写明报送情况" in last_text(stack, ADMIN)
    await say(stack, ADMIN, "/accounts filed 2 已报市行政审批局")
    assert last_text(stack, ADMIN) == "已记录：申请2号备案完成（已超期）（已报市行政审批局）。"
    await at(stack, days=2)
    assert count(stack, ADMIN, "【备案超期】") == 2, "filed: no more reminders"
    await say(stack, ADMIN, "/accounts requests")
    assert last_text(stack, ADMIN) == "没有待审批或待备案的账号申请。"
    async with stack.db() as session:
        actions = [e.action for e in (await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all()]
    assert (
        actions.count("account_decide") == 4 and "account_applied" in actions and "account_filed" in actions
    )
    await say(stack, ADMIN, "/report 2026-11")
    _, content = received_file(stack, ADMIN)
    rows = sheet_rows(content, "账号申请")
    assert [r[:3] + r[8:9] for r in rows] == [
        (1, "开设", "示范抖音", "未通过"),
        (2, "开设", "示范抖音", "已通过，已备案"),
    ]
    assert (
        rows[0][7]
        == "刘主任 同意（2026-11-23 10:00）；王书记 不同意（2026-11-23 10:00）已有微信公众号，暂不新开"
    )
    assert rows[1][9:] == ("2026-11-30 10:00", "2026-12-01 10:00", "已报市行政审批局")


async def test_a_second_account_on_one_platform_is_flagged_to_the_approvers(stack: Stack) -> None:
    await say(stack, ADMIN, "/accounts open 示范微博二号 微博 wangxm 理由：应急发布专用")
    assert "注意：本单位在微博已有账号“示范微博”，同一平台原则上只开设1个" in last_text(stack, ADMIN)
    card = active_card(stack, "liuzr").payload["template_card"]
    assert "同一平台已有“示范微博”" in card["sub_title_text"]


async def test_change_and_close_are_applied_only_when_approved(stack: Stack) -> None:
    await say(stack, ADMIN, "/accounts change 示范发布 负责人 sunkz zhaoli 理由：人员调整")
    assert "变更“示范发布”的负责人为“孙科长、赵丽”" in last_text(stack, ADMIN)
    await say(stack, ADMIN, "/accounts close 示范发布 理由：合并")
    assert "已有待审批的申请1号" in last_text(stack, ADMIN)
    assert (await account(stack, "示范发布")).owner_list == ["zhaoli"], "not before approval"
    await tap(stack, "liuzr", "同意")
    await tap(stack, "wangsj", "同意")
    assert (await account(stack, "示范发布")).owner_list == ["sunkz", "zhaoli"]

    await say(stack, ADMIN, "/accounts close 示范微博")
    assert "注销账号须写明理由" in last_text(stack, ADMIN)
    await say(stack, ADMIN, "/accounts close 示范微博 理由：功能与公众号重复，整合注销")
    assert "已提交申请2号：注销“示范微博”" in last_text(stack, ADMIN)
    assert (await account(stack, "示范微博")).status == "active"
    await tap(stack, "liuzr", "同意")
    await tap(stack, "wangsj", "同意")
    closed = await account(stack, "示范微博")
    assert closed.status == "closed" and closed.closed_at == START
    await say(stack, ADMIN, "/accounts change 示范微博 名称 新微博 理由：改名")
    assert "已注销，不能再变更" in last_text(stack, ADMIN)

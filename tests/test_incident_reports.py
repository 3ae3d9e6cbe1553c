"""Incidents reported up (湛江 第十二条、第十五条: 报告主要负责人和上级主管部门, 上报宣传、网信、公安):
an incident's kind, its 上报 chain (people in WeCom told at once, others recorded by hand with who
reported, when and how), the actions taken, the closing summary, and the times to acknowledge
and to report."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import ConfigError
from storage.duty_models import Incident
from tests.flow import at, count, last_text, say, tap
from tests.test_duty import DUTY, START
from tests.test_export import received_file
from tests.test_report import sheet_rows

REPORT_TO = [
    {"name": "主要负责人", "userid": "liuzr", "kinds": ["cyber", "content"]},
    {"name": "市委网信办", "kinds": ["cyber", "opinion"]},
    {"name": "公安网安", "kinds": ["cyber"]},
]


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {"duty": {**DUTY, "report_to": REPORT_TO}})
    async with running_stack(settings, FrozenClock(START)) as running:
        await at(running, minutes=31)  # 赵丽 is on duty
        yield running


async def test_a_cyber_incident_reaches_the_principal_at_once_and_lists_who_is_left(stack: Stack) -> None:
    await say(stack, "sunkz", "/alert 网络安全 网站首页被篡改")
    reply = last_text(stack, "sunkz")
    assert reply.startswith("已报告突发事件1号（网络安全），已通知赵丽，已上报主要负责人。")
    assert reply.endswith("还须上报：市委网信办、公安网安（上报后发送 /incidents 1 上报 对象 方式）。")
    assert last_text(stack, "liuzr") == (
        "【突发上报】事件1号（网络安全），孙科长报告：网站首页被篡改。值班人员已收到通知；处置情况见 /incidents 1。"
    )
    await say(stack, "sunkz", "/incidents 1")
    view = last_text(stack, "sunkz")
    assert view.startswith("【突发事件1号】网络安全 · 待收到\n网站首页被篡改\n首次上报用时 0 分钟\n")
    assert "系统 上报 主要负责人（企业微信）" in view
    assert view.endswith("尚未登记上报：市委网信办、公安网安（/incidents 1 上报 对象 方式）")


async def test_reports_actions_and_summary_make_the_record_an_inspector_reads(stack: Stack) -> None:
    await say(stack, "sunkz", "/alert 舆情 网民集中质疑停水通知")
    assert "（舆情）" in last_text(stack, "sunkz") and count(stack, "liuzr", "【突发上报】") == 0
    await at(stack, minutes=3)
    await tap(stack, "zhaoli", "收到")
    await at(stack, minutes=7)
    refusals = [
        ("wangxm", "/incidents 1 回应 已发布说明", "只有值班人员、事件的报告人和确认人、领导和管理员"),
        ("zhaoli", "/incidents 1 上报 市委网信办", "请写明上报对象和方式"),
        ("zhaoli", "/incidents 1 回应", "请写明回应的情况"),
        ("zhaoli", "/incidents 1 撤销 什么", "用法：/incidents"),
        ("zhaoli", "/incidents 1 总结", "请写明处置结果"),
    ]
    for user, command, answer in refusals:
        await say(stack, user, command)
        assert answer in last_text(stack, user), command
    await say(stack, "zhaoli", "/incidents 1 上报 市委网信办 电话 已向值班科长报告")
    assert last_text(stack, "zhaoli") == "已记录：事件1号已由赵丽以电话上报市委网信办。"
    await say(stack, "zhaoli", "/incidents 1 删除 已删除不实评论3条")
    await say(stack, "liuzr", "/incidents 1 回应 已发布停水情况说明")
    await at(stack, minutes=50)
    await say(stack, "zhaoli", "/incidents 1 总结 情况说明发布后舆情平息")
    assert last_text(stack, "zhaoli") == "已记录：事件1号已总结结案。"
    await say(stack, "zhaoli", "/incidents 1 回应 再补一条")
    assert "已总结结案，不能再登记" in last_text(stack, "zhaoli")
    await say(stack, "sunkz", "/incidents 1")
    lines = last_text(stack, "sunkz").splitlines()
    assert lines[:3] == [
        "【突发事件1号】舆情 · 已处置",
        "网民集中质疑停水通知",
        "确认用时 3 分钟；首次上报用时 10 分钟",
    ]
    assert [line.split(" ", 2)[2] for line in lines[-4:]] == [
        "赵丽 上报 市委网信办（电话）：已向值班科长报告",
        "赵丽 处置·删除：已删除不实评论3条",
        "刘主任 处置·回应：已发布停水情况说明",
        "赵丽 总结结案：情况说明发布后舆情平息",
    ]
    async with stack.db() as session:
        incident = (await session.exec(select(Incident))).one()
    assert (incident.kind, incident.status, incident.summary) == (
        "opinion",
        "resolved",
        "情况说明发布后舆情平息",
    )
    # the quarter's report lists it as the inspector reads it
    await say(stack, "chenfb", "/report")
    _, content = received_file(stack, "chenfb")
    (row,) = sheet_rows(content, "突发事件")[:1]
    assert row[:2] == (1, "舆情") and row[3:7] == ("孙科长", "2026-11-23 08:31", "赵丽", 3)
    assert row[7] == "市委网信办（电话，2026-11-23 08:41，赵丽）" and row[8] == 10
    assert row[9] == "删除：已删除不实评论3条；回应：已发布停水情况说明"
    assert row[10:] == ("已处置", "情况说明发布后舆情平息")


async def test_an_alert_without_a_kind_is_other_and_a_reporter_outside_staff_is_a_config_error(
    stack: Stack, database_url: str
) -> None:
    await say(stack, "sunkz", "/alert 机房空调故障")
    assert "（其他）" in last_text(stack, "sunkz") and "还须上报" not in last_text(stack, "sunkz")
    with pytest.raises(ConfigError, match="duty.report_to.领导.userid: nobody 不在 staff 中"):
        stack_settings(database_url, {"duty": {**DUTY, "report_to": [{"name": "领导", "userid": "nobody"}]}})

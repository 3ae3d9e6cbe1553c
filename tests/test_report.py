"""The quarterly and annual figures (/report, sanshen report): a quarter lived day by day on an
injected clock, and the report's numbers equal what happened; 钦州 第二十八条's counting on its own."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.keys import WECOM
from bot.rules.update_record import OverdueSpell, accountability, longest_gap, overdue_spells
from bot.wecom.client import WeComAPIError
from storage.models import Draft, DraftVersion, StageDecision
from tests.flow import at, button_key, cards, count, current_card, last_text, say, tap
from tests.test_direct import new_draft
from tests.test_export import received_file, run_cli, walk_two_drafts, write_config
from tests.test_review_flow import SUBMISSION

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
WEEK = 7 * DAY


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC)


# ------------------------------------------------------------------ the rules on their own


def test_two_lapses_in_one_month_count_once_and_letters_add_up_to_interviews_and_criticism() -> None:
    registered = local("2026-03-01 10:00")
    # a three-day period: deadline 03-04 missed (posted 03-05), deadline 03-08 missed (posted 03-14)
    posts = [local("2026-03-05 10:00"), local("2026-03-14 10:00")]
    spells = overdue_spells(
        registered=registered,
        posts=posts,
        pauses=[],
        period=3 * DAY,
        closed_at=None,
        now=local("2026-03-17 09:00"),
    )
    assert spells == [
        OverdueSpell(local("2026-03-04 10:00"), local("2026-03-05 10:00")),
        OverdueSpell(local("2026-03-08 10:00"), local("2026-03-14 10:00")),
    ]
    one_month = accountability(spells, 2026, TZ, through=local("2026-12-31 00:00"))
    assert (one_month.months, one_month.reminder_letters, one_month.interviews, one_month.level) == (
        (3,),
        1,
        0,
        "提醒函",
    )
    # then one lapse in April, May and July: four months → 4 提醒函, 2 约谈, 1 通报批评
    more = [OverdueSpell(local(f"2026-{m:02d}-10 10:00"), local(f"2026-{m:02d}-11 10:00")) for m in (4, 5, 7)]
    year = accountability(spells + more, 2026, TZ, through=local("2026-12-31 00:00"))
    assert (year.reminder_letters, year.interviews, year.public_criticisms, year.level) == (
        4,
        2,
        1,
        "通报批评",
    )
    # counted per year, and only deadlines passed before the report's time
    assert accountability(spells + more, 2027, TZ, through=local("2027-12-31 00:00")).reminder_letters == 0
    assert accountability(spells + more, 2026, TZ, through=local("2026-05-01 00:00")).reminder_letters == 2
    # a month is the local one: 03-31 23:00 in Shanghai is March, though it is 15:00 UTC
    late_march = OverdueSpell(local("2026-03-31 23:00"), None)
    assert accountability([late_march], 2026, TZ, through=local("2026-05-01 00:00")).months == (3,)


def test_the_clock_stops_for_a_pause_and_for_good_at_注销() -> None:
    registered = local("2026-01-01 10:00")
    # overdue from 01-15, paused 01-20 for ten days (a post meanwhile does not count past it),
    # assessed again from 01-30: overdue from 02-13 until it is closed on 02-20
    spells = overdue_spells(
        registered=registered,
        posts=[local("2026-01-25 10:00")],
        pauses=[(local("2026-01-20 10:00"), local("2026-01-30 10:00"))],
        period=2 * WEEK,
        closed_at=local("2026-02-20 10:00"),
        now=local("2026-06-01 00:00"),
    )
    assert spells == [
        OverdueSpell(local("2026-01-15 10:00"), local("2026-01-20 10:00")),
        OverdueSpell(local("2026-02-13 10:00"), local("2026-02-20 10:00")),
    ]
    # an imported last post older than the registration starts the clock, as the bot does
    imported = overdue_spells(
        registered=registered,
        posts=[local("2025-12-25 10:00")],
        pauses=[],
        period=2 * WEEK,
        closed_at=None,
        now=local("2026-01-10 10:00"),
    )
    assert imported == [OverdueSpell(local("2026-01-08 10:00"), None)]
    # still paused at `now`: no spell after the pause began
    paused = overdue_spells(
        registered=registered,
        posts=[],
        pauses=[(local("2026-01-10 10:00"), local("2026-02-05 10:00"))],
        period=2 * WEEK,
        closed_at=None,
        now=local("2026-02-01 10:00"),
    )
    assert paused == []
    assert (
        OverdueSpell(local("2026-01-15 10:00"), None).overlap(
            local("2026-01-01 00:00"), local("2026-01-20 10:00")
        )
        == 5 * DAY
    )


def test_longest_gap_counts_from_the_post_before_the_period() -> None:
    registered = local("2025-06-01 10:00")
    posts = [local("2025-12-20 10:00"), local("2026-01-10 10:00"), local("2026-02-01 10:00")]
    start, end = local("2026-01-01 00:00"), local("2026-04-01 00:00")
    gap = longest_gap(registered=registered, posts=posts, start=start, end=end)
    assert gap == local("2026-04-01 00:00") - local("2026-02-01 10:00")  # the open one, to the end
    assert (
        longest_gap(registered=registered, posts=posts, start=start, end=local("2026-02-05 00:00"))
        == 22 * DAY
    )
    assert longest_gap(registered=local("2026-03-01 10:00"), posts=[], start=start, end=end) == end - local(
        "2026-03-01 10:00"
    )


# ------------------------------------------------------------------ a quarter, lived day by day

FRESHNESS = {
    "warn_hours": [24],
    "accounts": [
        {
            "name": "示范微博",
            "platform": "微博",
            "unit": "市政府办公室",
            "owners": ["wangxm"],
            "period_hours": 168,
        },
        {"name": "示范发布", "platform": "微信公众号", "unit": "市政府办公室", "owners": ["zhaoli"]},
        {"name": "示范网站", "platform": "网站", "unit": "市融媒体中心", "owners": ["zhaoli"]},
    ],
}


@pytest.fixture
async def quarter_stack(database_url: str) -> Stack:
    settings = stack_settings(database_url, {"freshness": FRESHNESS})
    async with running_stack(settings, FrozenClock(START)) as stack:
        yield stack  # type: ignore[misc]


async def day(stack: Stack, number: int) -> None:
    """Live day by day (10:00 each day, the scheduler sweeping) up to day `number` after START."""
    while stack.clock.now() < START + number * DAY:
        step = min(DAY, START + number * DAY - stack.clock.now())
        await at(stack, sweeps=1, seconds=step.total_seconds())


async def review(stack: Stack, hours: tuple[int, int, int]) -> None:
    """A draft submitted now passes 一审, 二审 and 三审 taking these hours each."""
    await say(stack, "wangxm", SUBMISSION)
    for reviewer, spent in zip(("wangxm", "zhangkz", "liuzr"), hours, strict=True):
        await at(stack, sweeps=0, hours=spent)
        await tap(stack, reviewer, "同意")


def sheet_rows(content: bytes, name: str) -> list[tuple[object, ...]]:
    return [
        r for r in load_workbook(io.BytesIO(content))[name].iter_rows(min_row=3, values_only=True) if any(r)
    ]


async def test_the_quarters_figures_equal_what_happened(quarter_stack: Stack) -> None:
    stack = quarter_stack
    await review(stack, (1, 2, 3))  # draft 1
    await at(stack, sweeps=0, hours=1)
    await review(stack, (3, 1, 2))  # draft 2
    await say(stack, "chenfb", "/published 1 示范发布")  # d0 16:00: reviewed
    await day(stack, 1)
    await say(stack, "chenfb", "/correct 1 错别字 第一段“防讯”应为“防汛”")
    await say(stack, "chenfb", "/retract 2 表述 演练时间表述有误")
    await say(stack, "zhaoli", "/posted 示范网站 转载省政府稿件")  # 示范网站: then every 10 days
    posted = {
        "示范微博": [3, 20, 29, 34, 45, 51, 57, 63, 69, 75, 81],  # late 01-15→01-25, 02-01→02-03, 02-15→02-19
        "示范发布": [13, 26],  # then never again: late from 02-14 to the quarter's end
        "示范网站": [11, 21, 31, 41, 51, 61, 71, 81],
    }
    for number in sorted({n for days in posted.values() for n in days}):
        await day(stack, number)
        for name, days in posted.items():
            if number in days:
                owner = "wangxm" if name == "示范微博" else "zhaoli"
                await say(stack, owner, f"/posted {name} 转载上级稿件")
    await day(stack, 86)  # 2026-04-01 10:00
    await say(stack, "wangxm", "/report 2026Q1")
    assert "没有使用 /report 的权限" in last_text(stack, "wangxm")
    await say(stack, "liuzr", "/report 2026Q1")
    summary = last_text(stack, "liuzr")
    assert summary.startswith(
        "【统计报表】示范市人民政府办公室2026年第一季度\n账号 3 个，更新 23 次（未经本系统审核 22 次），"
        "更新不及时 3 次（2 个账号，同月算1次）。"
    )
    assert "错情 2 条（纠错 1，撤稿 1）" in summary and "市政府办公室 更新不及时 2 次，达到约谈" in summary
    assert summary.endswith("Excel 文件（统计报表_2026Q1.xlsx）和图表稍后发给您。")
    filename, content = received_file(stack, "liuzr")
    assert filename == "统计报表_2026Q1.xlsx"

    accounts = {row[0]: row for row in sheet_rows(content, "账号") if row[1]}
    weibo = accounts["示范微博"]
    assert weibo[1:4] == ("微博", "市政府办公室", "考核中")
    # posts, unreviewed, longest gap (01-08 → 01-25), days overdue (10 + 2 + 4)
    assert weibo[4:8] == (11, 11, 17, 16)
    # the warnings and alarms the owner actually received
    assert weibo[8] == count(stack, "wangxm", "【更新提醒】示范微博") > 0
    assert weibo[9] == count(stack, "wangxm", "【超期告警】示范微博") > 0
    # lapses in January and February (two in February count once): 2 提醒函 → 1 约谈
    assert weibo[10:16] == (2, 2, 2, 1, 0, "约谈")
    fabu = accounts["示范发布"]
    # 1 reviewed + 2 not; late from 02-14 10:00 to the end of 03-31: 45 days 14 hours; gap from 01-31
    assert fabu[4:8] == (3, 2, 59.6, 45.6)
    assert fabu[10:16] == (1, 1, 1, 0, 0, "提醒函")
    assert accounts["示范网站"][4:8] == (9, 9, 10, 0) and accounts["示范网站"][15] == "—"

    units = {row[0]: row for row in sheet_rows(content, "单位") if row[1]}
    # 市政府办公室: 示范发布's February lapse falls in a month 示范微博 already lapsed in
    assert units["市政府办公室"][1:4] == (2, 14, 61.6)
    assert units["市政府办公室"][6:12] == (2, 2, 2, 1, 0, "约谈")
    assert units["市融媒体中心"][6:12] == (0, 0, 0, 0, 0, "—")

    stages = {row[0]: row[1:] for row in sheet_rows(content, "审核用时") if isinstance(row[1], int)}
    assert stages == {"一审": (2, 2.0, 3.0), "二审": (2, 1.5, 2.0), "三审": (2, 2.5, 3.0)}

    kinds = dict(r[:2] for r in sheet_rows(content, "错情统计") if r[0] and isinstance(r[1], int))
    assert (kinds["错别字"], kinds["表述"], kinds["政治性"], kinds["合计"]) == (1, 1, 0, 2)
    assert (kinds["一审签发过的"], kinds["二审签发过的"], kinds["三审签发过的"]) == (2, 2, 2)
    cases = sheet_rows(content, "错情明细")
    assert [(c[2], c[4], c[5]) for c in cases if c[0] != "注"] == [(1, "错别字", "纠错"), (2, "表述", "撤稿")]
    assert "一审 王小明" in str(cases[0][7]) and "三审 刘主任" in str(cases[0][7])

    overview = dict(r[:2] for r in sheet_rows(content, "概况"))
    assert overview["统计截至"] == "2026-04-01 00:00"
    assert (
        overview["更新次数"],
        overview["其中未经本系统审核"],
        overview["更新不及时（次，同月算1次）"],
    ) == (23, 22, 3)
    assert overview["发布后复核（应复核/已复核/按时/发现问题）"] == "1/0/0/0"
    assert (overview["错情"], overview["纠错"], overview["撤稿"]) == (2, 1, 1)

    pictures = [d for d in stack.sim.inbox("liuzr") if d.msgtype == "image"]
    assert len(pictures) == 1
    picture = stack.sim.media[pictures[0].payload["image"]["media_id"]]
    assert picture.kind == "image" and picture.content.startswith(b"\x89PNG")

    # the year so far: the same lapses; the period shown as not yet over
    await say(stack, "chenfb", "/report 2026")
    filename, content = received_file(stack, "chenfb")
    assert filename == "统计报表_2026.xlsx"
    assert dict(r[:2] for r in sheet_rows(content, "概况"))["统计截至"] == "2026-04-01 10:00"
    assert {row[0]: row[10:16] for row in sheet_rows(content, "账号") if row[1]}["示范微博"] == (
        2,
        2,
        2,
        1,
        0,
        "约谈",
    )


async def test_report_periods_and_refusals(stack: Stack) -> None:
    refusals = [
        ("/report 2026Q5", "应写成 2026Q4"),
        ("/report 去年", "应写成 2026Q4"),
        ("/report 2026 Q4", "时间只写一个"),
        ("/report 2027Q1", "还没有开始"),
        ("/report 1999", "超出范围"),
    ]
    for words, reason in refusals:
        await say(stack, "chenfb", words)
        assert reason in last_text(stack, "chenfb"), words
    assert not [d for d in stack.sim.inbox("chenfb") if d.msgtype in ("file", "image")]
    await say(stack, "chenfb", "/报表")  # this quarter, as of now
    assert last_text(stack, "chenfb").startswith("【统计报表】示范市人民政府办公室2026年第四季度（截至目前）")
    filename, content = received_file(stack, "chenfb")
    assert filename == "统计报表_2026Q4.xlsx"
    overview = dict(r[:2] for r in sheet_rows(content, "概况"))
    assert overview["统计截至"] == "2026-11-23 09:00" and overview["账号数"] == 0
    await say(stack, "chenfb", "/report 2026-11")
    assert "2026年11月" in last_text(stack, "chenfb")
    await say(stack, "chenfb", "/help")
    assert "/report" in last_text(stack, "chenfb") and len(last_text(stack, "chenfb").encode()) <= 2048


async def test_the_simulator_takes_only_jpg_or_png_pictures(stack: Stack) -> None:
    wecom = stack.app[WECOM]
    with pytest.raises(WeComAPIError) as refused:
        await wecom.upload_file("报表.xlsx", b"PK\x03\x04 not a picture", kind="image")
    assert refused.value.errcode == 40005
    document = await wecom.upload_file("报表.xlsx", b"PK\x03\x04 a workbook")
    with pytest.raises(WeComAPIError) as refused:  # a picture message needs a picture
        await wecom.send_message({"touser": "chenfb", "msgtype": "image", "image": {"media_id": document}})
    assert refused.value.errcode == 40007
    picture = await wecom.upload_file("图表.png", b"\x89PNG\r\n\x1a\n" + bytes(64), kind="image")
    await wecom.send_message({"touser": "chenfb", "msgtype": "image", "image": {"media_id": picture}})
    assert [d.msgtype for d in stack.sim.inbox("chenfb")] == ["image"]


async def test_cli_report_writes_the_xlsx_and_the_chart(sqlite_stack: Stack, tmp_path: Path) -> None:
    await walk_two_drafts(sqlite_stack)  # 1 passes 三审; 2 is rejected at 二审
    config = write_config(tmp_path, sqlite_stack.settings.database.url)
    out, chart = tmp_path / "r.xlsx", tmp_path / "r.png"
    done = run_cli("report", "2026Q4", "-c", str(config), "-o", str(out), "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert "【统计报表】" in done.stdout and "2026年第四季度" in done.stdout
    stages = {row[0]: row[1] for row in sheet_rows(out.read_bytes(), "审核用时") if isinstance(row[1], int)}
    assert stages == {"一审": 2, "二审": 2, "三审": 1}
    assert chart.read_bytes().startswith(b"\x89PNG")
    bad = run_cli("report", "2026Q9", "-c", str(config))
    assert bad.returncode == 2 and "时间错误" in bad.stderr


async def inspection_done(stack: Stack, user: str) -> None:
    """`user` taps 已完成 on their newest 巡检 card."""
    card = [
        c
        for c in cards(stack, user)
        if c.payload["template_card"]["main_title"]["title"].startswith("【日常巡检】")
    ][-1]
    task_id = card.payload["template_card"]["task_id"]
    await stack.sim.click(user, task_id, button_key(current_card(stack, user, card), "已完成"))
    await stack.drain()


async def test_inspection_reading_and_rectification_figures(database_url: str) -> None:
    from tests.test_duty import DUTY
    from tests.test_duty import START as MONDAY_0800
    from tests.test_reading import READING

    settings = stack_settings(database_url, {"duty": DUTY, "reading": READING})
    async with running_stack(settings, FrozenClock(MONDAY_0800)) as stack:
        stack.sim.add_robot("duty-group-key")
        await at(stack, hours=2, minutes=1)  # 11-23 10:01: 赵丽's 巡检, and her turn of 读网 since 09:30
        await inspection_done(stack, "zhaoli")  # on time
        await say(stack, "zhaoli", "/inspect 问题 首页图片无法显示")  # recorded only
        await say(stack, "zhaoli", "/inspect 问题 政务公开栏目链接失效 wangxm 2026-11-24")
        await say(stack, "wangxm", "/fix 2 已更正链接")  # fixed by its deadline
        await say(stack, "zhaoli", "/read 1 问题 第3条链接失效")
        await at(stack, days=1)  # 11-24: 王小明's 巡检, never done
        await at(stack, days=1)  # 11-25 10:01: 赵丽's
        await at(stack, hours=3)  # done an hour past its deadline
        await inspection_done(stack, "zhaoli")
        await say(stack, "chenfb", "/report 2026-11")
        _, content = received_file(stack, "chenfb")
    overview = dict(r[:2] for r in sheet_rows(content, "概况"))
    assert overview["巡检（应完成/已完成/按时完成）"] == "3/2/1" and overview["巡检完成率"] == "67%"
    assert overview["巡检发现问题"] == 2 and overview["限期整改（交办/已整改/按期整改）"] == "1/1/1"
    assert overview["读网（应读/已读/发现问题）"] == "1/1/1" and overview["读网完成率"] == "100%"
    findings = [row for row in sheet_rows(content, "巡检问题")]
    assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[8]) for r in findings] == [
        (1, "2026-11-23", "首页图片无法显示", "赵丽", None, None, "仅记录"),
        (2, "2026-11-23", "政务公开栏目链接失效", "赵丽", "王小明", "2026-11-24", "已整改"),
    ]
    assert findings[1][7] == "已更正链接"


async def test_a_quarter_of_more_drafts_than_one_statement_takes_parameters(stack: Stack) -> None:
    """asyncpg refuses a statement of over 32,767 parameters: the quarter's stage timings name
    its drafts by a subquery, never as a list of ids, so /report answers a unit of 33,000 drafts."""
    drafts, submitted = 33_000, datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    common = {"version": 1, "round": 1, "stage": 1}
    async with stack.db() as session, session.begin():
        one = new_draft(stage=2, stage_entered_at=submitted + 3 * HOUR, created_at=submitted, important=False)
        draft_rows = [{**one.model_dump(), "id": n} for n in range(1, drafts + 1)]
        await session.exec(insert(Draft), params=draft_rows)  # type: ignore[call-overload]
        versions = [
            {"draft_id": n, "version": 1, "body": "正文", "created_at": submitted, "created_by": "wangxm"}
            for n in range(1, drafts + 1)
        ]
        await session.exec(insert(DraftVersion), params=versions)  # type: ignore[call-overload]
        decisions = [
            {
                "draft_id": n,
                **common,
                "stage_name": "一审",
                "slot": "*",
                "reviewer_userid": "zhangkz",
                "reviewer_name": "张科长",
                "decision": "approve",
                "decided_at": submitted + (2 if n % 2 else 4) * HOUR,
                "via": "card",
            }
            for n in range(1, drafts + 1)
        ]
        await session.exec(insert(StageDecision), params=decisions)  # type: ignore[call-overload]
    await say(stack, "chenfb", "/report 2026Q4")
    assert last_text(stack, "chenfb").startswith("【统计报表】示范市人民政府办公室2026年第四季度")
    filename, content = received_file(stack, "chenfb")
    assert filename == "统计报表_2026Q4.xlsx"
    assert sheet_rows(content, "审核用时")[0] == ("一审", drafts, 3.0, 4.0)

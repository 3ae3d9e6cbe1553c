"""Account commands: /accounts (账号) by time remaining and admin upkeep, /published, /posted."""

from __future__ import annotations

import re
from datetime import datetime

from bot import views
from bot.core.errors import UserFacingError
from bot.services import accounts
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import DAY_TEXT, parse_day, parse_number
from storage.accounts_repo import accounts_by_remaining

router = Router("accounts")

ACCOUNTS_USAGE = (
    "/accounts；管理员：/accounts add 名称 平台 负责人userid… [理由：同平台第二个账号的理由]，"
    "/accounts pause 名称 截止日期YYYY-MM-DD 原因，"
    "/accounts resume|close 名称"
)
PUBLISHED_USAGE = "/published 编号 账号名称 [链接]"
POSTED_USAGE = "/posted 账号名称 [YYYY-MM-DD HH:MM] 未经本系统审核的原因"
PAUSE_WORDS = ("pause", "暂停")
STATUS_WORDS = {"resume": "active", "恢复": "active", "close": "closed", "关闭": "closed", "注销": "closed"}
_TIME = re.compile(r"\d{1,2}:\d{2}")
_TIMEISH = re.compile(r"\d|今天|昨天|前天|刚才|上午|下午|晚上")  # a time not in the expected form


@router.command("accounts", aliases=("账号",), usage=ACCOUNTS_USAGE, summary="新媒体账号按更新期限排列；管理员可增改")
async def on_accounts(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        listed = await accounts_by_remaining(ctx.session, ctx.now())
        if not listed:
            ctx.reply_text("还没有登记账号。管理员可发送 /accounts add 名称 平台 负责人userid。")
            return
        lines = [f"【账号更新情况】共 {len(listed)} 个（期限按最后更新 + 周期计算）："]
        lines += [f"{n}. {views.account_line(a, ctx.settings, ctx.now())}" for n, a in enumerate(listed, start=1)]
        ctx.reply_text("\n".join(lines))
        return
    accounts.require_admin(ctx)
    action, rest = cmd.argv[0], cmd.argv[1:]
    if action in ("add", "添加") and len(rest) >= 3:
        owners, override = list(rest[2:]), ""
        for n, word in enumerate(owners):
            if word.startswith(("理由：", "理由:")):
                owners, override = owners[:n], " ".join([word[3:], *owners[n + 1:]]).strip()
                if not override:
                    raise UserFacingError("请在“理由：”后写明理由。")
                break
        if not owners:
            raise UserFacingError(views.usage(ACCOUNTS_USAGE))
        done = await accounts.add_account(ctx, rest[0], rest[1], tuple(owners), override)
    elif action in PAUSE_WORDS and len(rest) >= 2:
        last_day = parse_day(rest[1], what="暂停截止日期", usage=ACCOUNTS_USAGE)
        done = await accounts.pause_account(ctx, rest[0], last_day, " ".join(rest[2:]))
    elif action in STATUS_WORDS and len(rest) == 1:
        done = await accounts.set_account_status(ctx, rest[0], STATUS_WORDS[action])
    else:
        raise UserFacingError(views.usage(ACCOUNTS_USAGE))
    ctx.reply_text(done.message)


@router.command("published", aliases=("已发布",), usage=PUBLISHED_USAGE, summary="登记稿件已发布；已通过三审的稿件已在某账号发布",
                roles=("publisher",))
async def on_published(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) not in (2, 3):
        raise UserFacingError(views.usage(PUBLISHED_USAGE))
    number = parse_number(cmd.argv[0], PUBLISHED_USAGE)
    url = cmd.argv[2] if len(cmd.argv) == 3 else ""
    if url and not url.startswith(("http://", "https://")):
        raise UserFacingError("链接应以 http:// 或 https:// 开头。用法：" + PUBLISHED_USAGE)
    ctx.reply_text((await accounts.record_published(ctx, number, cmd.argv[1], url)).message)


@router.command("posted", aliases=("已更新",), usage=POSTED_USAGE, summary="登记账号已更新（默认现在）")
async def on_posted(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(POSTED_USAGE))
    posted_at, rest = None, cmd.argv[1:]
    if rest and DAY_TEXT.fullmatch(rest[0]):
        has_time = len(rest) > 1 and _TIME.fullmatch(rest[1]) is not None
        text, rest = " ".join(rest[:1 + has_time]), rest[1 + has_time:]
        year, month, day = (int(p) for p in text.split()[0].split("-"))
        hour, minute = (int(p) for p in (text.split()[1] if has_time else "0:00").split(":"))
        try:
            posted_at = datetime(year, month, day, hour, minute, tzinfo=ctx.settings.tz)
        except ValueError:
            raise UserFacingError(f"时间“{text}”不存在，应写成 YYYY-MM-DD HH:MM。用法：{POSTED_USAGE}") from None
        if posted_at.year < 2000:  # year 1 in UTC+8 is before the calendar's year 1 in UTC
            raise UserFacingError(f"时间“{text}”太早了。用法：{POSTED_USAGE}")
    elif rest and _TIMEISH.match(rest[0]):
        raise UserFacingError(f"时间“{rest[0]}”应写成 YYYY-MM-DD HH:MM。用法：{POSTED_USAGE}")
    ctx.reply_text((await accounts.record_posted(ctx, cmd.argv[0], posted_at, " ".join(rest))).message)

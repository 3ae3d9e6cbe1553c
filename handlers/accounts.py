"""Account commands: /accounts (账号) by time remaining, admin upkeep and the 开设/变更/注销 requests
with their approval cards, /published, /posted."""

from __future__ import annotations

import re
from datetime import datetime

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local
from bot.services import account_requests, accounts
from bot.services.review import staff_names
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import CardClick
from handlers.args import DAY_TEXT, card_number, parse_day, parse_number
from storage.accounts_repo import accounts_by_remaining

router = Router("accounts")

ACCOUNTS_USAGE = (
    "/accounts；管理员：/accounts add 名称 平台 负责人userid… [理由：同平台第二个账号的理由]（登记已有账号），"
    "/accounts open 名称 平台 负责人userid… 理由：…（开设申请），"
    "/accounts change 名称 负责人|名称|平台 新值… 理由：…（变更申请），"
    "/accounts close 名称 理由：…（注销申请），"
    "/accounts pause 名称 截止日期YYYY-MM-DD 原因，/accounts resume 名称，/accounts filed 申请编号 报送情况；"
    "审批人：/accounts approve 申请编号 [意见]，/accounts reject 申请编号 理由；/accounts requests"
)
PUBLISHED_USAGE = "/published 编号 账号名称 [链接]"
POSTED_USAGE = "/posted 账号名称 [YYYY-MM-DD HH:MM] 未经本系统审核的原因"
PAUSE_WORDS = ("pause", "暂停")
STATUS_WORDS = {"resume": "active", "恢复": "active", "close": "closed", "关闭": "closed", "注销": "closed"}
CLOSE_WORDS = ("close", "关闭", "注销")
DECIDE_WORDS = {"approve": "approve", "同意": "approve", "reject": "reject", "不同意": "reject"}
_TIME = re.compile(r"\d{1,2}:\d{2}")
_TIMEISH = re.compile(r"\d|今天|昨天|前天|刚才|上午|下午|晚上")  # a time not in the expected form


@router.command(
    "accounts", aliases=("账号",), usage=ACCOUNTS_USAGE, summary="新媒体账号按更新期限排列；管理员可增改"
)
async def on_accounts(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        listed = await accounts_by_remaining(ctx.session, ctx.now())
        if not listed:
            ctx.reply_text("还没有登记账号。管理员可发送 /accounts add 名称 平台 负责人userid。")
            return
        lines = [f"【账号更新情况】共 {len(listed)} 个（期限按最后更新 + 周期计算）："]
        lines += [
            f"{n}. {views.account_line(a, ctx.settings, ctx.now())}" for n, a in enumerate(listed, start=1)
        ]
        ctx.reply_text("\n".join(lines))
        return
    action, rest = cmd.argv[0], cmd.argv[1:]
    if action in DECIDE_WORDS and rest:  # the approvers of a request need not be admins
        number = parse_number(rest[0], ACCOUNTS_USAGE)
        decided = await account_requests.decide(ctx, number, DECIDE_WORDS[action], " ".join(rest[1:]))
        ctx.reply_text(decided.message)
        return
    if action in ("requests", "申请"):
        ctx.reply_text(await requests_text(ctx))
        return
    accounts.require_admin(ctx)
    words, reason = split_reason(rest)
    done: accounts.AccountDone | account_requests.RequestDone
    if action in ("add", "添加") and len(words) >= 3:
        if reason == "":
            raise UserFacingError("请在“理由：”后写明理由。")
        done = await accounts.add_account(ctx, words[0], words[1], tuple(words[2:]), reason or "")
    elif action in ("open", "开设") and len(words) >= 3:
        done = await account_requests.ask(
            ctx,
            "open",
            words[0],
            reason or "",
            {"platform": words[1], "owners": list(dict.fromkeys(words[2:]))},
        )
    elif action in ("change", "变更") and len(words) >= 3 and words[1] in account_requests.CHANGE_FIELDS:
        field = account_requests.CHANGE_FIELDS[words[1]]
        if field != "owners" and len(words) != 3:
            raise UserFacingError(views.usage(ACCOUNTS_USAGE))
        value: object = list(dict.fromkeys(words[2:])) if field == "owners" else words[2]
        done = await account_requests.ask(
            ctx, "change", words[0], reason or "", {"field": field, "value": value}
        )
    elif action in CLOSE_WORDS and len(words) == 1 and ctx.settings.freshness.lifecycle_chain:
        done = await account_requests.ask(ctx, "close", words[0], reason or "", {})
    elif action in PAUSE_WORDS and len(rest) >= 2:
        last_day = parse_day(rest[1], what="暂停截止日期", usage=ACCOUNTS_USAGE)
        done = await accounts.pause_account(ctx, rest[0], last_day, " ".join(rest[2:]))
    elif action in STATUS_WORDS and len(words) == 1:  # resume; close when no approval is configured
        done = await accounts.set_account_status(ctx, words[0], STATUS_WORDS[action])
    elif action in ("filed", "备案") and rest:
        number = parse_number(rest[0], ACCOUNTS_USAGE)
        done = await account_requests.record_filing(ctx, number, " ".join(rest[1:]))
    else:
        raise UserFacingError(views.usage(ACCOUNTS_USAGE))
    ctx.reply_text(done.message)


def split_reason(words: list[str]) -> tuple[list[str], str | None]:
    """The words before “理由：”, and what follows it ("" when nothing does; None without one)."""
    for n, word in enumerate(words):
        if word.startswith(("理由：", "理由:")):
            return words[:n], " ".join([word[3:], *words[n + 1 :]]).strip()
    return words, None


async def requests_text(ctx: Context) -> str:
    waiting = await account_requests.open_requests(ctx)
    if not waiting:
        return "没有待审批或待备案的账号申请。"
    names = staff_names(ctx)
    lines = [f"【账号申请】待办 {len(waiting)} 项："]
    for request in waiting:
        what = account_requests.describe(request, names)
        if request.status == "pending":
            state = f"待第{request.step + 1}步审批"
        else:
            assert request.filing_due_at is not None
            late = "（已超期）" if request.filing_due_at < ctx.now() else ""
            state = f"待备案，{fmt_local(request.filing_due_at, ctx.settings.tz)} 前{late}"
        lines.append(f"{request.id}. {what} · {state}")
    return "\n".join(lines)


@router.card("ar")
async def on_account_request_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is None or parts[0] not in ("approve", "reject"):
        raise UserFacingError(views.UNKNOWN_CARD)
    if parts[0] == "reject":  # a card cannot take text: the reason comes by command
        ctx.reply_text(f"请写明不同意的理由：/accounts reject {number} 理由。写明后即退回申请人。")
        return
    done = await account_requests.decide(ctx, number, "approve", response_code=click.response_code)
    ctx.reply_text(done.message)


@router.command(
    "published",
    aliases=("已发布",),
    usage=PUBLISHED_USAGE,
    summary="登记稿件已发布；已通过三审的稿件已在某账号发布",
    roles=("publisher",),
)
async def on_published(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) not in (2, 3):
        raise UserFacingError(views.usage(PUBLISHED_USAGE))
    number = parse_number(cmd.argv[0], PUBLISHED_USAGE)
    url = cmd.argv[2] if len(cmd.argv) == 3 else ""
    ctx.reply_text((await accounts.record_published(ctx, number, cmd.argv[1], url)).message)


@router.command("posted", aliases=("已更新",), usage=POSTED_USAGE, summary="登记账号已更新（默认现在）")
async def on_posted(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(POSTED_USAGE))
    posted_at, rest = None, cmd.argv[1:]
    if rest and DAY_TEXT.fullmatch(rest[0]):
        has_time = len(rest) > 1 and _TIME.fullmatch(rest[1]) is not None
        text, rest = " ".join(rest[: 1 + has_time]), rest[1 + has_time :]
        year, month, day = (int(p) for p in text.split()[0].split("-"))
        hour, minute = (int(p) for p in (text.split()[1] if has_time else "0:00").split(":"))
        try:
            posted_at = datetime(year, month, day, hour, minute, tzinfo=ctx.settings.tz)
        except ValueError:
            raise UserFacingError(
                f"时间“{text}”不存在，应写成 YYYY-MM-DD HH:MM。用法：{POSTED_USAGE}"
            ) from None
        if posted_at.year < 2000:  # year 1 in UTC+8 is before the calendar's year 1 in UTC
            raise UserFacingError(f"时间“{text}”太早了。用法：{POSTED_USAGE}")
    elif rest and _TIMEISH.match(rest[0]):
        raise UserFacingError(f"时间“{rest[0]}”应写成 YYYY-MM-DD HH:MM。用法：{POSTED_USAGE}")
    ctx.reply_text((await accounts.record_posted(ctx, cmd.argv[0], posted_at, " ".join(rest))).message)

"""`sanshen demo -c config.toml`: the unit's own chains and staff rehearsed on the simulator and a
temporary database — a draft through every 审 and 校 step, and the duty watch's first sweep."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from bot import views
from bot.cli.demo import Transcript, active_button, print_records
from bot.cli.stack import Stack, random_aes_key, running_stack
from bot.core.clock import FrozenClock
from bot.core.config import (
    AuditSettings,
    DatabaseSettings,
    Settings,
    StorageSettings,
    WebSettings,
)
from bot.rules.calendar import local_at
from storage.models import Draft

# The buttons that move a draft on: 同意 (同意（不涉密） at the 保密审查 stage) and a 校次's 校对无误.
FORWARD = ("同意", "同意（不涉密）", "校对无误")
MAX_TAPS = 60  # a chain of 9 stages with 读校 after each is about 30


def rehearsal_settings(settings: Settings, folder: Path) -> Settings:
    """The unit's settings with WeCom replaced by the simulator (fresh credentials), a database,
    files folder and audit checkpoints of their own: nothing of the real deployment is touched."""
    wecom = settings.wecom.model_copy(
        update={
            "corp_id": "wwrehearsal00001",
            "secret": random_aes_key(),
            "token": "rehearsal",
            "encoding_aes_key": random_aes_key(),
        }
    )
    return settings.model_copy(
        update={
            "wecom": wecom,
            "database": DatabaseSettings(url=f"sqlite+aiosqlite:///{folder / 'rehearsal.db'}"),
            "storage": StorageSettings(files_dir=str(folder / "files")),
            "web": WebSettings(),
            "audit": AuditSettings(),
            "server": settings.server.model_copy(update={"public_url": ""}),
        }
    )


def signing_plan(settings: Settings, category: str) -> dict[int, str]:
    """Who signs each 审 stage in the rehearsal: different people, as the bot requires."""
    matching = settings.signers_of(settings.chain_for(category))
    if matching.blocked:  # check-config refuses such a chain before we get here
        raise RuntimeError(f"no distinct signers for {category}")
    return matching.signer


def handover_clock(settings: Settings) -> FrozenClock:
    """Simulated time, starting today a minute after the handover (the first shift's start)."""
    today = datetime.now(settings.tz).date()
    return FrozenClock(local_at(today, settings.duty.handover_time, settings.tz) + timedelta(minutes=1))


async def run_rehearsal(settings: Settings) -> int:
    """0 when a draft of the unit's 制发类 chain ends approved with each stage signed."""
    with tempfile.TemporaryDirectory(prefix="sanshen-rehearsal-") as folder:
        clock = handover_clock(settings)
        async with running_stack(rehearsal_settings(settings, Path(folder)), clock) as stack:
            show = Transcript(stack)
            show.out(
                f"审校助手演练：{settings.unit_name}（按配置文件中的人员和审核链；企业微信模拟器，临时数据库，"
                "不会联系真实的企业微信）"
            )
            reviewed = await _walk_chain(stack, clock, show)
            await _first_sweep(stack, show)
            return reviewed


async def _walk_chain(stack: Stack, clock: FrozenClock, show: Transcript) -> int:
    settings = stack.settings
    plan = signing_plan(settings, "issued")
    submitter = plan[1]
    chain = settings.chain_for("issued")
    show.step("1. 投稿（制发类）")
    show.out(
        "审核链："
        + " → ".join(s.name for s in chain.stages)
        + (f"；三校：{'、'.join(p.name for p in chain.proofs)}" if chain.proofreading else "")
    )
    text = (
        f"/submit 关于开展{today_label(clock)}演练的通知\n来源：本机关制发\n公开：主动公开\n平台：政府网站\n"
        "各科室：\n为检验三审三校流程，现开展一次演练。请按收到的卡片逐级审核、校对。"
    )
    show.out(f"\n>>> {settings.name_of(submitter)}（{submitter}）发送：")
    for line in text.splitlines():
        show.out(f"    {line}")
    await stack.sim.send_text(submitter, text)
    await stack.drain()
    show.show_new()
    for step in range(2, MAX_TAPS):
        draft = await _latest_draft(stack)
        if draft is None or draft.status != "in_review":
            break
        tapped = await _tap_forward(stack, show, preferred=plan.get(draft.stage, ""))
        if not tapped:
            show.out(
                f"\n没有人持有可以推进稿件的卡片（第{step}步，停在{draft.stage}审）。请检查审核链与人员名单。"
            )
            break
        clock.advance(minutes=5)
    show.step("数据库中的审核与校对记录")
    rows, proofs = await print_records(stack, show)
    draft = await _latest_draft(stack)
    status = views.STATUS_LABELS.get(draft.status, draft.status) if draft else "（无稿件）"
    show.out(f"\n稿件状态：{status}")
    signed = {row.stage for row in rows if row.decision == "approve"}
    ok = draft is not None and draft.status == "approved" and signed == set(plan)
    show.out("演练完成：每个审核环节都已由不同的人签署。" if ok else "演练未能走完审核链。")
    return 0 if ok else 1


def today_label(clock: FrozenClock) -> str:
    return f"{clock.now():%Y年%m月}"


async def _tap_forward(stack: Stack, show: Transcript, *, preferred: str) -> bool:
    """The preferred person's forward button if they hold one, else anyone's."""
    people = [preferred, *(m.userid for m in stack.settings.staff if m.userid != preferred)]
    for userid in people:
        found = active_button(stack, userid, FORWARD)
        if found is not None:
            task_id, key, label = found
            show.out(f"\n>>> {stack.settings.name_of(userid)}（{userid}）点击卡片按钮【{label}】")
            await stack.sim.click(userid, task_id, key)
            await stack.drain()
            show.show_new()
            return True
    return False


async def _first_sweep(stack: Stack, show: Transcript) -> None:
    show.step("2. 值班值守与账号更新：定时任务在交班时间运行一次")
    show.show_new_quietly()
    await stack.sweep()
    before = sum(len(stack.sim.inbox(m.userid)) for m in stack.settings.staff)
    show.show_new()
    if not before:
        show.out("（本次没有需要发出的提醒：未配置轮值或排班表，或尚无账号。）")


async def _latest_draft(stack: Stack) -> Draft | None:
    async with stack.db() as session:
        return (await session.exec(select(Draft).order_by(col(Draft.id).desc()).limit(1))).first()

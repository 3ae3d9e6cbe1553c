"""The demo: a sample unit on SQLite and the simulator — 三审三校 in chat, duty and accounts, a Word draft on the pages."""

from __future__ import annotations

import html
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot import views
from bot.cli.browser import Page, Phone
from bot.cli.sample_docx import build_docx, png
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.simulator import button_key, render
from storage.models import Draft, ProofRecord, StageDecision


class Transcript:
    """Prints what each person's phone shows, in order, as the demo goes."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._seen: dict[str, int] = {}
        self._names = stack.settings.staff_names

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    robot_seen = 0

    def show_new_quietly(self) -> None:
        """Mark everything delivered so far as seen without printing it."""
        for userid in self._names:
            self._seen[userid] = len(self._stack.sim.inbox(userid))

    def step(self, title: str) -> None:
        self.out(f"\n=== {title} ===")

    def show_new(self) -> None:
        for userid, name in self._names.items():
            inbox = self._stack.sim.inbox(userid)
            for delivered in inbox[self._seen.get(userid, 0) :]:
                self.out(f"--- 📱 {name}（{userid}）收到：")
                for line in render(delivered, self._stack.sim).splitlines():
                    self.out(f"    {line}")
            self._seen[userid] = len(inbox)


DEMO_WATCH: dict[str, Any] = {
    "duty": {
        "rotation": ["zhaoli", "wangxm"],
        "leader_rotation": ["liuzr"],
        "rotation_start": "2026-11-23",
        "webhook_key": "demo-duty-group",
        "incident_repeat_minutes": 5,
        "incident_escalate_minutes": 15,
    },
    "freshness": {
        "accounts": [
            {"name": "示范发布", "platform": "微信公众号", "unit": "市政府办公室", "owners": ["zhaoli"]},
        ],
    },
}


def active_button(stack: Stack, userid: str, labels: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(task_id, button key, label) of the newest card `userid` can still tap with one of
    `labels` (tried in order on each card), or None."""
    for delivered in reversed(stack.sim.inbox(userid)):
        if delivered.msgtype != "template_card":
            continue
        state = stack.sim.card(delivered.payload["template_card"]["task_id"])
        if not state.is_active_for(userid):
            continue
        for label in labels:
            key = button_key(state.shown_to(userid), label)
            if key is not None:
                return state.task_id, key, label
    return None


def _button(stack: Stack, userid: str, label: str) -> tuple[str, str]:
    found = active_button(stack, userid, (label,))
    if found is None:
        raise RuntimeError(f"{userid} has no active card with {label}")
    return found[0], found[1]


async def run_demo(database_url: str = "") -> int:
    """Run the walkthrough; returns 0 when the draft ends approved with every decision stored."""
    with tempfile.TemporaryDirectory(prefix="sanshen-demo-") as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        clock = FrozenClock(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))
        async with running_stack(stack_settings(url, DEMO_WATCH, proofreading=True), clock) as stack:
            stack.sim.add_robot(DEMO_WATCH["duty"]["webhook_key"])
            reviewed = await _walk(stack, clock)
            watched = await _watch(stack, clock)
            paged = await _workspace(stack, clock)
            return reviewed or watched or paged


async def _walk(stack: Stack, clock: FrozenClock) -> int:
    show = Transcript(stack)
    sim = stack.sim

    async def say(userid: str, text: str) -> None:
        show.out(f"\n>>> {show._names[userid]}（{userid}）发送：")
        for line in text.splitlines():
            show.out(f"    {line}")
        await sim.send_text(userid, text)
        await stack.drain()
        show.show_new()

    async def tap(userid: str, label: str) -> None:
        task_id, key = _button(stack, userid, label)
        show.out(f"\n>>> {show._names[userid]}（{userid}）点击卡片按钮【{label}】")
        await sim.click(userid, task_id, key)
        await stack.drain()
        show.show_new()

    show.out("审校助手演示：示范市人民政府办公室，企业微信模拟器，SQLite 数据库。")
    show.out(f"回调地址 {sim.callback_url}；模拟的企业微信接口 {stack.settings.wecom.api_base}")
    verify = await sim.verify_url()
    show.out(f"企业微信后台保存回调 URL：验证{'通过' if verify.status == 200 else '失败'}")

    show.step("1. 采编人员投稿")
    await say(
        "wangxm",
        "/submit 关于开展2026年冬季防火安全检查的通知\n来源：本机关制发\n公开：主动公开\n"
        "平台：政府网站，政务新媒体\n各镇（街道）、各有关单位：\n为切实做好冬季防火工作，"
        "定于12月1日至12月15日开展全市防火安全检查。联系人：王小明，13912345678。",
    )
    show.step("2. 一审：采编人员自审（钦州模式）；智能识错发现个人手机号，须先逐项核对再同意")
    await tap("wangxm", "同意")
    first_id = await _draft_id(stack)
    await say("wangxm", f"/check {first_id}")
    await say("wangxm", f"/check {first_id} 已核实 1")
    clock.advance(seconds=30)
    await tap("wangxm", "同意")
    show.step("3. 一校（读校）：两名采编人员一读一校，各自签署")
    await tap("wangxm", "校对无误")
    await tap("zhaoli", "有修改")
    await say("zhaoli", "第一段“防火”后补充“安全”二字，标点已改正。")
    show.step("4. 二审：科室负责人不同意并填写理由")
    clock.advance(minutes=20)
    await tap("zhangkz", "不同意")
    await say("zhangkz", "检查时间与市应急局通知不一致，请核实后修改；个人手机号不宜公开，请删去。")
    show.step("5. 投稿人修改后重新送审（第2版从一审开始）")
    clock.advance(minutes=30)
    draft_id = await _draft_id(stack)
    await say(
        "wangxm",
        f"/revise {draft_id}\n各镇（街道）、各有关单位：\n为切实做好冬季防火安全工作，"
        "定于12月5日至12月20日开展全市防火安全检查。",
    )
    show.step("6. 一审、一校、二审、二校、三审（签发）、三校依次完成")
    await tap("wangxm", "同意")
    await tap("wangxm", "校对无误")
    await tap("zhaoli", "校对无误")
    clock.advance(minutes=10)
    await tap("sunkz", "同意")
    await tap("sunkz", "校对无误")
    clock.advance(minutes=45)
    await tap("liuzr", "同意")
    await tap("zhangkz", "校对无误")
    await tap("wangxm", "校对无误")
    return await _summary(stack, show)


async def _watch(stack: Stack, clock: FrozenClock) -> int:
    """Part two on simulated time: a duty ping, an incident escalation, a freshness warning."""
    show = Transcript(stack)
    show.show_new_quietly()
    sim = stack.sim

    async def sweep(note: str) -> None:
        show.out(f"\n⏱  {clock.now().astimezone(stack.settings.tz):%m-%d %H:%M} {note}")
        await stack.sweep()
        show.show_new()
        for message in sim.robots["demo-duty-group"][show.robot_seen :]:
            show.out("--- 💬 值班群机器人：")
            for line in message["text"]["content"].splitlines():
                show.out(f"    {line}")
        show.robot_seen = len(sim.robots["demo-duty-group"])

    show.step("7. 值班值守：交班时间一到，值班人员收到提醒，值班群收到今日值班")
    await sweep("定时任务运行")
    show.step("8. 政务新媒体 14×24 小时更新：账号负责人登记最近一次更新")
    await sim.send_text("zhaoli", "/posted 示范发布 2026-11-10 13:00 转载上级稿件")
    await stack.drain()
    show.show_new()
    clock.advance(hours=2)
    await sweep("距更新期限不足 24 小时，定时任务运行")
    show.step("9. 突发事件：报告后无人确认，每 5 分钟重复通知，15 分钟后上报领导")
    show.out("\n>>> 孙科长（sunkz）发送：\n    /alert 网站首页出现异常链接，疑似被篡改")
    await sim.send_text("sunkz", "/alert 网站首页出现异常链接，疑似被篡改")
    await stack.drain()
    show.show_new()
    for _ in range(3):
        clock.advance(minutes=5)
        await sweep("无人点“收到”")
    task_id, key = _button(stack, "zhaoli", "收到")
    show.out("\n>>> 赵丽（zhaoli）点击卡片按钮【收到】")
    await sim.click("zhaoli", task_id, key)
    await stack.drain()
    show.show_new()
    pages = [d for d in sim.inbox("zhaoli") if d.msgtype == "template_card" and "突发" in str(d.payload)]
    show.out("--- 📱 赵丽的事件卡片现在（点过的一张只剩“已处置”，其余各张已置灰）：")
    for delivered in (next(d for d in pages if d.payload["template_card"]["task_id"] == task_id), pages[0]):
        for line in render(delivered, sim).splitlines():
            show.out(f"    {line}")
    task_id, key = _button(stack, "zhaoli", "已处置")
    show.out("\n>>> 赵丽（zhaoli）处置完毕，点击卡片按钮【已处置】")
    await sim.click("zhaoli", task_id, key)
    await stack.drain()
    show.show_new()
    escalated = any(
        "【突发事件上报】" in d.payload.get("text", {}).get("content", "") for d in sim.inbox("liuzr")
    )
    warned = any("【更新提醒】" in d.payload.get("text", {}).get("content", "") for d in sim.inbox("zhaoli"))
    pinged = any("【值班提醒】" in d.payload.get("text", {}).get("content", "") for d in sim.inbox("zhaoli"))
    ok = escalated and warned and pinged and not sim.dropped
    show.out("\n值班提醒、更新预警、突发上报均已发出。" if ok else "\n值班与账号演示结果异常。")
    return 0 if ok else 1


async def _workspace(stack: Stack, clock: FrozenClock) -> int:
    """Part three: a Word draft with a picture and a table submitted on the 投稿 page, and a
    reviewer who reads it on the draft page from the card's link and decides there."""
    show = Transcript(stack)
    show.show_new_quietly()
    show.step("10. 网页工作台：采编人员在“投稿”页面上传 Word 文稿（含图片和表格）")
    preview, sent = await submit_word_draft(stack, "wangxm", show)
    show.out("--- 🌐 预览页面：")
    for line in preview.section("body").splitlines():
        show.out(f"    {line}")
    show.out(f"\n>>> 王小明点击【确认送审】，页面提示：{_flash(sent)}")
    show.show_new()
    show.step("11. 一审、一校完成后，二审张科长点卡片“阅读全文”，在页面上阅读、勾选审核要点并同意")
    for userid, label in (("wangxm", "同意"), ("wangxm", "校对无误"), ("zhaoli", "校对无误")):
        task_id, key = _button(stack, userid, label)
        await stack.sim.click(userid, task_id, key)
        await stack.drain()
    show.show_new_quietly()
    link = _card_link(stack, "zhangkz")
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(link)
        show.out(f"\n>>> 张科长（zhangkz）点卡片打开 {link}（企业微信网页授权登录）")
        show.out("--- 🌐 稿件页面：")
        head = page.section("card").splitlines()
        for line in [*head[:2], "：".join(head[2:4]), *page.section("body").splitlines()]:
            show.out(f"    {line}")
        picture = await phone.http.get(phone.url(link + _first_picture(page.text)))
        show.out(f"    （文中图片已加载：{picture.content_type}，{len(await picture.read())} 字节）")
        checklist = _checklist(page.text)
        show.out(
            f"\n>>> 张科长勾选全部 {len(checklist)} 项审核要点，填写意见“内容准确，同意发布。”，点击【同意】"
        )
        clock.advance(minutes=15)
        decided = await phone.decide(
            page_id(link), "approve", opinion="内容准确，同意发布。", checks=checklist, page=page
        )
        show.out(f"--- 🌐 页面提示：{_flash(decided)}")
    show.show_new()
    async with stack.db() as session:
        row = (await session.exec(select(StageDecision).where(StageDecision.via == "page"))).first()
    ok = row is not None and row.checklist == checklist and row.reviewer_userid == "zhangkz"
    show.out("\n网页投稿与网页审核均已记录（含勾选的审核要点）。" if ok else "\n网页工作台演示结果异常。")
    return 0 if ok else 1


SAMPLE_WORD_TITLE = "关于做好2026年元旦春节期间安全生产工作的通知"


def sample_word_draft() -> bytes:
    """A .docx with a heading, paragraphs, a table and a picture, built in code."""
    return build_docx(
        heading=SAMPLE_WORD_TITLE,
        paragraphs=[
            "各镇（街道）、各有关单位：",
            "元旦春节将至，为确保节日期间安全生产形势稳定，现就有关事项通知如下。",
        ],
        table=[
            ["检查组", "带队领导", "检查时间"],
            ["第一组", "刘主任", "12月28日"],
            ["第二组", "张科长", "12月29日"],
        ],
        picture=png(),
    )


async def submit_word_draft(stack: Stack, userid: str, show: Transcript | None = None) -> tuple[Page, Page]:
    """`userid` opens 投稿 (signing in through the simulator's 网页授权), uploads the sample Word
    draft with its 保密审查表 choices, and confirms the preview; returns (preview, confirmation)."""
    docx = sample_word_draft()
    name = stack.settings.name_of(userid)
    async with Phone(stack, userid) as phone:
        form = await phone.get("/app/submit")
        if show is not None:
            show.out(f"\n>>> {name}（{userid}）打开应用菜单“投稿”：企业微信网页授权登录后进入 {form.url}")
            show.out(
                "    勾选 类别：制发类；来源：本机关制发信息；公开：主动公开；平台：政府网站、政务新媒体"
            )
            show.out(f"    上传 安全生产通知.docx（{len(docx)} 字节）")
        choices = [
            ("title", SAMPLE_WORD_TITLE),
            ("category", "issued"),
            ("source_kind", "own"),
            ("disclosure", "active"),
            ("platforms", "website"),
            ("platforms", "newmedia"),
        ]
        preview = await phone.post_form(
            "/app/submit", [*phone.fields(form), *choices], [("docx", "安全生产通知.docx", docx)]
        )
        sent = await phone.post_form("/app/submit", phone.fields(preview))
    return preview, sent


def _card_link(stack: Stack, userid: str) -> str:
    for delivered in reversed(stack.sim.inbox(userid)):
        card = delivered.payload.get("template_card")
        if card and stack.sim.card(card["task_id"]).is_active_for(userid) and card.get("card_action"):
            return str(card["card_action"]["url"])
    raise RuntimeError(f"{userid} holds no card with a link")


def page_id(link: str) -> int:
    return int(link.rstrip("/").rsplit("/", 1)[1])


def _first_picture(text: str) -> str:
    match = re.search(r'<img src="(files/[0-9a-f]{64})"', text)
    if match is None:
        raise RuntimeError("the page shows no picture")
    return match.group(1)


def _checklist(text: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(r'name="check" value="([^"]+)"', text)]


def _flash(page: Page) -> str:
    found = re.search(r'<p class="flash"[^>]*>(.*?)</p>', page.text, re.S)
    return html.unescape(found.group(1)).replace("\n", " ") if found else "（无提示）"


async def _draft_id(stack: Stack) -> int:
    async with stack.db() as session:
        draft = (await session.exec(select(Draft).order_by(col(Draft.id).desc()).limit(1))).first()
    assert draft is not None and draft.id is not None
    return draft.id


async def _summary(stack: Stack, show: Transcript) -> int:
    async with stack.db() as session:
        draft = (await session.exec(select(Draft))).one()
    show.step("数据库中的审核与校对记录")
    rows, proofs = await print_records(stack, show)
    show.out(
        f"\n稿件状态：{views.STATUS_LABELS.get(draft.status, draft.status)}；模拟器丢弃的消息：{len(stack.sim.dropped)} 条"
    )
    ok = draft.status == "approved" and len(rows) == 5 and len(proofs) == 7 and not stack.sim.dropped
    show.out("演示完成。" if ok else "演示结果异常。")
    return 0 if ok else 1


async def print_records(stack: Stack, show: Transcript) -> tuple[list[StageDecision], list[ProofRecord]]:
    """Every 审 decision and 校 signature stored, in order, as the transcript's last part."""
    tz = stack.settings.tz
    async with stack.db() as session:
        rows = list((await session.exec(select(StageDecision).order_by(col(StageDecision.id)))).all())
        proofs = list((await session.exec(select(ProofRecord).order_by(col(ProofRecord.id)))).all())
    for row in rows:
        verdict = "同意" if row.decision == "approve" else "不同意"
        show.out(
            f"  第{row.version}版 {row.stage_name} {row.reviewer_name}（{row.reviewer_userid}）"
            f" {verdict} {row.decided_at.astimezone(tz):%Y-%m-%d %H:%M} {row.opinion}"
        )
    for proof in proofs:
        result = "校对无误" if proof.result == "passed" else f"有修改：{proof.note}"
        show.out(
            f"  第{proof.version}版 {proof.proof_name}（{proof.method}） {proof.proofreader_name}"
            f" {proof.at.astimezone(tz):%Y-%m-%d %H:%M} {result}"
        )
    return rows, proofs

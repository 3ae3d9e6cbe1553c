"""The draft pages over real HTTP: WeCom sign-in, who may read what, deciding on the page."""

from __future__ import annotations

import asyncio
import io
from urllib.parse import parse_qs, urlsplit

from openpyxl import load_workbook
from sqlmodel import select

from bot.cli.browser import Phone
from bot.cli.stack import Stack
from bot.rules.content import FileRef, VersionContent
from bot.rules.submission import DraftMeta
from bot.services import review
from bot.services.scope import Work
from bot.views import checklist_for
from bot.wecom.outbox import Outbox
from storage.file_store import FileStore
from storage.models import AuditEntry
from tests.flow import META, active_card, button_key, decisions, drafts, last_text, say, tap, texts
from tests.test_export import received_file

SUBMISSION = (
    "/submit 关于开展2025年防汛演练的通知\n"
    "来源：本机关制发\n"
    "公开：主动公开\n"
    "平台：政府网站\n"
    "各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。\n"
    "请各单位于5月31日前报送参演人员名单。"
)


async def submitted_to_second_stage(stack: Stack) -> int:
    """A draft past 一审, waiting for 二审 (张科长 or 孙科长)."""
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    (draft,) = await drafts(stack)
    assert draft.stage == 2
    assert draft.id is not None
    return draft.id


async def test_a_card_links_to_the_page_and_chat_gets_only_a_preview(stack: Stack) -> None:
    long_body = "各有关单位：" + "为提高防汛应急处置能力，定于6月举行防汛演练。" * 120
    await say(stack, "wangxm", f"/submit 长稿件\n{META}{long_body}")
    (draft,) = await drafts(stack)
    card = active_card(stack, "zhaoli").payload["template_card"]
    page = f"{stack.bot_url}/app/drafts/{draft.id}/"
    assert card["card_action"] == {"type": 1, "url": page}
    assert card["jump_list"] == [{"type": 1, "title": "阅读全文", "url": page}]
    received = texts(stack, "zhaoli")
    assert len(received) == 1, "one short preview, not the body in many parts"
    assert "全文" in received[0] and len(received[0]) < 500


async def test_without_a_session_the_page_sends_the_browser_to_wecom_sign_in(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        response = await phone.get_raw(f"/app/drafts/{number}/")
    assert response.status == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == stack.settings.wecom.oauth_base
    assert target.path == "/connect/oauth2/authorize" and target.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["appid"] == stack.settings.wecom.corp_id
    assert query["redirect_uri"] == f"{stack.bot_url}/app/auth/callback"
    assert query["scope"] == "snsapi_base" and query["response_type"] == "code"
    assert query["agentid"] == str(stack.settings.wecom.agent_id)
    assert query["state"].isalnum() and len(query["state"]) >= 16
    assert response.headers["Set-Cookie"].lower().count("httponly") == 1


async def test_a_reviewer_signs_in_reads_the_draft_and_approves_on_the_page(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    card = active_card(stack, "sunkz").payload["template_card"]
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{number}/")
        assert page.status == 200 and page.url.endswith(f"/app/drafts/{number}/")
        assert "关于开展2025年防汛演练的通知" in page.plain
        assert "请各单位于5月31日前报送参演人员名单。" in page.plain
        for item in checklist_for(2):
            assert item in page.plain
        ticked = list(checklist_for(2)[:3])
        done = await phone.decide(number, "approve", opinion="同意发布", checks=ticked, page=page)
    assert done.status == 200 and "二审" in done.plain
    (row,) = [d for d in await decisions(stack) if d.stage == 2]
    assert (row.reviewer_userid, row.decision, row.opinion, row.via) == (
        "zhangkz",
        "approve",
        "同意发布",
        "page",
    )
    assert row.checklist == ticked
    assert not stack.sim.card(card["task_id"]).is_active_for("sunkz"), "the chat card greys for its holders"
    assert active_card(stack, "liuzr").payload["template_card"]["main_title"]["title"].startswith("【三审】")
    assert "二审已同意" in last_text(stack, "wangxm")
    async with stack.db() as session:
        entry = (
            await session.exec(
                select(AuditEntry).where(AuditEntry.action == "approve", AuditEntry.actor == "zhangkz")
            )
        ).one()
    assert entry.details["checklist"] == ticked and entry.details["via"] == "page"


async def test_a_forged_or_missing_csrf_token_changes_nothing(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{number}/")
        forged = await phone.decide(number, "approve", page=page, csrf="forged-token")
        missing = await phone.post(
            f"/app/drafts/{number}/decide",
            {"decision": "approve", "version": "1", "round": "1", "stage": "2"},
        )
    assert forged.status == 403 and missing.status == 403
    assert "未做任何更改" in forged.plain
    assert [d.stage for d in await decisions(stack)] == [1]


async def test_a_double_submit_decides_once_and_tells_why(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{number}/")
        await phone.decide(number, "approve", page=page)
        again = await phone.decide(number, "approve", page=page)
    assert "已有变化" in again.plain
    assert [d.stage for d in await decisions(stack)] == [1, 2]


async def test_not_approving_needs_an_opinion_and_then_returns_the_draft(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{number}/")
        assert "不同意或认定涉密时必填" in page.plain, "二审 is the 保密审查: 涉密 needs a reason too"
        bare = await phone.decide(number, "reject")
        assert "须填写审核意见" in bare.plain
        classified = await phone.decide(number, "classified")
        assert "须填写审核意见" in classified.plain
        assert [d.stage for d in await decisions(stack)] == [1]
        await phone.decide(number, "reject", opinion="数据需核实")
    (draft,) = await drafts(stack)
    assert draft.status == "rejected"
    assert "数据需核实" in last_text(stack, "wangxm")


async def test_the_page_and_the_card_race_and_exactly_one_decision_counts(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{number}/")
        delivered = active_card(stack, "sunkz")
        task_id = delivered.payload["template_card"]["task_id"]
        key = button_key(delivered.payload["template_card"], "同意")
        await asyncio.gather(
            phone.decide(number, "approve", page=page), stack.sim.click("sunkz", task_id, key)
        )
        await stack.drain()
    second = [d for d in await decisions(stack) if d.stage == 2]
    assert len(second) == 1


async def test_people_outside_the_draft_see_neither_page_nor_files(stack: Stack) -> None:
    content = await stored_content(stack, b"%PDF-1.4 secret attachment")
    number = await create_draft_as(stack, "wangxm", content)
    await tap(stack, "wangxm", "同意")  # past 一审: the other collector has no part in it now
    sha = content.files[0].sha256
    async with Phone(stack, "zhaoli") as outsider:
        page = await outsider.get(f"/app/drafts/{number}/")
        file = await outsider.get(f"/app/drafts/{number}/files/{sha}")
        nothing = await outsider.get(f"/app/drafts/{number + 1}/")
    assert page.status == 404 and "无权查看" in page.plain and "secret" not in page.text
    assert file.status == 404 and "secret" not in file.text
    assert nothing.status == 404 and nothing.plain.count("无权查看") == 1, "a missing draft looks the same"
    async with Phone(stack, "liuzr") as leader:
        readable = await leader.get(f"/app/drafts/{number}/files/{sha}")
        other = await leader.get(f"/app/drafts/{number}/files/{'0' * 64}")
    assert readable.status == 200 and "secret attachment" in readable.text
    assert other.status == 404


async def test_a_typed_body_with_markup_renders_inert_under_a_strict_policy(stack: Stack) -> None:
    await say(
        stack, "wangxm", f'/submit 测试\n{META}<script>alert(1)</script><img src=x onerror="alert(2)">正文'
    )
    (draft,) = await drafts(stack)
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{draft.id}/")
        async with phone.http.get(phone.url(f"/app/drafts/{draft.id}/")) as resp:
            policy = resp.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "default-src 'none'" in policy and "script-src" not in policy


async def test_sign_in_refuses_a_wrong_state_a_reused_or_stale_code_and_strangers(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    sim = stack.settings.wecom.oauth_base
    async with Phone(stack, "zhangkz") as phone:
        start = await phone.get_raw(f"/app/drafts/{number}/")
        authorize = start.headers["Location"]
        to_callback = await phone.get_raw(authorize)
        callback = to_callback.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}

        wrong_state = await phone.get(f"/app/auth/callback?code={query['code']}&state=0123456789abcdef")
        assert wrong_state.status == 400 and "重新打开" in wrong_state.plain

        stack.clock.advance(minutes=5, seconds=1)  # type: ignore[attr-defined]
        stale = await phone.get(callback)
        assert stale.status == 403 and "有效期 5 分钟" in stale.plain
        assert (await phone.get_raw(f"/app/drafts/{number}/")).status == 302, "no session was made"

    async with Phone(stack, "zhangkz") as phone:
        first = await phone.get(f"/app/drafts/{number}/")
        assert first.status == 200
        start = await phone.get_raw(f"/app/drafts/{number}/?again=1")
        assert start.status == 200, "a signed-in browser is not sent to sign in again"

    async with Phone(stack, "zhangkz") as phone:
        start = await phone.get_raw("/app/")
        to_callback = await phone.get_raw(start.headers["Location"])
        callback = to_callback.headers["Location"]
        assert (await phone.get(callback)).status == 200
        phone.jar.clear_domain(urlsplit(stack.bot_url).hostname or "")
        start = await phone.get_raw("/app/")  # a fresh session: its state, an old code
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        reused = await phone.get(f"/app/auth/callback?code={code}&state={state}")
        assert reused.status == 403 and "只能用一次" in reused.plain

    stack.sim.add_member("stranger", "外单位人员")  # a WeCom member who is not in [[staff]]
    async with Phone(stack, "stranger") as phone:
        page = await phone.get("/app/")
    assert page.status == 403 and "人员名单" in page.plain
    assert sim  # the simulator did all of the above


async def test_a_session_ends_after_its_hours(stack: Stack) -> None:
    async with Phone(stack, "zhangkz") as phone:
        assert (await phone.get("/app/")).status == 200
        assert (await phone.get_raw("/app/")).status == 200
        stack.clock.advance(hours=stack.settings.web.session_hours, seconds=1)  # type: ignore[attr-defined]
        assert (await phone.get_raw("/app/")).status == 302


async def test_a_reviewer_of_a_revision_sees_what_changed(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 通知\n{META}定于6月举行防汛演练。")
    await tap(stack, "wangxm", "同意")
    (draft,) = await drafts(stack)
    async with Phone(stack, "zhangkz") as phone:
        await phone.get(f"/app/drafts/{draft.id}/")  # reads version 1
        await phone.decide(draft.id or 0, "reject", opinion="时间写错了")
        await say(stack, "wangxm", f"/revise {draft.id}\n定于7月举行防汛演练。")
        await tap(stack, "wangxm", "同意")
        page = await phone.get(f"/app/drafts/{draft.id}/")
        assert "上次看的是第1版" in page.plain
        diff = await phone.get(f"/app/drafts/{draft.id}/?v=2&diff=1")
    assert "<del>6</del>" in diff.text and "<ins>7</ins>" in diff.text
    assert "增加 1 字，删除 1 字" in diff.plain


async def test_the_home_page_lists_my_pending_decisions_and_drafts(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    async with Phone(stack, "zhangkz") as phone:
        home = await phone.get("/app/")
    assert "待我审核（1）" in home.plain and f"{number}号《关于开展2025年防汛演练的通知》" in home.plain
    async with Phone(stack, "wangxm") as phone:
        home = await phone.get("/app/")
    assert "待我审核（0）" in home.plain and "我的投稿" in home.plain and "二审" not in home.plain


# ---------------------------------------------------------------- helpers


async def stored_content(stack: Stack, attachment: bytes) -> VersionContent:
    store = FileStore(stack.settings.storage.files_dir)
    sha = await store.put(attachment)
    ref = FileRef(
        role="attachment", sha256=sha, name="附件.pdf", content_type="application/pdf", size=len(attachment)
    )
    return VersionContent(body="正文", body_html="<p>正文</p>", files=(ref,))


async def create_draft_as(stack: Stack, userid: str, content: VersionContent) -> int:
    async with stack.db() as session, session.begin():
        work = Work(stack.settings, session, stack.clock, Outbox(session, stack.clock), user=userid)
        meta = DraftMeta(
            category="issued", source_kind="own", source_note="", disclosure="active", platforms=("website",)
        )
        done = await review.create_draft(work, "带附件的稿件", meta, content)
    await stack.drain()
    assert done.draft.id is not None
    return done.draft.id


async def test_the_ledger_shows_the_items_ticked_on_the_page(stack: Stack) -> None:
    number = await submitted_to_second_stage(stack)
    ticked = list(checklist_for(2)[:2])
    async with Phone(stack, "zhangkz") as phone:
        await phone.decide(number, "approve", opinion="已核", checks=ticked)
    await say(stack, "liuzr", "导出 2026-11-01 2026-11-30 台账")
    _, content = received_file(stack, "liuzr")
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    header = rows[1]
    (line,) = [r for r in rows[2:] if r[header.index("操作人")] == "张科长"]
    assert line[header.index("核对要点")] == "；".join(ticked)
    assert line[header.index("方式")] == "网页" and line[header.index("意见或理由")] == "已核"


async def test_the_workspace_address_without_its_slash_leads_to_the_workspace(stack: Stack) -> None:
    """The 应用主页 may be entered as {public_url}/app: it redirects to /app/, not a 404."""
    async with Phone(stack, "zhangkz") as phone:
        response = await phone.get_raw("/app")
    assert response.status == 302 and response.headers["Location"] == "/app/"

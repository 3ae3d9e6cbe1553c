"""The draft pages in a real headless chromium at phone size: WeCom sign-in from a card's link,
pictures, deciding on the page, the diff of a revision, and a layout that fits a phone screen."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from docx import Document
from docx.shared import Inches
from playwright.async_api import BrowserContext, ConsoleMessage, Page, expect

from bot.cli.stack import Stack
from bot.core.config import AccountSettings
from bot.documents.docx_html import docx_to_html
from bot.rules.content import FileRef, VersionContent
from bot.rules.submission import DraftMeta
from bot.services import review
from bot.services.scope import Work
from bot.simulator.wecom import SIM_USER_COOKIE
from bot.views import checklist_for
from bot.wecom.outbox import Outbox
from storage.accounts_repo import upsert_account
from storage.file_store import FileStore
from tests.flow import META, active_card, decisions, drafts, last_text, say, tap
from tests.test_web_after import LINK, approved

OpenPhone = Callable[[], Awaitable[BrowserContext]]

TITLE = "关于开展2025年防汛演练的通知"
OPENING = "各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。"
CLOSING = "请各单位于5月31日前报送参演人员名单。"
PICTURE_SIZE = (600, 200)  # wider than a phone: the page must scale it down


# ------------------------------------------------------ a .docx with a picture and a table


def striped_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of coloured vertical stripes, built by hand."""
    palette = [(26, 95, 180), (207, 34, 46), (26, 127, 55), (230, 170, 0)]
    row = b"".join(bytes(palette[(x * len(palette)) // width]) for x in range(width))
    raw = b"".join(b"\x00" + row for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def drill_docx() -> bytes:
    doc = Document()
    doc.add_paragraph(OPENING)
    doc.add_paragraph("演练安排如下表：")
    rows = [
        ("序号", "演练科目", "时间", "地点", "牵头单位", "参演人数"),
        ("1", "城区内涝排水抢险", "6月10日上午", "市防汛物资仓库", "市水务局", "120"),
        ("2", "山洪灾害群众转移避险", "6月12日下午", "示范县龙门镇", "示范县人民政府", "300"),
    ]
    table = doc.add_table(rows=len(rows), cols=len(rows[0]))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    doc.add_paragraph().add_run().add_picture(io.BytesIO(striped_png(*PICTURE_SIZE)), width=Inches(6))
    doc.add_paragraph(CLOSING)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


async def docx_draft_at_second_stage(stack: Stack) -> int:
    """王小明's draft from a .docx (its picture in the file store), past 一审: 二审 is
    张科长's or 孙科长's."""
    data = drill_docx()
    converted = docx_to_html(data)
    assert len(converted.images) == 1
    store = FileStore(stack.settings.storage.files_dir)
    files = [
        FileRef(
            "original",
            await store.put(data),
            "防汛演练通知.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            len(data),
        )
    ]
    for sha, (content_type, image) in converted.images.items():
        assert await store.put(image) == sha
        files.append(FileRef("image", sha, "文中图片", content_type, len(image)))
    content = VersionContent(body=converted.text, body_html=converted.html, source="docx", files=tuple(files))
    meta = DraftMeta(
        category="issued",
        source_kind="own",
        source_note="",
        disclosure="active",
        platforms=("website",),
    )
    async with stack.db() as session, session.begin():
        work = Work(stack.settings, session, stack.clock, Outbox(session, stack.clock), user="wangxm")
        done = await review.create_draft(work, TITLE, meta, content)
    await stack.drain()
    await tap(stack, "wangxm", "同意")
    (draft,) = await drafts(stack)
    assert draft.stage == 2 and draft.id == done.draft.id
    return draft.id


# ---------------------------------------------------------------- a phone in someone's hand


async def phone_of(open_phone: OpenPhone, stack: Stack, userid: str) -> Page:
    """`userid`'s phone: the simulator knows its holder by a cookie on the simulator's origin."""
    context = await open_phone()
    await context.add_cookies(
        [{"name": SIM_USER_COOKIE, "value": userid, "url": stack.settings.wecom.oauth_base}]
    )
    return await context.new_page()


def card_link(stack: Stack, userid: str) -> str:
    return str(active_card(stack, userid).payload["template_card"]["card_action"]["url"])


def navigations(page: Page) -> list[str]:
    """Every address the tab itself goes to (redirects included), in order."""
    seen: list[str] = []
    page.on(
        "request",
        lambda r: seen.append(r.url) if r.is_navigation_request() and r.frame == page.main_frame else None,
    )
    return seen


def troubles(page: Page) -> list[str]:
    """Console errors (a blocked resource under the security policy is one), script errors,
    failed loads and error responses: a page that works has none."""
    found: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # Chromium asks every origin for /favicon.ico on its own; the pages declare no icon.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            found.append(f"console: {message.text} at {message.location.get('url')}")

    page.on("console", console)
    page.on("pageerror", lambda e: found.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: found.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: found.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return found


# ---------------------------------------------------------------- tests


async def test_a_reviewer_opens_the_card_link_signs_in_through_wecom_and_reads_the_draft(
    sqlite_stack: Stack, phone: OpenPhone
) -> None:
    stack = sqlite_stack
    number = await docx_draft_at_second_stage(stack)
    link = card_link(stack, "zhangkz")
    assert link == f"{stack.bot_url}/app/drafts/{number}/"
    page = await phone_of(phone, stack, "zhangkz")
    went = navigations(page)
    response = await page.goto(link)  # waits for the load event: pictures included

    assert response is not None and response.status == 200
    # A browser keeps a fragment across redirects that set none: authorize's #wechat_redirect stays.
    assert page.url.split("#")[0] == link
    assert [u.split("?")[0] for u in went] == [
        link,
        f"{stack.settings.wecom.oauth_base}/connect/oauth2/authorize",
        f"{stack.bot_url}/app/auth/callback",
        link,
    ], "the card link → WeCom's authorize page → the bot's callback → back to the draft"
    await expect(page.locator("h1.title")).to_have_text(TITLE)
    await expect(page.get_by_text(OPENING)).to_be_visible()
    await expect(page.get_by_text(CLOSING)).to_be_visible()
    await expect(page.locator("#body td", has_text="山洪灾害群众转移避险")).to_be_visible()
    await expect(page.locator(".who")).to_have_text("张科长")
    picture = page.locator("#body img")
    await expect(picture).to_have_count(1)
    await expect(picture).to_be_visible()
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == PICTURE_SIZE[0]
    await expect(page.get_by_role("link", name="防汛演练通知.docx")).to_be_visible()


async def test_ticking_the_checklist_and_approving_on_the_page_moves_the_draft_on(
    sqlite_stack: Stack, phone: OpenPhone
) -> None:
    stack = sqlite_stack
    number = await docx_draft_at_second_stage(stack)
    other_card = active_card(stack, "sunkz").payload["template_card"]["task_id"]
    assert not [d for d in stack.sim.inbox("liuzr") if d.msgtype == "template_card"]
    page = await phone_of(phone, stack, "zhangkz")
    await page.goto(card_link(stack, "zhangkz"))

    items = checklist_for(2)
    ticked = [items[0], items[2]]
    for item in ticked:
        await page.get_by_label(item).check()
    await page.get_by_label("审核意见").fill("数据已核对，同意发布")
    await page.get_by_role("button", name="同意（不涉密）", exact=True).tap()

    flash = page.locator(".flash")
    await expect(flash).to_be_visible()
    await expect(flash).to_contain_text("二审")
    assert page.url == f"{stack.bot_url}/app/drafts/{number}/", "post/redirect/get back to the page"
    await expect(page.locator("#decide")).to_have_count(0)  # nothing left to decide here
    await stack.drain()

    (row,) = [d for d in await decisions(stack) if d.stage == 2]
    assert (row.reviewer_userid, row.decision, row.via) == ("zhangkz", "approve", "page")
    assert row.opinion == "数据已核对，同意发布"
    assert row.checklist == ticked
    assert not stack.sim.card(other_card).is_active_for("sunkz"), "孙科长's card greys: 二审 is decided"
    assert active_card(stack, "liuzr").payload["template_card"]["main_title"]["title"].startswith("【三审】")
    assert "二审已同意" in last_text(stack, "wangxm")


async def test_a_reviewer_of_a_revision_is_shown_what_changed_since_they_last_read(
    sqlite_stack: Stack, phone: OpenPhone
) -> None:
    stack = sqlite_stack
    await say(stack, "wangxm", f"/submit 通知\n{META}定于6月举行防汛演练，地点在滨江公园。")
    await tap(stack, "wangxm", "同意")
    (draft,) = await drafts(stack)
    page = await phone_of(phone, stack, "zhangkz")
    await page.goto(card_link(stack, "zhangkz"))  # reads version 1
    await page.get_by_label("审核意见").fill("时间写错了，应为7月")
    await page.get_by_role("button", name="不同意", exact=True).tap()
    await expect(page.locator(".flash")).to_be_visible()
    await stack.drain()
    assert "时间写错了" in last_text(stack, "wangxm")

    await say(stack, "wangxm", f"/revise {draft.id}\n定于7月举行防汛演练，地点在滨江公园。")
    await tap(stack, "wangxm", "同意")
    await page.goto(card_link(stack, "zhangkz"))  # the new card; the session is still there
    notice = page.locator(".notice")
    await expect(notice).to_contain_text("上次看的是第1版")
    await notice.get_by_role("link").tap()

    await expect(page).to_have_url(re.compile(r"/app/drafts/\d+/\?v=2&diff=1$"))
    diff = page.locator("#diff")
    await expect(diff).to_contain_text("增加 1 字，删除 1 字")
    await expect(diff.locator("del")).to_have_text("6")
    await expect(diff.locator("ins")).to_have_text("7")
    await expect(diff.locator("del")).to_be_visible()
    await expect(diff.locator("ins")).to_be_visible()
    # Deleted and inserted text must look different from the rest, not only be tagged so.
    colours = await diff.evaluate(
        "d => [d, d.querySelector('del'), d.querySelector('ins')]"
        ".map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(set(colours)) == 3, colours


async def test_the_draft_page_fits_a_phone_screen(
    sqlite_stack: Stack, phone: OpenPhone, tmp_path: Path
) -> None:
    stack = sqlite_stack
    await docx_draft_at_second_stage(stack)
    page = await phone_of(phone, stack, "zhangkz")
    problems = troubles(page)
    await page.goto(card_link(stack, "zhangkz"))
    await expect(page.locator("#body img")).to_be_visible()

    shot = tmp_path / "draft-phone.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")  # noqa: T201 - shown with -s, to look at the page
    assert shot.read_bytes().startswith(b"\x89PNG")
    widths = await page.evaluate(
        "() => ({page: document.scrollingElement.scrollWidth, screen: window.innerWidth,"
        " picture: document.querySelector('#body img').getBoundingClientRect().width,"
        " body: document.querySelector('#body').clientWidth})"
    )
    # On a phone, content wider than the screen makes the browser zoom out (innerWidth grows past
    # the device width) as well as scroll: both mean a page too small to read.
    phone_width = (page.viewport_size or {"width": 0})["width"]
    assert phone_width == 390
    assert widths["page"] <= widths["screen"] == phone_width, f"wider than the phone: {widths}"
    assert 0 < widths["picture"] <= widths["body"] < PICTURE_SIZE[0], "the wide picture is scaled to fit"
    # The stylesheet is applied under the page's security policy (no inline styles allowed).
    assert (
        await page.locator(".bar").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(26, 95, 180)"
    )
    # Buttons big enough for a thumb (about 44 CSS px, the usual touch-target guidance).
    for name in ("同意（不涉密）", "不同意", "涉密，不得公开"):
        box = await page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box is not None and box["height"] >= 40 and box["width"] >= 100, (name, box)
    assert problems == []


async def test_a_collector_submits_a_docx_with_a_picture_on_the_submit_page(
    sqlite_stack: Stack, phone: OpenPhone
) -> None:
    stack = sqlite_stack
    page = await phone_of(phone, stack, "wangxm")
    await page.goto(f"{stack.bot_url}/app/submit")
    await expect(page.get_by_role("heading", name="投稿送审")).to_be_visible()
    for radio in await page.locator("input[type=radio], input[type=checkbox]").all():
        assert not await radio.is_checked(), "nothing is pre-ticked: the submitter ticks (注3)"
    await page.get_by_label("标题").fill(TITLE)
    await page.get_by_label("制发类").check()
    await page.get_by_label("本机关制发信息").check()
    await page.get_by_label("主动公开").check()
    await page.get_by_label("政府网站").check()
    await page.get_by_label("上传 Word 文稿").set_input_files(
        files=[{"name": "防汛演练通知.docx", "mimeType": "application/octet-stream", "buffer": drill_docx()}]
    )
    await page.get_by_role("button", name="预览").tap()

    await expect(page.get_by_text("预览 · 尚未送审")).to_be_visible()
    await expect(page.locator(".body td", has_text="山洪灾害群众转移避险")).to_be_visible()
    picture = page.locator(".body img")
    await expect(picture).to_be_visible()
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == PICTURE_SIZE[0]
    assert await drafts(stack) == [], "a preview sends nothing"
    await page.get_by_role("button", name="确认送审").tap()

    await expect(page.locator(".flash")).to_contain_text("已收到投稿")
    (draft,) = await drafts(stack)
    assert page.url.split("#")[0] == f"{stack.bot_url}/app/drafts/{draft.id}/"
    await expect(page.locator("#body img")).to_be_visible()
    await expect(page.get_by_role("link", name="防汛演练通知.docx")).to_be_visible()
    await stack.drain()
    assert (
        active_card(stack, "zhaoli")
        .payload["template_card"]["card_action"]["url"]
        .endswith(f"/app/drafts/{draft.id}/")
    )


async def test_after_approval_a_publisher_records_the_publication_on_a_phone(
    sqlite_stack: Stack, phone: OpenPhone, tmp_path: Path
) -> None:
    stack = sqlite_stack
    async with stack.db() as session, session.begin():
        await upsert_account(
            session=session,
            settings=stack.settings,
            at=stack.clock.now(),
            data=AccountSettings(name="示范发布", platform="微信公众号", owners=("zhaoli",)),
        )
    number = await approved(stack)
    page = await phone_of(phone, stack, "chenfb")
    problems = troubles(page)
    await page.goto(f"{stack.bot_url}/app/drafts/{number}/")
    await expect(page.locator("#publish")).to_be_visible()
    await expect(page.locator("#correct")).to_contain_text("纠错或撤稿")
    shot = tmp_path / "after-approval-phone.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")  # noqa: T201 - shown with -s, to look at the page
    widths = await page.evaluate(
        "() => ({page: document.scrollingElement.scrollWidth, screen: window.innerWidth})"
    )
    assert widths["page"] <= widths["screen"] == 390, f"wider than the phone: {widths}"
    await page.select_option("#account", "示范发布")
    await page.fill("#url", LINK)
    await page.click("#publish button[type=submit]")
    await expect(page.locator("body")).to_contain_text("已在“示范发布”发布")
    assert not problems
    await stack.drain()
    assert "已在“示范发布”发布" in last_text(stack, "wangxm")

"""The 投稿 page: typed or .docx drafts with pictures and attachments, previewed, then sent; hostile files refused."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from sqlmodel import col, select

from bot.cli.browser import Page, Phone
from bot.cli.sample_docx import build_docx, png
from bot.cli.stack import Stack
from storage.models import AuditEntry, DraftVersion, Upload, VersionFile
from tests.flow import active_card, drafts, last_text, tap

CHOICES = [
    ("title", "关于开展防汛演练的通知"),
    ("category", "issued"),
    ("source_kind", "own"),
    ("disclosure", "active"),
    ("platforms", "website"),
    ("platforms", "newmedia"),
]


async def open_form(phone: Phone, path: str = "/app/submit") -> Page:
    page = await phone.get(path)
    assert page.status == 200, page.plain
    return page


async def preview(
    phone: Phone, form: Page, fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]] = ()
) -> Page:  # type: ignore[assignment]
    hidden = phone.fields(form)
    return await phone.post_form("/app/submit", [*hidden, *fields], list(files))


async def confirm(phone: Phone, shown: Page) -> Page:
    assert "确认送审" in shown.plain, shown.plain
    return await phone.post_form("/app/submit", phone.fields(shown))


def stored_files(stack: Stack) -> list[Path]:
    return [p for p in Path(stack.settings.storage.files_dir).rglob("*") if p.is_file()]


async def uploads(stack: Stack) -> list[Upload]:
    async with stack.db() as session:
        return list((await session.exec(select(Upload))).all())


async def test_nothing_is_pre_ticked_and_missing_choices_are_named(stack: Stack) -> None:
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        assert " checked" not in form.text, "the submitter ticks 来源/公开/平台 themselves (注3)"
        refused = await preview(phone, form, [("title", "通知"), ("body", "正文")])
    assert refused.status == 400
    for problem in ("信息类别", "信息来源", "公开属性", "发布平台"):
        assert problem in refused.plain
    assert await drafts(stack) == []


async def test_a_typed_draft_is_previewed_then_sent_for_review(stack: Stack) -> None:
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        shown = await preview(phone, form, [*CHOICES, ("body", "各有关单位：\n定于6月举行防汛演练。")])
        assert shown.status == 200 and "预览" in shown.plain and "定于6月举行防汛演练。" in shown.plain
        assert await drafts(stack) == [], "a preview sends nothing"
        sent = await confirm(phone, shown)
    assert sent.status == 200 and "已收到投稿" in sent.plain
    (draft,) = await drafts(stack)
    assert (draft.title, draft.platforms, draft.category) == (
        "关于开展防汛演练的通知",
        "website,newmedia",
        "issued",
    )
    assert sent.url.endswith(f"/app/drafts/{draft.id}/")
    assert active_card(stack, "zhaoli").payload["template_card"]["main_title"]["title"].startswith("【一审】")


async def test_a_docx_with_a_picture_and_a_table_keeps_them_and_its_hash_is_audited(stack: Stack) -> None:
    picture = png()
    docx = build_docx(
        heading="关于防汛演练的通知",
        paragraphs=["各有关单位：", "定于6月举行演练。"],
        table=[["单位", "人数"], ["应急局", "12"]],
        picture=picture,
    )
    attachment = b"%PDF-1.4\n%demo\n"
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        shown = await preview(
            phone, form, CHOICES, [("docx", "防汛通知.docx", docx), ("attachments", "名单.pdf", attachment)]
        )
        assert "<table>" in shown.text and "应急局" in shown.plain
        (src,) = re.findall(r'<img src="(files/[0-9a-f]{64})"', shown.text)
        image = await phone.http.get(phone.url("/app/" + src))
        assert image.status == 200 and await image.read() == picture
        sent = await confirm(phone, shown)
    (draft,) = await drafts(stack)
    async with stack.db() as session:
        version = (await session.exec(select(DraftVersion))).one()
        files = (await session.exec(select(VersionFile).order_by(col(VersionFile.id)))).all()
        submit = (await session.exec(select(AuditEntry).where(AuditEntry.action == "submit"))).one()
    assert version.source == "docx" and "定于6月举行演练。" in version.body
    assert sorted(f.role for f in files) == ["attachment", "image", "original"]
    assert submit.details["content_sha256"] == version.content_sha256 != ""
    assert sorted(submit.details["files"]) == sorted(f"{f.role}:{f.sha256}" for f in files)
    async with Phone(stack, "zhangkz") as reviewer:  # a reviewer reads it with its picture
        page = await reviewer.get(f"/app/drafts/{draft.id}/")
        assert "<table>" in page.text and "应急局" in page.plain and "名单.pdf" in page.plain
        image = await reviewer.http.get(reviewer.url(f"/app/drafts/{draft.id}/{src}"))
        assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    async with Phone(stack, "zhaoli") as other:  # an upload is only its uploader's before sending
        assert (await other.get("/app/" + src)).status == 404
    assert sent.status == 200


async def test_a_renamed_exe_an_oversize_file_and_a_zip_bomb_store_nothing(stack: Stack) -> None:
    exe = b"MZ\x90\x00" + b"\x00" * 2000
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        renamed = await preview(phone, form, CHOICES, [("docx", "通知.docx", exe)])
        assert renamed.status == 400 and "文件类型不受支持" in renamed.plain
        bomb = await preview(phone, form, CHOICES, [("docx", "炸弹.docx", zip_bomb())])
        assert bomb.status == 400 and "炸弹.docx" in bomb.plain
        too_big = await preview(
            phone, form, CHOICES, [("attachments", "大文件.pdf", b"%PDF-1.4\n" + b"0" * (21 * 1024 * 1024))]
        )
        assert too_big.status == 413 and "20 MB" in too_big.plain
    assert stored_files(stack) == [] and await uploads(stack) == [] and await drafts(stack) == []


async def test_a_confirm_naming_someone_elses_upload_is_refused(stack: Stack) -> None:
    async with Phone(stack, "zhaoli") as other:
        form = await open_form(other)
        shown = await preview(
            other, form, [*CHOICES, ("body", "正文")], [("attachments", "内部.pdf", b"%PDF-1.4 internal")]
        )
        (sha,) = [v for n, v in other.fields(shown) if n == "kept_attachments"]
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        shown = await preview(phone, form, [*CHOICES, ("body", "正文")])
        forged = await phone.post_form("/app/submit", [*phone.fields(shown), ("kept_attachments", sha)])
    assert forged.status == 400 and "已失效" in forged.plain
    assert await drafts(stack) == []


async def test_a_form_without_its_csrf_token_is_refused(stack: Stack) -> None:
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        fields = [(n, v) for n, v in phone.fields(form) if n != "csrf"]
        refused = await phone.post_form("/app/submit", [*fields, *CHOICES, ("body", "正文")])
    assert refused.status == 403 and await drafts(stack) == []


async def test_a_rejected_draft_is_revised_on_the_page_from_the_link_in_the_rejection(stack: Stack) -> None:
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        await confirm(phone, await preview(phone, form, [*CHOICES, ("body", "定于6月举行防汛演练。")]))
    (draft,) = await drafts(stack)
    await tap(stack, "wangxm", "同意")
    async with Phone(stack, "zhangkz") as reviewer:
        await reviewer.decide(draft.id or 0, "reject", opinion="时间有误")
    notice = last_text(stack, "wangxm")
    link = re.search(r"(http://\S+/app/submit\?revise=\d+)", notice)
    assert link, notice
    async with Phone(stack, "zhangkz") as reviewer:
        assert (await reviewer.get(link.group(1))).status == 403, "only the submitter revises"
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone, link.group(1))
        assert "将成为第2版" in form.plain
        sent = await confirm(phone, await preview(phone, form, [("body", "定于7月举行防汛演练。")]))
    assert "第2版" in sent.plain
    (draft,) = await drafts(stack)
    assert (draft.version, draft.stage, draft.status) == (2, 1, "in_review")


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("word/document.xml", "<w:document/>")
        with package.open("word/media/zeros.bin", "w") as member:
            chunk = b"\x00" * (1024 * 1024)
            for _ in range(150):
                member.write(chunk)
    return out.getvalue()


async def test_an_ordinary_upload_of_a_few_megabytes_goes_through(stack: Stack) -> None:
    attachment = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)  # bigger than the callback's 512 KiB body limit
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        shown = await preview(
            phone, form, [*CHOICES, ("body", "正文")], [("attachments", "名单.pdf", attachment)]
        )
        assert shown.status == 200 and "名单.pdf" in shown.plain, shown.plain[:200]
        await confirm(phone, shown)
    assert len(await drafts(stack)) == 1


async def test_the_same_picture_in_the_docx_and_among_the_pictures_is_stored_once(stack: Stack) -> None:
    picture = png()
    docx = build_docx(heading="通知", paragraphs=["正文"], picture=picture)
    async with Phone(stack, "wangxm") as phone:
        form = await open_form(phone)
        shown = await preview(
            phone, form, CHOICES, [("docx", "通知.docx", docx), ("pictures", "图.png", picture)]
        )
        sent = await confirm(phone, shown)
    assert sent.status == 200 and "已收到投稿" in sent.plain
    async with stack.db() as session:
        images = (await session.exec(select(VersionFile).where(VersionFile.role == "image"))).all()
    assert len(images) == 1


async def test_odd_digits_and_non_ascii_tokens_get_an_answer_not_a_crash(stack: Stack) -> None:
    async with Phone(stack, "wangxm") as phone:
        odd = await phone.get("/app/submit?revise=²")
        form = await open_form(phone)
        fields = [(n, "令牌" if n == "csrf" else v) for n, v in phone.fields(form)]
        forged = await phone.post_form("/app/submit", [*fields, *CHOICES, ("body", "正文")])
    assert odd.status == 404 and forged.status == 403

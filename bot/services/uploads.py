"""Uploaded drafts: checking and storing a person's files, and turning them into a version's content."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlmodel import select

from bot.core.errors import UserFacingError
from bot.documents.docx_html import (
    ConvertedDocument,
    DocumentConversionError,
    docx_to_html,
    text_to_html,
)
from bot.documents.uploads import StoredKind, UploadRejected, check_upload
from bot.rules.content import FileRef, FileRole, VersionContent
from bot.services.scope import Scope
from storage.file_store import SHA256_RE, FileStore
from storage.models import Upload

# What each field of the 投稿 form accepts, judged by content (bot.documents.uploads.sniff).
DOCX, PICTURES, ATTACHMENTS = (
    frozenset({"docx"}),
    frozenset({"png", "jpeg"}),
    frozenset({"pdf", "xlsx", "docx"}),
)
MAX_FILES = 20


@dataclass(frozen=True)
class Incoming:
    """One file as the browser sent it: the form field, the name it claims, its bytes."""

    field: str  # docx | pictures | attachments
    name: str
    data: bytes


ALLOWED_BY_FIELD = {"docx": DOCX, "pictures": PICTURES, "attachments": ATTACHMENTS}


@dataclass(frozen=True)
class Accepted:
    """What an upload step stored: the uploads per form field, and the .docx as converted (so
    the preview that follows does not convert it a second time)."""

    uploads: dict[str, list[Upload]]
    converted: dict[str, ConvertedDocument]  # sha256 of the .docx → its conversion


async def accept_uploads(
    scope: Scope, store: FileStore, incoming: Sequence[Incoming], *, max_bytes: int
) -> Accepted:
    """Check every file first (all or nothing: a refused file stores none), then store them
    and remember that `scope.user` uploaded them."""
    if len(incoming) > MAX_FILES:
        raise UserFacingError(f"一次最多上传 {MAX_FILES} 个文件。")
    checked: list[tuple[Incoming, StoredKind]] = []
    for item in incoming:
        try:
            kind = check_upload(
                item.name, item.data, max_bytes=max_bytes, allowed=ALLOWED_BY_FIELD[item.field]
            )
        except UploadRejected as exc:
            scope.log.warning("upload %r by %s refused: %s", item.name[:60], scope.user, exc.message)
            raise UserFacingError(f"“{item.name[:60]}”：{exc.message}") from None
        checked.append((item, kind))
    if sum(item.field == "docx" for item, _ in checked) > 1:
        raise UserFacingError("一次只能上传一份 Word 文稿（.docx）；其他文件请作为附件上传。")
    converted: dict[str, ConvertedDocument] = {}
    for item, kind in checked:
        if item.field == "docx":
            try:
                converted[kind.sha256] = await convert(item.data)
            except DocumentConversionError as exc:
                raise UserFacingError(f"“{item.name[:60]}”：{exc.message}") from None
    result: dict[str, list[Upload]] = {"docx": [], "pictures": [], "attachments": []}
    for item, kind in checked:
        sha = await store.put(item.data)
        result[item.field].append(
            await _remember(scope, sha, kind.kind, kind.display_name, kind.content_type, kind.size)
        )
    images = [image for document in converted.values() for image in document.images.values()]
    for number, (content_type, data) in enumerate(images, start=1):
        sha = await store.put(data)  # pictures inside a .docx: the preview shows them too
        await _remember(scope, sha, content_type.split("/")[1], f"文中图片{number}", content_type, len(data))
    return Accepted(result, converted)


async def _remember(scope: Scope, sha: str, kind: str, name: str, content_type: str, size: int) -> Upload:
    existing = await own_upload(scope, sha)
    if existing is not None:
        return existing
    row = Upload(
        userid=scope.user,
        sha256=sha,
        kind=kind,
        name=name[:200],
        content_type=content_type,
        size=size,
        created_at=scope.now(),
    )
    scope.session.add(row)
    await scope.session.flush()
    return row


async def own_upload(scope: Scope, sha: str) -> Upload | None:
    """The upload `scope.user` made with this hash; a hash someone else uploaded is no one's here."""
    if not SHA256_RE.fullmatch(sha):
        return None
    statement = select(Upload).where(Upload.userid == scope.user, Upload.sha256 == sha)
    return (await scope.session.exec(statement)).first()


async def _owned(scope: Scope, shas: Sequence[str], kinds: frozenset[str]) -> list[Upload]:
    rows = []
    for sha in dict.fromkeys(shas):
        row = await own_upload(scope, sha)
        if row is None or row.kind not in kinds:
            scope.log.warning("submission by %s names a file it did not upload: %s", scope.user, sha[:16])
            raise UserFacingError("所选文件已失效，请重新上传后再预览。")
        rows.append(row)
    return rows


async def content_from_uploads(
    scope: Scope,
    store: FileStore,
    *,
    body: str,
    docx: str | None,
    pictures: Sequence[str],
    attachments: Sequence[str],
    converted: Mapping[str, ConvertedDocument] | None = None,
) -> VersionContent:
    """The version's content from a typed body or an uploaded .docx, plus pictures and files.
    The .docx is converted from the stored original (what the browser sent back is never
    trusted), unless `converted` holds the conversion this same request just made."""
    files: list[FileRef] = []
    source: Literal["text", "docx"]
    if docx:
        (original,) = await _owned(scope, [docx], DOCX)
        try:
            document = (converted or {}).get(original.sha256) or await convert(
                await store.read(original.sha256)
            )
        except DocumentConversionError as exc:
            raise UserFacingError(exc.message) from None
        text, body_html, source = document.text, document.html, "docx"
        files.append(_ref("original", original))
        for sha, (content_type, data) in document.images.items():
            files.append(FileRef("image", sha, "文中图片", content_type, len(data)))
    else:
        text, body_html, source = body.strip(), text_to_html(body), "text"
    picture_rows = await _owned(scope, pictures, PICTURES)
    for row in picture_rows:
        files.append(_ref("image", row))
        body_html += f'<p><img src="files/{row.sha256}" alt="{html.escape(row.name)}"></p>'
    files.extend(_ref("attachment", row) for row in await _owned(scope, attachments, ATTACHMENTS))
    if not text and not picture_rows:
        raise UserFacingError("正文不能为空：请填写正文，或上传 .docx 文稿。")
    unique = tuple(
        {(f.role, f.sha256): f for f in files}.values()
    )  # a picture both in the .docx and uploaded
    return VersionContent(body=text, body_html=body_html, source=source, files=unique)


async def convert(data: bytes) -> ConvertedDocument:
    """.docx → HTML in a worker thread: a large document must not stall callbacks and pages."""
    return await asyncio.to_thread(docx_to_html, data)


def _ref(role: FileRole, row: Upload) -> FileRef:
    return FileRef(role, row.sha256, row.name, row.content_type, row.size)

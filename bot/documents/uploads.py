"""Accepting an uploaded file: type sniffed from its bytes, size limits and the zip-bomb guard."""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass

# The kinds this module can recognise, in the order they are listed to users.
KINDS: tuple[str, ...] = ("docx", "pdf", "xlsx", "jpeg", "png")

DEFAULT_ALLOWED: frozenset[str] = frozenset(KINDS)
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
}
_EXTENSIONS = {"docx": "docx", "xlsx": "xlsx", "pdf": "pdf", "png": "png", "jpeg": "jpg"}

# Zip-bomb guard. The documents we accept are parsed in memory afterwards (mammoth,
# openpyxl), so the cap on the total uncompressed size is an absolute memory bound rather
# than a multiple of the upload: 100 MiB is far above any real draft (pictures are stored
# already compressed, so a 20 MB docx full of photos expands to little more than 20 MB),
# yet small enough to parse safely on a 2-core box. Per member, OOXML XML deflates at
# roughly 5-30x and very repetitive spreadsheets reach ~100x; deflate's ceiling is ~1030x,
# which is what a bomb uses. Members below 1 MiB are never a threat whatever their ratio.
MAX_TOTAL_UNCOMPRESSED = 100 * 1024 * 1024
MAX_MEMBERS = 2000
MAX_MEMBER_RATIO = 200
# The XML a converter parses whole: a real 100-page document.xml is a few MiB; 16 MiB of it
# already takes seconds to convert.
MAX_XML_MEMBER = 16 * 1024 * 1024
# Parts that pull in code or remote content when the file is opened: embedded OLE objects and
# ActiveX controls (a docx/xlsx with them is refused like a macro document).
_ACTIVE_PARTS = ("/embeddings/", "/activex/")
_REMOTE_TYPES = re.compile(rb'Type="[^"]*/(attachedTemplate|oleObject|subDocument|frame|externalLinkPath)"')
_RATIO_CHECK_FLOOR = 1024 * 1024

# Declared sizes come from the central directory; they can lie, but zipfile never
# inflates past the declared file_size (ZipExtFile truncates at it and then fails the CRC),
# so whatever parses the archive later is bounded by the numbers checked here.

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PDF_MAGIC = b"%PDF-"

_MAX_NAME_CHARS = 120


class UploadRejected(ValueError):
    """An upload refused; ``message`` is the Chinese text to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredKind:
    """What an accepted upload really is, as decided from its content."""

    kind: str  # one of KINDS
    content_type: str
    extension: str  # without the dot, from the content ("jpg" for jpeg)
    size: int
    sha256: str
    display_name: str  # the user's file name, cleaned, ending in the true extension


def content_address(data: bytes) -> str:
    """The sha256 hex digest used as the file's storage key."""
    return hashlib.sha256(data).hexdigest()


def sniff(data: bytes) -> str | None:
    """The kind of ``data`` judged by its bytes alone, or None when it is none we accept."""
    if data.startswith(_PDF_MAGIC):
        return "pdf"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return _ooxml_kind(set(zf.namelist()))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            return None
    return None


def _ooxml_kind(names: set[str]) -> str | None:
    if "[Content_Types].xml" not in names:
        return None
    is_docx = "word/document.xml" in names
    is_xlsx = "xl/workbook.xml" in names
    if is_docx and not is_xlsx:
        return "docx"
    if is_xlsx and not is_docx:
        return "xlsx"
    return None


def _format_mb(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.0f}" if mb == int(mb) else f"{mb:.1f}"


def _allowed_list(allowed: frozenset[str]) -> str:
    shown = [_EXTENSIONS[k] for k in KINDS if k in allowed]
    return "、".join(shown) if shown else "（无）"


def _clean_name(name: str, extension: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    stem = os.path.splitext(base)[0].strip(" .") or "未命名"
    stem = stem[: _MAX_NAME_CHARS - len(extension) - 1]
    return f"{stem}.{extension}"


def check_zip(data: bytes) -> None:
    """Refuse a corrupt, encrypted, macro-bearing or bomb-like zip; reads only the directory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UploadRejected("文件已损坏，无法读取，请重新导出后上传") from exc

    if len(infos) > MAX_MEMBERS:
        raise UploadRejected(f"文件结构异常：内部条目过多（超过 {MAX_MEMBERS} 个），已拒绝")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise UploadRejected("文件已加密，请取消密码保护后再上传")
        # OPC (the OOXML container) allows only stored and deflated members.
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UploadRejected("文件已损坏或格式异常，请用 Office/WPS 重新另存后上传")
        lowered = info.filename.lower()
        if lowered.endswith("vbaproject.bin"):
            raise UploadRejected("文件包含宏，已拒绝：请另存为不含宏的 docx/xlsx 后上传")
        if any(part in "/" + lowered for part in _ACTIVE_PARTS):
            raise UploadRejected("文件包含嵌入对象或控件，已拒绝：请删除嵌入对象后另存上传")
        if lowered.endswith(".xml") and info.file_size > MAX_XML_MEMBER:
            raise UploadRejected(
                f"文件内容过大（正文部分超过 {_format_mb(MAX_XML_MEMBER)} MB），请拆分后上传"
            )
        total += info.file_size
        if total > MAX_TOTAL_UNCOMPRESSED:
            limit = _format_mb(MAX_TOTAL_UNCOMPRESSED)
            raise UploadRejected(f"文件解压后过大（超过 {limit} MB），疑似压缩炸弹，已拒绝")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_CHECK_FLOOR and ratio > MAX_MEMBER_RATIO:
            raise UploadRejected("文件压缩比异常，疑似压缩炸弹，已拒绝")
    _refuse_remote_parts(data, [i for i in infos if i.filename.lower().endswith(".rels")])


def _refuse_remote_parts(data: bytes, rels: list[zipfile.ZipInfo]) -> None:
    """A remote template, OLE object, linked sub-document or frame is fetched when the file is
    opened (a known way to smuggle code into a Word file); ordinary hyperlinks are fine."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in rels:
            if info.file_size > 1024 * 1024:
                raise UploadRejected("文件结构异常（关系表过大），已拒绝")
            for relationship in re.findall(rb"<Relationship\b[^>]*>", zf.read(info)):
                if b'TargetMode="External"' in relationship and _REMOTE_TYPES.search(relationship):
                    raise UploadRejected("文件引用了外部模板或外部对象，已拒绝：请另存为普通文档后上传")


def check_upload(
    name: str,
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed: frozenset[str] = DEFAULT_ALLOWED,
) -> StoredKind:
    """Decide what an upload is from its content, or raise UploadRejected in Chinese."""
    if not data:
        raise UploadRejected("文件为空，请重新选择文件")
    if len(data) > max_bytes:
        raise UploadRejected(
            f"文件过大（{_format_mb(len(data))} MB）：单个文件不超过 {_format_mb(max_bytes)} MB"
        )
    unsupported = f"文件类型不受支持：仅限 {_allowed_list(allowed)}"
    if data.startswith(_OLE_MAGIC):
        # Legacy .doc/.xls, or an Office file protected with a password (also OLE).
        raise UploadRejected(
            f"{unsupported}。旧版 doc/xls 或加密的 Office 文件请另存为 docx/xlsx（不设密码）后上传"
        )
    if data.startswith(_ZIP_MAGIC):
        check_zip(data)
    kind = sniff(data)
    if kind is None or kind not in allowed:
        raise UploadRejected(unsupported)
    extension = _EXTENSIONS[kind]
    return StoredKind(
        kind=kind,
        content_type=_CONTENT_TYPES[kind],
        extension=extension,
        size=len(data),
        sha256=content_address(data),
        display_name=_clean_name(name, extension),
    )

"""Turning a .docx or a typed body into safe HTML: mammoth, image extraction, nh3 sanitising."""

from __future__ import annotations

import hashlib
import html
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mammoth
import mammoth.images
import nh3

from bot.documents.uploads import UploadRejected, check_zip

# Relative URL under which the web layer serves an extracted image by its content address.
IMAGE_URL_PREFIX = "files/"
_IMAGE_SRC = re.compile(r"files/[0-9a-f]{64}")

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6",
        "strong", "b", "em", "i", "u", "s", "sub", "sup", "br",
        "ul", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td",
        "img", "a", "blockquote",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "img": {"src", "alt"},
    "a": {"href"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# Dropped together with everything inside them (other unknown tags keep their text).
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

# Image types kept from a document, decided from the image bytes (not the docx's claim).
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

# After nh3 has serialised the fragment, attribute values are double-quoted with any '"'
# escaped, so this matches one whole <img> tag exactly.
_IMG_TAG = re.compile(r'<img(?:\s+[a-z-]+="[^"]*")*\s*/?>')


class DocumentConversionError(ValueError):
    """A .docx that could not be converted; ``message`` is the Chinese text for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ConvertedDocument:
    """A converted document: sanitised HTML, its plain text, its images and mammoth's notes."""

    html: str
    text: str
    # sha256 hex -> (content type, bytes); the HTML refers to each as src="files/<sha256>".
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src":
        return value if _IMAGE_SRC.fullmatch(value) else None
    if tag == "a" and attr == "href":
        v = value.strip()
        return v if v.lower().startswith(("http://", "https://")) else None
    if attr in ("colspan", "rowspan"):
        return value if value.isdigit() and 0 < int(value) <= 1000 else None
    return value


def _drop_unsourced_img(match: re.Match[str]) -> str:
    return match.group(0) if ' src="files/' in match.group(0) else ""


def sanitize_html(fragment: str) -> str:
    """Clean an HTML fragment through the allow-list; images survive only as files/<sha256>."""
    cleaned = nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    # An <img> whose src was refused is removed outright rather than left empty.
    return _IMG_TAG.sub(_drop_unsourced_img, cleaned)


def text_to_html(text: str) -> str:
    """A typed plain-text body as escaped paragraphs, one <p> per non-blank line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(f"<p>{html.escape(line.strip())}</p>" for line in lines if line.strip())


def _image_type(data: bytes) -> str | None:
    for magic, content_type in _IMAGE_MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def _image_converter(images: dict[str, tuple[str, bytes]], notes: list[str]) -> Callable[[Any], Any]:
    def convert(image: Any) -> dict[str, str]:
        try:
            with image.open() as fh:
                data = fh.read()
        except Exception:  # a missing part, or a linked image with external access off
            notes.append("已略去 1 张无法读取的图片（外部链接或已损坏）")
            return {}
        content_type = _image_type(data)
        if content_type is None:
            notes.append(f"已略去 1 张不支持的图片（{image.content_type or '未知格式'}）")
            return {}  # no src: sanitize_html removes the <img>
        sha = hashlib.sha256(data).hexdigest()
        images[sha] = (content_type, data)
        return {"src": IMAGE_URL_PREFIX + sha}

    return mammoth.images.img_element(convert)


def docx_to_html(data: bytes) -> ConvertedDocument:
    """Convert a .docx to sanitised HTML, its text and its images; no network, no disk."""
    try:
        check_zip(data)  # the zip-bomb guard again: mammoth inflates parts into memory
    except UploadRejected as exc:
        raise DocumentConversionError(exc.message) from exc

    images: dict[str, tuple[str, bytes]] = {}
    notes: list[str] = []
    try:
        result = mammoth.convert_to_html(
            io.BytesIO(data),
            convert_image=_image_converter(images, notes),
            external_file_access=False,
        )
        raw = mammoth.extract_raw_text(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise DocumentConversionError(
            "文档无法解析：请确认是有效的 docx 文件（可用 Word/WPS 重新另存）"
        ) from exc
    except Exception as exc:  # lxml/mammoth errors on malformed XML
        raise DocumentConversionError("文档内容格式异常，无法转换，请用 Word/WPS 重新另存后上传") from exc

    cleaned = sanitize_html(result.value)
    # Keep only the images the cleaned HTML still refers to.
    kept = {sha: img for sha, img in images.items() if f'src="{IMAGE_URL_PREFIX}{sha}"' in cleaned}
    text = re.sub(r"\n{3,}", "\n\n", raw.value.replace("\r\n", "\n")).strip()
    warnings = [f"{m.type}: {m.message}" for m in result.messages] + notes
    return ConvertedDocument(html=cleaned, text=text, images=kept, warnings=warnings)

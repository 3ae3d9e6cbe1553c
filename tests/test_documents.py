"""Tests for bot.documents: upload sniffing and guards, docx-to-HTML, sanitising and text diffs."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib

import pytest
from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches
from openpyxl import Workbook

from bot.documents.docx_html import (
    DocumentConversionError,
    docx_to_html,
    sanitize_html,
    text_to_html,
)
from bot.documents.textdiff import diff_html, diff_stats
from bot.documents.uploads import (
    DEFAULT_ALLOWED,
    UploadRejected,
    check_upload,
    content_address,
    sniff,
)

MiB = 1024 * 1024
IMG_SRC = re.compile(r'<img[^>]*\ssrc="([^"]*)"')


def tiny_png(rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid 1x1 RGB PNG built by hand."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + bytes(rgb))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def save(doc) -> bytes:
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def add_hyperlink(paragraph, url: str, text: str) -> None:
    r_id = paragraph.part.relate_to(url, RT.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), r_id)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def sample_docx(png: bytes) -> bytes:
    doc = Document()
    doc.add_heading("关于加强政务公开工作的通知", level=1)
    doc.add_paragraph("各区县人民政府，市政府各部门：")
    doc.add_paragraph("现将有关事项通知如下。")
    table = doc.add_table(rows=2, cols=2)
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            cell.text = f"单元格{r}{c}"
    doc.add_paragraph().add_run().add_picture(io.BytesIO(png), width=Inches(0.5))
    return save(doc)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


OOXML_SKELETON = {
    "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
    "word/document.xml": b'<?xml version="1.0"?><w:document/>',
}


# --- docx to HTML -----------------------------------------------------------------------


def test_docx_heading_table_and_picture_convert():
    png = tiny_png()
    out = docx_to_html(sample_docx(png))

    assert "<h1>关于加强政务公开工作的通知</h1>" in out.html
    assert "<table>" in out.html and "<td>" in out.html
    assert "单元格11" in out.html
    sha = hashlib.sha256(png).hexdigest()
    assert IMG_SRC.findall(out.html) == [f"files/{sha}"]
    assert out.images == {sha: ("image/png", png)}
    assert "现将有关事项通知如下。" in out.text
    assert "<" not in out.text


def test_docx_unsupported_image_is_dropped_with_warning():
    doc = Document()
    doc.add_paragraph("正文")
    doc.add_paragraph().add_run().add_picture(io.BytesIO(tiny_png()))
    blip = doc.inline_shapes[0]._inline.graphic.graphicData.pic.blipFill.blip
    doc.part.related_parts[blip.embed]._blob = b"\x01\x00\x00\x00 EMF-ish bytes"

    out = docx_to_html(save(doc))
    assert "<img" not in out.html
    assert out.images == {}
    assert any("不支持的图片" in w for w in out.warnings)


def test_hostile_docx_renders_inert():
    doc = Document()
    doc.add_paragraph("<script>alert(1)</script>")
    p = doc.add_paragraph("链接：")
    add_hyperlink(p, "javascript:alert(1)", "点我")
    add_hyperlink(doc.add_paragraph(), "https://www.gov.cn/", "中国政府网")
    # A picture whose blip is re-pointed at an external (linked) image.
    doc.add_paragraph().add_run().add_picture(io.BytesIO(tiny_png()))
    blip = doc.inline_shapes[0]._inline.graphic.graphicData.pic.blipFill.blip
    ext_id = doc.part.relate_to("http://evil.example/x.png", RT.IMAGE, is_external=True)
    del blip.attrib[qn("r:embed")]
    blip.set(qn("r:link"), ext_id)

    out = docx_to_html(save(doc))
    lowered = out.html.lower()
    assert "<script" not in lowered
    assert "&lt;script&gt;" in out.html  # shown as text, not run
    assert "javascript:" not in lowered
    assert "onerror" not in lowered
    assert "evil.example" not in lowered
    for src in IMG_SRC.findall(out.html):
        assert re.fullmatch(r"files/[0-9a-f]{64}", src)
    assert '<a href="https://www.gov.cn/" rel="noopener noreferrer">中国政府网</a>' in out.html
    assert out.images == {}
    assert any("无法读取的图片" in w for w in out.warnings)


def test_sanitize_html_strips_active_content():
    good = "files/" + "ab" * 32
    dirty = (
        '<p onclick="x()">正文<img src=x onerror=alert(1)>'
        '<a href="javascript:alert(1)">坏链接</a>'
        '<img src="http://evil/x.png"><img src="//evil/x.png">'
        "<style>p{color:red}</style><iframe src='http://evil/'>框</iframe>"
        f'<img src="{good}" alt="图" onerror="alert(1)">'
        "<script>alert(2)</script></p>"
        '<table><tr><td colspan="2" style="x">格</td></tr></table>'
    )
    out = sanitize_html(dirty)
    lowered = out.lower()
    banned = ("onerror", "onclick", "javascript:", "<style", "<iframe", "<script", "evil", "style=")
    for bad in banned:
        assert bad not in lowered, bad
    assert "alert(2)" not in out and "color:red" not in out
    assert IMG_SRC.findall(out) == [good]
    assert out.count("<img") == 1
    assert '<td colspan="2">格</td>' in out
    assert "正文" in out and "坏链接" in out


def test_text_to_html_escapes_and_paragraphs():
    typed = "第一段<b>&\r\n\r\n  第二段  \n"
    assert text_to_html(typed) == "<p>第一段&lt;b&gt;&amp;</p><p>第二段</p>"
    assert text_to_html("  \n") == ""


def test_corrupt_docx_raises_chinese_error():
    with pytest.raises(DocumentConversionError, match="docx"):
        docx_to_html(zip_bytes({"[Content_Types].xml": b"<Types/>", "hello.txt": b"x"}))


# --- upload sniffing and checks ---------------------------------------------------------


def xlsx_bytes() -> bytes:
    wb = Workbook()
    wb.active["A1"] = "值班表"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_sniff_by_content():
    assert sniff(sample_docx(tiny_png())) == "docx"
    assert sniff(xlsx_bytes()) == "xlsx"
    assert sniff(PDF) == "pdf"
    assert sniff(tiny_png()) == "png"
    assert sniff(JPEG) == "jpeg"
    assert sniff(b"MZ\x90\x00" + b"\x00" * 60) is None
    assert sniff(zip_bytes({"readme.txt": b"hi"})) is None
    assert sniff(b"PK\x03\x04garbage") is None


def test_check_upload_accepts_by_content_not_name():
    kind = check_upload("../../草稿\x00.txt", PDF, max_bytes=MiB, allowed=DEFAULT_ALLOWED)
    assert kind.kind == "pdf" and kind.content_type == "application/pdf"
    assert kind.display_name == "草稿.pdf"
    assert kind.sha256 == content_address(PDF) == hashlib.sha256(PDF).hexdigest()
    assert check_upload("x.jpeg", JPEG, max_bytes=MiB, allowed=DEFAULT_ALLOWED).extension == "jpg"
    assert check_upload("a", xlsx_bytes(), max_bytes=MiB, allowed=DEFAULT_ALLOWED).kind == "xlsx"


def test_renamed_exe_refused():
    exe = b"MZ\x90\x00\x03" + b"\x00" * 500
    with pytest.raises(UploadRejected) as err:
        check_upload("通知.docx", exe, max_bytes=MiB, allowed=DEFAULT_ALLOWED)
    assert "文件类型不受支持" in err.value.message
    assert "docx、pdf、xlsx、jpg、png" in err.value.message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (zip_bytes({"readme.txt": b"hi"}), "文件类型不受支持"),
        (b"PK\x03\x04" + b"\x00" * 100, "已损坏"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "旧版 doc/xls"),
        (zip_bytes({**OOXML_SKELETON, "word/vbaProject.bin": b"x"}), "宏"),
    ],
)
def test_other_refusals(data, needle):
    with pytest.raises(UploadRejected, match=needle):
        check_upload("a.docx", data, max_bytes=MiB, allowed=DEFAULT_ALLOWED)


def test_kind_not_in_allowed_refused():
    with pytest.raises(UploadRejected, match="仅限 docx、pdf$"):
        check_upload("a.png", tiny_png(), max_bytes=MiB, allowed=frozenset({"docx", "pdf"}))


def test_encrypted_zip_refused():
    data = bytearray(zip_bytes(OOXML_SKELETON))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig)
        while pos != -1:
            data[pos + flag_at] |= 0x01
            pos = data.find(sig, pos + 4)
    with pytest.raises(UploadRejected, match="已加密"):
        check_upload("a.docx", bytes(data), max_bytes=MiB, allowed=DEFAULT_ALLOWED)


def test_zip_bomb_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in OOXML_SKELETON.items():
            zf.writestr(name, body)
        chunk = bytes(MiB)
        with zf.open("word/media/image1.png", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(chunk)
    data = buf.getvalue()
    assert len(data) < 2 * MiB  # the bomb is small on the wire
    with pytest.raises(UploadRejected, match="压缩炸弹") as err:
        check_upload("a.docx", data, max_bytes=20 * MiB, allowed=DEFAULT_ALLOWED)
    assert "100 MB" in err.value.message
    with pytest.raises(DocumentConversionError, match="压缩炸弹"):
        docx_to_html(data)


def test_zip_member_ratio_refused():
    data = zip_bytes({**OOXML_SKELETON, "word/media/x.bin": bytes(5 * MiB)})
    with pytest.raises(UploadRejected, match="压缩比异常"):
        check_upload("a.docx", data, max_bytes=20 * MiB, allowed=DEFAULT_ALLOWED)


def test_too_many_members_refused():
    data = zip_bytes({**OOXML_SKELETON, **{f"word/m{i}.xml": b"" for i in range(2001)}})
    with pytest.raises(UploadRejected, match="条目过多"):
        check_upload("a.docx", data, max_bytes=20 * MiB, allowed=DEFAULT_ALLOWED)


def test_oversize_upload_names_limit():
    data = PDF + bytes(3 * MiB)
    with pytest.raises(UploadRejected, match="文件过大") as err:
        check_upload("big.pdf", data, max_bytes=2 * MiB, allowed=DEFAULT_ALLOWED)
    assert "不超过 2 MB" in err.value.message


def test_empty_upload_refused():
    with pytest.raises(UploadRejected, match="文件为空"):
        check_upload("a.docx", b"", max_bytes=MiB, allowed=DEFAULT_ALLOWED)


# --- text diff --------------------------------------------------------------------------


def test_diff_marks_changed_character():
    assert diff_html("今天天气很好", "今天天气不好") == "今天天气<del>很</del><ins>不</ins>好"
    assert diff_stats("今天天气很好", "今天天气不好") == (1, 1)
    assert diff_stats("通知", "通知如下") == (2, 0)
    assert diff_html("相同", "相同") == "相同"


def test_diff_escapes_html():
    out = diff_html('甲<a href="x">&', "甲<script>乙</script>&")
    assert "<a" not in out and "<script" not in out
    assert "&quot;" in out and "&amp;" in out
    assert re.sub(r"</?(?:ins|del)>", "", out).count("<") == 0
    assert diff_html("", "<script>x</script>&") == "<ins>&lt;script&gt;x&lt;/script&gt;&amp;</ins>"


def test_a_remote_template_or_embedded_object_is_refused_but_hyperlinks_are_fine():
    from bot.cli.sample_docx import build_docx

    plain = build_docx(heading="通知", paragraphs=["正文"])

    def with_member(name: str, content: bytes) -> bytes:
        out = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(plain)) as src,
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
        ):
            for item in src.infolist():
                dst.writestr(item, src.read(item))
            dst.writestr(name, content)
        return out.getvalue()

    template = with_member(
        "word/_rels/settings.xml.rels",
        (
            b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'attachedTemplate" Target="http://evil.example/t.dotm" TargetMode="External"/></Relationships>'
        ),
    )
    with pytest.raises(UploadRejected, match="外部模板"):
        check_upload("a.docx", template, max_bytes=10**7, allowed=frozenset({"docx"}))
    embedded = with_member("word/embeddings/oleObject1.bin", b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(UploadRejected, match="嵌入对象"):
        check_upload("b.docx", embedded, max_bytes=10**7, allowed=frozenset({"docx"}))
    link = with_member(
        "word/_rels/footnotes.xml.rels",
        (
            b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'hyperlink" Target="https://www.gov.cn/" TargetMode="External"/></Relationships>'
        ),
    )
    assert check_upload("c.docx", link, max_bytes=10**7, allowed=frozenset({"docx"})).kind == "docx"

"""The 投稿 page: a draft typed in or uploaded as .docx with pictures and attachments, previewed, then sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDictProxy

from bot import views
from bot.core.config import CATEGORY_LABELS
from bot.core.errors import UserFacingError
from bot.documents.docx_html import sanitize_html
from bot.rules.review_form import DISCLOSURES, PLATFORMS, SOURCE_KINDS
from bot.rules.submission import DraftMeta
from bot.services import review, uploads
from bot.web.auth import csrf_ok, csrf_token
from bot.web.pages import Workspace
from storage import drafts_repo
from storage.file_store import SHA256_RE

log = logging.getLogger(__name__)

FILE_FIELDS = ("docx", "pictures", "attachments")
TITLE_MAX = 200


@dataclass(frozen=True)
class Choices:
    """What the submitter ticked: nothing is pre-ticked (保密审查表 注3: the submitter ticks)."""

    title: str = ""
    category: str = ""
    source_kind: str = ""
    source_note: str = ""
    disclosure: str = ""
    platforms: tuple[str, ...] = ()
    body: str = ""
    important: bool = False

    @classmethod
    def of(cls, form: MultiDictProxy[Any]) -> Choices:
        return cls(
            title=_text(form.get("title")).strip()[:TITLE_MAX],
            category=_text(form.get("category")),
            source_kind=_text(form.get("source_kind")),
            source_note=_text(form.get("source_note")).strip()[:100],
            disclosure=_text(form.get("disclosure")),
            platforms=tuple(
                p for p in dict.fromkeys(_text(v) for v in form.getall("platforms", [])) if p in PLATFORMS
            ),
            body=_text(form.get("body")).replace("\r\n", "\n")[: review.MAX_BODY_CHARS + 1],
            important=_text(form.get("important")) == "yes",
        )

    def problems(self) -> list[str]:
        found = []
        if not self.title:
            found.append("请填写标题。")
        if self.category not in CATEGORY_LABELS:
            found.append("请选择信息类别（制发类、转载类或报送类）。")
        if self.source_kind not in SOURCE_KINDS:
            found.append("请选择信息来源。")
        elif self.source_kind != "own" and not self.source_note:
            found.append("转载或非本机关信息须注明来源（如：人民网）。")
        if self.disclosure not in DISCLOSURES:
            found.append("请选择公开属性（主动公开或依申请公开）。")
        if not self.platforms:
            found.append("请至少选择一个发布平台。")
        if len(self.body) > review.MAX_BODY_CHARS:
            found.append(f"正文过长（超过{review.MAX_BODY_CHARS}字）。")
        return found

    def meta(self) -> DraftMeta:
        return DraftMeta(
            source_kind=self.source_kind,
            source_note=self.source_note,
            disclosure=self.disclosure,
            platforms=self.platforms,
            category=self.category,
            important=self.important,
        )


@dataclass(frozen=True)
class SubmitPages:
    """GET shows the form, POST step=preview stores and shows, POST step=confirm submits."""

    workspace: Workspace

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/submit", self.form),
            web.post("/submit", self.post),
            web.get("/files/{sha256}", self.own_file),
        ]

    async def form(self, request: web.Request) -> web.StreamResponse:
        userid = await self.workspace.signed_in(request)
        if not isinstance(userid, str):
            return userid
        revise = await self.revisable(userid, request.query.get("revise"))
        if isinstance(revise, web.Response):
            return revise
        return await self.show_form(request, userid, Choices(), revise=revise)

    async def revisable(self, userid: str, number: str | None) -> dict[str, Any] | web.Response | None:
        """For ?revise=N: the draft's fixed details, if `userid` may revise it now."""
        if not number:
            return None
        if not (number.isascii() and number.isdigit()) or len(number) > 9:
            return self.workspace.message("稿件编号不正确。", status=404)
        async with self.workspace.work(userid, write=False) as work:
            draft = await drafts_repo.get_draft(session=work.session, draft_id=int(number))
            if draft is None or not await review.may_view(work, draft):
                return self.workspace.not_visible(userid, int(number))
            if draft.submitter_userid != userid:
                return self.workspace.message(f"只有投稿人可以修改{views.draft_label(draft)}。", status=403)
            if draft.status not in ("rejected", "in_review"):
                status = views.STATUS_LABELS.get(draft.status, draft.status)
                return self.workspace.message(
                    f"{views.draft_label(draft)}当前状态为“{status}”，不能再修改。", status=409
                )
            return {"id": draft.id, "label": views.draft_label(draft), "version": draft.version}

    async def show_form(
        self,
        request: web.Request,
        userid: str,
        choices: Choices,
        *,
        revise: dict[str, Any] | None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> web.Response:
        session = await get_session(request)
        return self.workspace.render(
            "submit.html",
            http_status=status,
            user_name=self.workspace.settings.name_of(userid),
            csrf=csrf_token(session),
            choices=choices,
            errors=errors or [],
            revise=revise,
            categories=CATEGORY_LABELS,
            sources=SOURCE_KINDS,
            disclosures=DISCLOSURES,
            platforms=PLATFORMS,
            max_mb=self.workspace.settings.web.max_upload_mb,
        )

    async def post(self, request: web.Request) -> web.StreamResponse:
        userid = await self.workspace.signed_in(request)
        if not isinstance(userid, str):
            return userid
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            log.warning("submission by %s refused: request too large", userid)
            return await self.show_form(
                request,
                userid,
                Choices(),
                revise=None,
                status=413,
                errors=[
                    f"上传的文件过大：合计不能超过 {self.workspace.settings.web.max_upload_mb} MB。未保存任何内容。"
                ],
            )
        incoming = _take_files(form)  # read and closed at once: large ones are temporary files
        session = await get_session(request)
        if not csrf_ok(session, _text(form.get("csrf")) or None):
            log.warning("submission by %s refused: bad CSRF token", userid)
            return self.workspace.message(
                "页面已过期（安全校验未通过），请刷新页面后重新提交。未做任何更改。", status=403
            )
        revise = await self.revisable(userid, _text(form.get("revise")) or None)
        if isinstance(revise, web.Response):
            return revise
        choices = Choices.of(form)
        problems = [] if revise else choices.problems()
        if revise and len(choices.body) > review.MAX_BODY_CHARS:
            problems.append(f"正文过长（超过{review.MAX_BODY_CHARS}字）。")
        if problems:
            return await self.show_form(request, userid, choices, revise=revise, errors=problems, status=400)
        if _text(form.get("step")) == "confirm":
            return await self.confirm(request, userid, choices, form, revise)
        return await self.preview(request, userid, choices, form, revise, incoming)

    async def preview(
        self,
        request: web.Request,
        userid: str,
        choices: Choices,
        form: MultiDictProxy[Any],
        revise: dict[str, Any] | None,
        incoming: list[uploads.Incoming],
    ) -> web.Response:
        try:
            async with self.workspace.work(userid, write=False) as work:
                accepted = await uploads.accept_uploads(
                    work,
                    self.workspace.files,
                    incoming,
                    max_bytes=self.workspace.settings.web.max_upload_mb * 1024 * 1024,
                )
                stored = accepted.uploads
                keep = {f: _shas(form.getall(f"kept_{f}", [])) for f in FILE_FIELDS}
                chosen = {f: [u.sha256 for u in stored[f]] or keep[f] for f in FILE_FIELDS}
                content = await uploads.content_from_uploads(
                    work,
                    self.workspace.files,
                    body=choices.body,
                    docx=chosen["docx"][0] if chosen["docx"] else None,
                    pictures=chosen["pictures"],
                    attachments=chosen["attachments"],
                    converted=accepted.converted,
                )
                names = {u.sha256: u.name for f in FILE_FIELDS for u in stored[f]}
                for sha in [s for f in FILE_FIELDS for s in chosen[f] if s not in names]:
                    row = await uploads.own_upload(work, sha)
                    names[sha] = row.name if row else sha[:8]
        except UserFacingError as exc:
            return await self.show_form(
                request, userid, choices, revise=revise, errors=[exc.message], status=400
            )
        session = await get_session(request)
        return self.workspace.render(
            "submit_preview.html",
            user_name=self.workspace.settings.name_of(userid),
            csrf=csrf_token(session),
            choices=choices,
            revise=revise,
            chosen=chosen,
            names=names,
            category=CATEGORY_LABELS.get(choices.category, ""),
            source=_source_label(choices),
            disclosure=DISCLOSURES.get(choices.disclosure, ""),
            platform_labels="，".join(PLATFORMS[p] for p in choices.platforms),
            body_html=sanitize_html(content.body_html),
            length=len(content.body),
            attachments=[f for f in content.files if f.role in ("attachment", "original")],
        )

    async def confirm(
        self,
        request: web.Request,
        userid: str,
        choices: Choices,
        form: MultiDictProxy[Any],
        revise: dict[str, Any] | None,
    ) -> web.StreamResponse:
        chosen = {f: _shas(form.getall(f"kept_{f}", [])) for f in FILE_FIELDS}
        try:
            async with self.workspace.work(userid, write=True) as work:
                content = await uploads.content_from_uploads(
                    work,
                    self.workspace.files,
                    body=choices.body,
                    docx=chosen["docx"][0] if chosen["docx"] else None,
                    pictures=chosen["pictures"],
                    attachments=chosen["attachments"],
                )
                if revise:
                    done = await review.revise_draft(work, int(revise["id"]), content)
                else:
                    done = await review.create_draft(work, choices.title, choices.meta(), content)
        except UserFacingError as exc:
            return await self.show_form(
                request, userid, choices, revise=revise, errors=[exc.message], status=400
            )
        session = await get_session(request)
        session["flash"] = done.message or "已送审。"
        raise web.HTTPSeeOther(f"/app/drafts/{done.draft.id}/")

    async def own_file(self, request: web.Request) -> web.StreamResponse:
        """A file the signed-in person uploaded (the preview shows its pictures from here)."""
        userid = await self.workspace.signed_in(request)
        if not isinstance(userid, str):
            return userid
        sha = request.match_info["sha256"]
        async with self.workspace.work(userid, write=False) as work:
            row = await uploads.own_upload(work, sha)
        if row is None or not self.workspace.files.has(sha):
            raise web.HTTPNotFound()
        response = web.Response(body=await self.workspace.files.read(sha), content_type=row.content_type)
        response.headers["Content-Disposition"] = (
            "inline" if row.content_type.startswith("image/") else "attachment"
        )
        return response


def _take_files(form: MultiDictProxy[Any]) -> list[uploads.Incoming]:
    """Every uploaded file of the form, read into memory (within the upload limit) and closed."""
    incoming = []
    for field in FILE_FIELDS:
        for item in form.getall(field, []):
            if not isinstance(item, web.FileField):
                continue
            try:
                if item.filename:
                    incoming.append(uploads.Incoming(field, item.filename, item.file.read()))
            finally:
                item.file.close()
    return incoming


def _source_label(choices: Choices) -> str:
    label = SOURCE_KINDS.get(choices.source_kind, "")
    return (
        f"{label}（{choices.source_note}）" if choices.source_note and choices.source_kind != "own" else label
    )


def _shas(values: list[Any]) -> list[str]:
    return [v for v in (_text(x) for x in values) if SHA256_RE.fullmatch(v)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""

"""The workspace pages: home, a draft (body, pictures, files, versions, diff, timeline), deciding on it,
and after it is approved: 登记发布, 发布后复核, 纠错 and 撤稿."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import views
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import UserFacingError
from bot.documents.docx_html import sanitize_html, text_to_html
from bot.documents.highlight import Span, highlight
from bot.documents.textdiff import diff_html, diff_stats
from bot.rules.finding_marks import MARK_LABELS
from bot.services import accounts, corrections, findings, proof, recheck, review
from bot.services.dashboard import may_see_dashboard
from bot.services.scope import Work, is_admin
from bot.web.auth import SignInRefused, WebAuth, csrf_ok, csrf_token
from bot.wecom.outbox import Outbox
from storage import drafts_repo, findings_repo
from storage.accounts_repo import accounts_by_remaining
from storage.audit_repo import entries_for_draft
from storage.db import SessionFactory
from storage.file_store import SHA256_RE, FileStore
from storage.models import Draft

log = logging.getLogger(__name__)

FLASH = "flash"
# Pages are private and script-free: nothing but this server's own styles, pictures and forms.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "application/pdf"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and errors carry the headers too
        _secure(exc)
        raise
    return _secure(response)


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )


@dataclass(frozen=True)
class Workspace:
    """Every page handler, with what it needs; `db` and `kick` exist once the app has started."""

    settings: Settings
    clock: Clock
    auth: WebAuth
    files: FileStore
    db: Callable[[], SessionFactory]
    kick: Callable[[], None]  # wake the outbox sender after a commit
    env: jinja2.Environment

    # ------------------------------------------------------------ plumbing

    def render(self, name: str, *, http_status: int = 200, **context: Any) -> web.Response:
        context.setdefault("flash", None)
        page = self.env.get_template(name).render(unit_name=self.settings.unit_name, **context)
        return web.Response(text=page, status=http_status, content_type="text/html", charset="utf-8")

    def message(self, text: str, *, status: int, title: str = "提示") -> web.Response:
        return self.render("message.html", http_status=status, title=title, text=text, user_name=None)

    @asynccontextmanager
    async def work(self, userid: str, *, write: bool) -> AsyncIterator[Work]:
        """One transaction as `userid`; committed on exit unless a UserFacingError escapes."""
        async with self.db()() as session, session.begin():
            yield Work(self.settings, session, self.clock, Outbox(session, self.clock), user=userid, log=log)
        if write:
            self.kick()

    async def signed_in(self, request: web.Request) -> str | web.StreamResponse:
        userid = await self.auth.user(request)
        if userid is not None:
            return userid
        if request.method != "GET":
            log.warning("%s %s without a session refused", request.method, request.path)
            return self.message("登录已过期，请回到企业微信重新打开本页面。未做任何更改。", status=403)
        raise await self.auth.sign_in_redirect(request)

    # ------------------------------------------------------------ sign-in

    async def sign_in_callback(self, request: web.Request) -> web.StreamResponse:
        try:
            target = await self.auth.finish_sign_in(request)
        except SignInRefused as exc:
            return self.message(exc.message, status=exc.status, title="无法登录")
        raise web.HTTPFound(target)

    # ------------------------------------------------------------ home

    async def home(self, request: web.Request) -> web.StreamResponse:
        userid = await self.signed_in(request)
        if not isinstance(userid, str):
            return userid
        async with self.work(userid, write=False) as work:
            pending = await review.my_pending(work)
            mine = await drafts_repo.list_submitted_by(session=work.session, userid=userid, limit=20)
            dashboard_shown = may_see_dashboard(work)
        return self.render(
            "home.html",
            user_name=self.settings.name_of(userid),
            pending=[
                {"draft": d, "stage": s, "since": views.local(d.stage_entered_at, self.settings.tz)}
                for d, s in pending
            ],
            mine=[{"draft": d, "status": views.STATUS_LABELS.get(d.status, d.status)} for d in mine],
            dashboard=dashboard_shown,
            flash=await pop_flash(request),
        )

    # ------------------------------------------------------------ one draft

    async def draft_redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/app/drafts/{request.match_info['draft_id']}/")

    async def draft(self, request: web.Request) -> web.StreamResponse:
        userid = await self.signed_in(request)
        if not isinstance(userid, str):
            return userid
        number = int(request.match_info["draft_id"])
        async with self.work(userid, write=False) as work:
            draft = await drafts_repo.get_draft(session=work.session, draft_id=number)
            if draft is None or not await review.may_view(work, draft):
                return self.not_visible(userid, number)
            context = await self.draft_context(work, draft, request.query)
        session = await get_session(request)
        return self.render(
            "draft.html",
            user_name=self.settings.name_of(userid),
            csrf=csrf_token(session),
            flash=await pop_flash(request),
            **context,
        )

    def not_visible(self, userid: str, number: int) -> web.Response:
        # The same answer whether the draft exists or not: ids cannot be probed.
        log.warning("draft page %s refused to %s", number, userid)
        return self.message(
            f"没有找到稿件{number}号，或您无权查看（仅投稿人、审核人、抄送人和负责人可查看）。", status=404
        )

    async def draft_context(self, work: Work, draft: Draft, query: Any) -> dict[str, Any]:
        assert draft.id is not None
        versions = list(await drafts_repo.list_versions(session=work.session, draft_id=draft.id))
        numbers = [v.version for v in versions]
        shown = _int(query.get("v"), draft.version)
        if shown not in numbers:
            shown = draft.version
        version = versions[numbers.index(shown)]
        files = await drafts_repo.list_version_files(session=work.session, draft_id=draft.id, version=shown)
        last_read = await drafts_repo.last_read_version(
            session=work.session, draft_id=draft.id, userid=work.user
        )
        await drafts_repo.mark_read(
            session=work.session, draft_id=draft.id, userid=work.user, version=shown, at=work.now()
        )
        against = _int(query.get("diff"), 0)
        diff = None
        if against in numbers and against != shown:
            old = versions[numbers.index(against)]
            inserted, deleted = diff_stats(old.body, version.body)
            diff = {
                "against": against,
                "html": diff_html(old.body, version.body),
                "inserted": inserted,
                "deleted": deleted,
            }
        chain = work.settings.chain_for(draft.category, draft.important)
        decisions = await review.current_decisions(work, draft)
        form = None
        reason = None
        proof_form = None
        if draft.status == "in_review" and draft.step == "proof":
            step_name, waiting = await review.waiting_on(work, draft)
            current_people = views.names(waiting, review.staff_names(work))
            try:
                _, open_step, _ = await proof.open_proof_for(work, draft)
            except UserFacingError as exc:
                reason = exc.message
            else:
                if shown == draft.version:
                    proof_form = {
                        "name": open_step.name,
                        "method": open_step.method,
                        "needed": open_step.needed,
                        "version": draft.version,
                        "round": draft.round,
                        "stage": draft.stage,
                    }
        elif draft.status == "in_review":
            people = await review.stage_people(work, chain, draft, decisions)
            reason = await review.refusal_for(work, chain, draft, None, decisions, people, quiet=True)
            if reason is None and shown == draft.version:
                form = {
                    "checklist": views.checklist_for(draft.stage),
                    "version": draft.version,
                    "round": draft.round,
                    "stage": draft.stage,
                    "secrecy": draft.stage == chain.secrecy_stage,
                }
            current_people = views.names(people.assignees, review.staff_names(work))
        else:
            current_people = ""
        entries = await entries_for_draft(session=work.session, draft_id=draft.id)
        marks = await findings_repo.marks_of(
            session=work.session, draft_id=draft.id, version=shown, userid=work.user
        )
        return {
            "draft": draft,
            "label": views.draft_label(draft),
            "status": views.STATUS_LABELS.get(draft.status, draft.status),
            "stage_name": self.step_label(chain, draft),
            "current_people": current_people,
            "category": views.CATEGORY_LABELS.get(draft.category, draft.category),
            "source": views.source_label(draft),
            "disclosure": views.DISCLOSURE_LABELS.get(draft.disclosure, draft.disclosure),
            "platforms": views.platforms_label(draft.platforms),
            "versions": numbers,
            "shown": shown,
            "version_row": version,
            "version_at": views.local(version.created_at, work.settings.tz),
            # Sanitised when stored, and again here: a page never trusts what it did not just clean.
            "body_html": highlight(
                sanitize_html(version.body_html or text_to_html(version.body)),
                version.body,
                [
                    Span(
                        f["start"],
                        f["end"],
                        f"f-{f['n']}",
                        "finding severe" if f["severity"] == "severe" else "finding",
                        views.finding_title(f),
                    )
                    for f in version.findings
                ],
            ),
            "attachments": [f for f in files if f.role in ("attachment", "original")],
            "changed_since": last_read if last_read is not None and last_read < shown else None,
            "diff": diff,
            "form": form,
            "proof_form": proof_form,
            "refusal": (
                reason
                if form is None
                and proof_form is None
                and draft.status == "in_review"
                and shown == draft.version
                else None
            ),
            "proofs": await drafts_repo.list_proofs(session=work.session, draft_id=draft.id, version=shown),
            "timeline": [views.describe(e, work.name_of, work.settings.tz) for e in entries],
            "findings": [
                views.finding_view(record, version.body, marks.get(record["n"], ""))
                for record in version.findings
            ],
            "findings_summary": views.findings_summary(draft) if shown == draft.version else "",
            "mark_labels": MARK_LABELS,
            "after": (
                await self.after_publishing(work, draft)
                if shown == draft.version
                else {"rechecks": [], "publish": [], "correct": None}
            ),
        }

    @staticmethod
    async def after_publishing(work: Work, draft: Draft) -> dict[str, Any]:
        """The forms this person may use once the draft passed 三审: its open re-checks given to
        them, 登记发布 (publishers), 纠错 (also its submitter) and 撤稿."""
        roles = work.member.roles if work.member is not None else ()
        admin = is_admin(work)
        after: dict[str, Any] = {"publish": [], "correct": None}
        after["rechecks"] = [
            {"id": r.id, "account": r.account, "due": views.local(r.due_at, work.settings.tz)}
            for r in await recheck.my_rechecks(work, draft.id)
        ]
        if draft.status == "approved":
            if admin or "publisher" in roles:
                after["publish"] = [a.name for a in await accounts_by_remaining(work.session, work.now())]
            acting = admin or any(r in roles for r in corrections.ACTING_ROLES)
            if acting or draft.submitter_userid == work.user:
                after["correct"] = {"kinds": list(corrections.ERROR_KINDS), "retract": acting}
        return after

    @staticmethod
    def step_label(chain: Any, draft: Draft) -> str:
        return review.step_name(chain, draft) if draft.status == "in_review" else ""

    # ------------------------------------------------------------ files

    async def file(self, request: web.Request) -> web.StreamResponse:
        userid = await self.signed_in(request)
        if not isinstance(userid, str):
            return userid
        number, sha = int(request.match_info["draft_id"]), request.match_info["sha256"]
        if not SHA256_RE.fullmatch(sha):
            raise web.HTTPNotFound()
        async with self.work(userid, write=False) as work:
            draft = await drafts_repo.get_draft(session=work.session, draft_id=number)
            if draft is None or not await review.may_view(work, draft):
                return self.not_visible(userid, number)
            record = await drafts_repo.draft_has_file(session=work.session, draft_id=number, sha256=sha)
        if record is None or not self.files.has(sha):
            log.warning("file %s of draft %s not found for %s", sha[:12], number, userid)
            raise web.HTTPNotFound()
        data = await self.files.read(sha)
        disposition = "inline" if record.content_type in INLINE_TYPES else "attachment"
        response = web.Response(body=data, content_type=record.content_type)
        response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(record.name)}"
        response.headers["Cache-Control"] = "private, no-store"  # gone from the phone when the session is
        return response

    # ------------------------------------------------------------ deciding

    async def posted_form(self, request: web.Request, what: str) -> tuple[str, int, Any] | web.StreamResponse:
        """A signed-in person's form on a draft page with a valid CSRF token: (userid, draft number,
        form), or the response that refuses it (nothing changes)."""
        userid = await self.signed_in(request)
        if not isinstance(userid, str):
            return userid
        number = int(request.match_info["draft_id"])
        form = await request.post()
        session = await get_session(request)
        if not csrf_ok(session, _text(form.get("csrf"))):
            log.warning("%s on draft %s by %s refused: bad CSRF token", what, number, userid)
            return self.message(
                "页面已过期（安全校验未通过），请刷新页面后重新提交。未做任何更改。", status=403
            )
        return userid, number, form

    @staticmethod
    async def locked_draft(work: Work, number: int) -> Draft | None:
        """The draft to change, locked in `work`'s transaction, or None when `work.user` may not
        see it (the same answer as for a draft that does not exist)."""
        draft = await drafts_repo.get_draft(session=work.session, draft_id=number, lock=True)
        return draft if draft is not None and await review.may_view(work, draft) else None

    async def on_draft(
        self,
        request: web.Request,
        userid: str,
        number: int,
        act: Callable[[Work, Draft], Awaitable[Any]],
        done_text: str,
    ) -> web.StreamResponse:
        """Run `act` on the locked draft in one transaction, then back to the page with its message."""
        page = f"/app/drafts/{number}/"
        try:
            async with self.work(userid, write=True) as work:
                draft = await self.locked_draft(work, number)
                if draft is None:
                    return self.not_visible(userid, number)
                done = await act(work, draft)
        except UserFacingError as exc:
            return await self.flash_back(request, page, exc.message)
        return await self.flash_back(request, page, done.message or done_text)

    async def decide(self, request: web.Request) -> web.StreamResponse:
        posted = await self.posted_form(request, "decision")
        if not isinstance(posted, tuple):
            return posted
        userid, number, form = posted
        decision = _text(form.get("decision")) or ""
        opinion = (_text(form.get("opinion")) or "").strip()[:2000]
        seen = _seen(form)
        ticked = [_text(v) or "" for v in form.getall("check", [])]
        marked = _marks(form)
        page = f"/app/drafts/{number}/"
        if decision not in ("approve", "reject", "classified"):
            return await self.flash_back(request, page, "请选择“同意”或“不同意”。")
        if decision in ("reject", "classified") and not opinion:
            return await self.flash_back(
                request, page, "选择“不同意”或“涉密不得公开”时须填写审核意见（理由）。"
            )

        if marked:  # the marks first, kept even if the decision is then refused (one still open)
            try:
                async with self.work(userid, write=True) as work:
                    draft = await self.locked_draft(work, number)
                    if draft is None:
                        return self.not_visible(userid, number)
                    if seen != (draft.version, draft.round, draft.stage):
                        raise UserFacingError(views.page_stale(draft))  # marked on another version
                    for mark, numbers in marked.items():
                        await findings.mark(work, draft, mark, numbers)
            except UserFacingError as exc:
                return await self.flash_back(request, page, exc.message)
        return await self.on_draft(
            request,
            userid,
            number,
            lambda work, draft: review.decide(
                work,
                draft,
                decision=decision,
                opinion=opinion,
                card=None,
                response_code=None,
                via="page",
                checklist=ticked,
                seen=seen,
            ),
            "已记录您的审核意见。",
        )

    async def sign_proof(self, request: web.Request) -> web.StreamResponse:
        """A proofreader signs the open 校 step on the page (校对无误, or 有修改 with the corrections)."""
        posted = await self.posted_form(request, "proof")
        if not isinstance(posted, tuple):
            return posted
        userid, number, form = posted
        result = _text(form.get("result")) or ""
        note = (_text(form.get("note")) or "").strip()[:2000]
        seen = _seen(form)
        if result not in proof.RESULTS:
            return await self.flash_back(request, f"/app/drafts/{number}/", "请选择“校对无误”或“有修改”。")
        return await self.on_draft(
            request,
            userid,
            number,
            lambda work, draft: proof.sign_proof(
                work, draft, result=result, note=note, card=None, response_code=None, via="page", seen=seen
            ),
            "已记录您的校对。",
        )

    # ------------------------------------------------------------ after publishing

    async def publish(self, request: web.Request) -> web.StreamResponse:
        """登记发布 on the page: the approved draft went out on an account (a link optional)."""
        posted = await self.posted_form(request, "publish")
        if not isinstance(posted, tuple):
            return posted
        userid, number, form = posted
        account, url = (_text(form.get("account")) or "").strip(), (_text(form.get("url")) or "").strip()
        if not account:
            return await self.flash_back(request, f"/app/drafts/{number}/", "请选择发布账号。")
        return await self.on_draft(
            request,
            userid,
            number,
            lambda work, draft: accounts.record_published(work, number, account, url),
            "",
        )

    async def answer_recheck(self, request: web.Request) -> web.StreamResponse:
        """发布后复核 on the page: 确认无误, or 发现问题 with what is wrong."""
        posted = await self.posted_form(request, "recheck")
        if not isinstance(posted, tuple):
            return posted
        userid, number, form = posted
        outcome, note = _text(form.get("outcome")) or "", (_text(form.get("note")) or "").strip()
        which = _int(form.get("recheck"), 0)
        if outcome not in ("ok", "problem") or not which:
            return await self.flash_back(request, f"/app/drafts/{number}/", "请选择“确认无误”或“发现问题”。")
        if outcome == "ok":
            note = ""  # 无误 takes no note (a note belongs to a problem)
        return await self.on_draft(
            request,
            userid,
            number,
            lambda work, draft: recheck.decide_recheck(work, which, outcome, note),
            "",
        )

    async def correct(self, request: web.Request) -> web.StreamResponse:
        """纠错 or 撤稿 on the page, with the 错情's kind and what is wrong."""
        posted = await self.posted_form(request, "correct")
        if not isinstance(posted, tuple):
            return posted
        userid, number, form = posted
        action, kind = _text(form.get("action")) or "", _text(form.get("kind")) or ""
        text = (_text(form.get("description")) or "").strip()
        if action not in ("correct", "retract"):
            return await self.flash_back(request, f"/app/drafts/{number}/", "请选择“纠错”或“撤稿”。")
        act = corrections.correct_draft if action == "correct" else corrections.retract_draft
        return await self.on_draft(
            request, userid, number, lambda work, draft: act(work, number, kind, text), ""
        )

    async def flash_back(self, request: web.Request, target: str, text: str) -> web.StreamResponse:
        """Post/redirect/get: the message shows once on the page the browser goes back to."""
        session = await get_session(request)
        session[FLASH] = text
        raise web.HTTPSeeOther(target)

    def routes(self) -> list[web.RouteDef]:
        """Paths inside the workspace sub-application (mounted at /app)."""
        return [
            web.get("/", self.home),
            web.get("/auth/callback", self.sign_in_callback),
            web.get(r"/drafts/{draft_id:\d{1,9}}", self.draft_redirect),
            web.get(r"/drafts/{draft_id:\d{1,9}}/", self.draft),
            web.get(r"/drafts/{draft_id:\d{1,9}}/files/{sha256}", self.file),
            web.post(r"/drafts/{draft_id:\d{1,9}}/decide", self.decide),
            web.post(r"/drafts/{draft_id:\d{1,9}}/proof", self.sign_proof),
            web.post(r"/drafts/{draft_id:\d{1,9}}/publish", self.publish),
            web.post(r"/drafts/{draft_id:\d{1,9}}/recheck", self.answer_recheck),
            web.post(r"/drafts/{draft_id:\d{1,9}}/correct", self.correct),
        ]


async def pop_flash(request: web.Request) -> str | None:
    session = await get_session(request)
    text = session.pop(FLASH, None)
    return str(text) if text else None


def _marks(form: Any) -> dict[str, list[int]]:
    """The 智能识错 marks a decision form carries (fields mark-<number>), by mark; unknown
    values and malformed numbers are ignored (the decision then says what is missing)."""
    marked: dict[str, list[int]] = {}
    for key in form:
        if not key.startswith("mark-"):
            continue
        number = _int(key.removeprefix("mark-"), 0)
        mark = _text(form.get(key)) or ""
        if number > 0 and mark in MARK_LABELS:
            marked.setdefault(mark, []).append(number)
    return marked


def _seen(form: Any) -> tuple[int, int, int]:
    """The (version, round, stage) a page's form was showing."""
    return (_int(form.get("version"), 0), _int(form.get("round"), 0), _int(form.get("stage"), 0))


def _int(value: Any, default: int) -> int:
    text = _text(value)
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 10 else default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""The outbox: messages queued in the caller's transaction, and the sender that delivers them.

Nothing is sent inside a transaction. A handler queues rows; they commit together with the
state change that caused them; the sender then claims due rows, calls WeCom and marks them. A
crash before the commit loses nothing (WeCom re-sends the callback); a crash after it loses
nothing (the rows are still pending and the sender resumes them after a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock, ensure_utc
from bot.core.config import OutboxSettings, Settings
from bot.wecom.client import RECIPIENT_ERRORS, WeComAPIError, WeComClient, WeComTransportError
from storage import at_commit, direct
from storage.audit_repo import append_audit
from storage.db import SessionFactory
from storage.models import ApprovalCard, CardHandle, DeliveryLog, OutboxMessage
from storage.schema import table_of

log = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 2048  # text and markdown content limit of message/send (docs/wecom.md §4.3)
CARD_TASK_EXISTS = 42014  # task_id already used: the card went out before a crash
# One row's claim; renewed before every API call, so it only has to outlast one call (the
# client's timeout is 10 s). An expired claim's holder is fenced off by its token.
CLAIM_FOR = timedelta(seconds=60)
# A claim taken this recently is still ours for most of CLAIM_FOR: the API call right after it
# needs no renewal (claims lapse only after CLAIM_FOR, so nobody can have taken the row over).
FRESH_CLAIM = timedelta(seconds=10)
# While callbacks are being applied the background loop waits before each message, at most
# this long (so under endless load it still sends a few a second).
GIVE_WAY_SECONDS = 0.25
_TABLE = table_of(OutboxMessage)  # plain statements: no ORM bookkeeping

# The sender's statements, built once with bind parameters and run on the driver's connection
# (storage.direct): the sender runs these for every message, and the ORM's bookkeeping around
# a statement cost more than the statement.
_UNCLAIMED = or_(_TABLE.c.claimed_until.is_(None), _TABLE.c.claimed_until < bindparam("now"))
_DUE = (_TABLE.c.status == "pending") & (_TABLE.c.not_before <= bindparam("now")) & _UNCLAIMED
_DUE_IDS = direct.Direct(select(_TABLE.c.id).where(_DUE).order_by(_TABLE.c.id).limit(bindparam("batch")))
_CLAIM = direct.Direct(
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"), _DUE)
    .values(claimed_until=bindparam("until"), claim_token=bindparam("token"))
)
_ROW = direct.Direct(_TABLE.select().where(_TABLE.c.id == bindparam("row_id")))
_TWIN = direct.Direct(
    select(_TABLE.c.id)
    .where(_TABLE.c.body_hash == bindparam("digest"), _TABLE.c.id != bindparam("row_id"))
    .where(_TABLE.c.first_try_at > bindparam("since"))
    .limit(1)
)
_DELIVERIES = table_of(DeliveryLog)


@functools.cache
def _recent_sends(people: int) -> direct.Direct:
    """Deliveries to `people` members (bound as to_0 …) since a moment, oldest first."""
    return direct.Direct(
        select(_DELIVERIES.c.userid, _DELIVERIES.c.sent_at)
        .where(_DELIVERIES.c.userid.in_([bindparam(f"to_{n}") for n in range(people)]))
        .where(_DELIVERIES.c.sent_at > bindparam("since"))
        .order_by(_DELIVERIES.c.sent_at)
    )


_LOG_DELIVERY = direct.Direct(
    insert(_DELIVERIES).values(userid=bindparam("to_user"), sent_at=bindparam("at"))
)
_CARDS = table_of(ApprovalCard)
_CARD_RESPONSE_CODE = direct.Direct(
    update(_CARDS).where(_CARDS.c.id == bindparam("card_id")).values(response_code=bindparam("code"))
)


@functools.cache
def _fenced_statement(columns: tuple[str, ...]) -> direct.Direct:
    """UPDATE of `columns` (bound as v_<column>) on a pending row still held by a token."""
    return direct.Direct(
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("row_id"), _TABLE.c.claim_token == bindparam("token"))
        .where(_TABLE.c.status == "pending")
        .values({column: bindparam(f"v_{column}") for column in columns})
    )


def _recipients(row: OutboxMessage) -> list[str]:
    return [u for u in row.recipients.split("|") if u]


def split_utf8(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Split text into chunks of at most `limit` UTF-8 bytes, preferring line breaks."""
    if len(text.encode("utf-8")) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode("utf-8")) > limit:  # a single over-long line: cut by characters
            head, line = _cut(line, limit - len(current.encode("utf-8")))
            current += head
            chunks.append(current)
            current = ""
        if len((current + line).encode("utf-8")) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    return [c.rstrip("\n") for c in chunks if c.strip()]


def _cut(line: str, budget: int) -> tuple[str, str]:
    """The longest head of `line` within `budget` UTF-8 bytes (no character cut), and the rest."""
    head = line.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return head, line[len(head) :]


OUTBOX_ROWS = "outbox"


FIRST = "_first"  # a queued row's mark: inserted (so delivered) before the others of its event
# A queued row's event within its transaction: callbacks applied together in one transaction
# (group commit, bot.wecom.dispatcher) keep their rows in event order, each event's FIRST ahead.
SEGMENT = "_segment"


# A queued row names what it carries; every other column takes its default.
_QUEUED_COLUMNS = ("created_at", "not_before", "op", "recipients", "payload", "card_id")
_DEFAULTS = {
    c.key: c.default.arg  # type: ignore[attr-defined]
    for c in _TABLE.columns
    if c.key not in _QUEUED_COLUMNS and not c.primary_key and c.default is not None and c.default.is_scalar
}
_INSERT_QUEUED = direct.Direct(
    insert(_TABLE).values({key: bindparam(key) for key in (*_QUEUED_COLUMNS, *_DEFAULTS)})
)
_INSERT_ALL_QUEUED = direct.each_as_arrays(_TABLE, _QUEUED_COLUMNS, constants=_DEFAULTS)


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    # Replies to the person who acted go first: a confirmation arrives before what it announces
    # (「已收到投稿」 before the draft's card, 「已记录您的同意」 before the next stage's), each
    # within its own event's rows when several events share the transaction.
    ordered = sorted(rows, key=lambda row: (row.pop(SEGMENT, 0), not row.pop(FIRST, False)))  # stable
    direct.run_many_soon_now(
        session, _TABLE.name, _INSERT_QUEUED, _INSERT_ALL_QUEUED, [_DEFAULTS | row for row in ordered]
    )


at_commit.on_commit(OUTBOX_ROWS, _insert_rows)


class Outbox:
    """Queues WeCom calls in a session; every method only adds rows (no I/O), which reach the
    database as the session's transaction commits."""

    def __init__(self, session: AsyncSession, clock: Clock, *, segment: int = 0) -> None:
        """`segment`: the event's place among those sharing the transaction (see SEGMENT)."""
        self._session = session
        self._clock = clock
        self._segment = segment

    def _add(
        self,
        op: str,
        payload: dict[str, Any],
        *,
        recipients: Sequence[str] = (),
        card_id: int | None = None,
        first: bool = False,
    ) -> None:
        if not recipients and op in ("send", "export"):
            # e.g. "tell the admins" in a unit that has none: WeCom refuses a message to nobody
            # (81013) and the row would hold back every other row without recipients (card updates)
            log.warning("outbox: a %s to nobody is not queued", op)
            return
        now = self._clock.now()
        row = {
            "created_at": now,
            "not_before": now,
            "op": op,
            "recipients": "|".join(recipients),
            "payload": payload,
            "card_id": card_id,
            FIRST: first,
            SEGMENT: self._segment,
        }
        # Added as the transaction commits, with the other rows it queued: one INSERT for all.
        at_commit.queue(self._session.sync_session, OUTBOX_ROWS, row)

    def send_text(self, users: Sequence[str], text: str, *, first: bool = False) -> None:
        """Plain text, split into several messages when over 2048 bytes; `first`: before every
        other message this transaction queues (a reply confirming what the rest announces)."""
        for chunk in split_utf8(text):
            message = {"touser": "|".join(users), "msgtype": "text", "text": {"content": chunk}}
            self._add("send", message, recipients=users, first=first)

    def send_card(
        self, users: Sequence[str], card: dict[str, Any], *, card_id: int | None = None, subject: str = ""
    ) -> None:
        """A template card. WeCom's response_code is kept for an ApprovalCard (`card_id`) or,
        with a `subject`, in a CardHandle, so that `close_cards(subject)` can grey it later."""
        message = {"touser": "|".join(users), "msgtype": "template_card", "template_card": card}
        self._add("send", message, recipients=users, card_id=card_id)
        if subject:
            self._session.add(
                CardHandle(task_id=card["task_id"], subject=subject, created_at=self._clock.now())
            )

    async def close_cards(self, subject: str, *, replace_name: str, keep: str = "") -> None:
        """Grey every still-open card of `subject` for all holders, except task `keep`."""
        handles = await self._session.exec(
            select(CardHandle).where(CardHandle.subject == subject, CardHandle.closed == False)  # noqa: E712
        )
        for handle in handles.all():
            if handle.task_id == keep:
                continue
            handle.closed, handle.closed_label = True, replace_name  # loaded here: saved at commit
            if handle.response_code:  # not sent yet: the sender greys it once it goes out
                self.update_card(handle.response_code, replace_name=replace_name)

    def update_card(
        self,
        response_code: str,
        *,
        replace_name: str = "",
        card: dict[str, Any] | None = None,
        userids: Sequence[str] = (),
        card_id: int | None = None,
    ) -> None:
        """Grey out a card's buttons with a label, or replace the whole `card`: for everyone
        holding it unless `userids` (message/update_template_card, docs/wecom.md §4.5)."""
        if bool(replace_name) == (card is not None):
            raise ValueError("update_card needs exactly one of replace_name and card")
        update_body: dict[str, Any] = {"response_code": response_code}
        if card is not None:
            update_body["template_card"] = card
        else:
            update_body["button"] = {"replace_name": replace_name}
        if userids:
            update_body["userids"] = list(userids)
            update_body["atall"] = 0
        else:
            update_body["atall"] = 1
        self._add("update_card", update_body, card_id=card_id)

    def send_export(
        self,
        users: Sequence[str],
        *,
        kind: str,
        start: datetime,
        end: datetime,
        label: str,
        slug: str,
        unit: str,
        timezone: str,
        title: str | None = None,
    ) -> None:
        """Build an export after the commit (no long transaction), upload it, send it as a file."""
        payload = {
            "touser": "|".join(users),
            "kind": kind,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "label": label,
            "slug": slug,
            "unit": unit,
            "timezone": timezone,
            **({"title": title} if title is not None else {}),
        }
        self._add("export", payload, recipients=users)

    def send_report(
        self,
        users: Sequence[str],
        *,
        start: datetime,
        end: datetime,
        label: str,
        slug: str,
        unit: str,
        timezone: str,
        as_of: datetime,
        period_hours: int,
    ) -> None:
        """The figures of a period as of `as_of`, built after the commit: the xlsx as a file,
        then its chart as a picture."""
        payload = {
            "touser": "|".join(users),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "label": label,
            "slug": slug,
            "unit": unit,
            "timezone": timezone,
            "as_of": as_of.isoformat(),
            "period_hours": period_hours,
        }
        self._add("export", {**payload, "kind": "report"}, recipients=users)
        self._add("export", {**payload, "kind": "report_chart", "msgtype": "image"}, recipients=users)

    def webhook(self, key: str, message: dict[str, Any]) -> None:
        """A group-robot message (webhook key configured by the unit)."""
        self._add("webhook", {"key": key, "message": message})


# Builds the file an "export" row asks for: (filename, content) from the row's payload.
ExportFile = Callable[[SessionFactory, dict[str, Any]], Awaitable[tuple[str, bytes]]]


async def _no_exports(db: SessionFactory, payload: dict[str, Any]) -> tuple[str, bytes]:
    raise ValueError("this sender was built without an export_file builder")


CARD_LIFETIME = timedelta(hours=72)  # a card's response_code lasts 72 h (docs/wecom.md §4.5)
MAX_BACKOFF = timedelta(minutes=10)
FIRST_BACKOFF_SECONDS = 5
GLOBAL = "api"  # every access_token call: 可信IP, wrong secret or CorpID

# What the robot tells the admins (the sender sits below bot.views, so its few words live here).
PAUSED_TEXT = (
    "【消息发送暂停】企业微信拒绝发送（错误码 {errcode}：{errmsg}），需要管理员处理：{hint}。"
    "待发消息不会丢失，修复后每 {probe} 分钟自动重试并恢复发送。"
)
RESUMED_TEXT = "【消息发送恢复】企业微信已恢复接受（此前错误码 {errcode}），积压的消息正在补发。"
FAILED_TEXT = (
    "【消息发送失败】第 {id} 条待发消息被企业微信拒收（{error}），请用 sanshen outbox 查看并重试或作废。"
)
ADMIN_HINTS = {
    60020: "将服务器出口IP加入应用的「企业可信IP」",
    48002: "在管理后台为应用开通该接口权限",
    81013: "检查接收人是否在应用的可见范围内",
    82001: "检查接收人是否在应用的可见范围内",
    60111: "接收人的 userid 在通讯录中不存在",
    40003: "接收人的 userid 无效",
    60011: "应用无权限向该成员发送，检查可见范围",
    40001: "应用 Secret 无效，请检查 [wecom] secret",
    40013: "CorpID 无效，请检查 [wecom] corp_id",
    93000: "群机器人 webhook key 失效，请更换 [duty] webhook_key",
}


class _Fenced(Exception):
    """Our claim on a row was taken over: stop without sending or marking anything."""


class _Pause:
    """Delivery of one kind held back on an admin-only code, probed every few minutes."""

    def __init__(self, errcode: int, errmsg: str, since: datetime, probe_at: datetime) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.since = since
        self.probe_at = probe_at


class OutboxSender:
    """Delivers due outbox rows, paced per member; retries until delivered or the content's
    lifetime ends; pauses on codes only an admin can cure; one claim per row, fenced."""

    def __init__(
        self,
        *,
        db: SessionFactory,
        wecom: WeComClient,
        clock: Clock,
        export_file: ExportFile | None = None,
        per_member_per_minute: int = 25,
        batch: int = 50,
        poll_seconds: float = 1.0,
        settings: Settings | None = None,
    ) -> None:
        self._db = db
        self._wecom = wecom
        self._clock = clock
        self._export_file = export_file or _no_exports
        self._per_minute = per_member_per_minute
        self._batch = batch
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._paused: dict[str, _Pause] = {}
        self._candidates: list[int] = []  # ids due at this pass's last look, oldest first
        self._paced_until: dict[int, datetime | None] = {}  # claimed row → its pacing, read at the claim
        self._next_claim: tuple[OutboxMessage, str] | None = None  # taken as the last row was marked
        self._idle: asyncio.Event | None = None
        self.configure(settings)

    def give_way_to(self, idle: asyncio.Event) -> None:
        """Callbacks first: while `idle` is clear (a callback is being applied), the background
        loop holds each next message back, for at most GIVE_WAY_SECONDS. WeCom waits 5 s for a
        callback's answer and then sends it again, adding load; a notification that goes out
        a moment later, after a burst of taps, costs nobody anything."""
        self._idle = idle

    def configure(self, settings: Settings | None) -> None:
        """Lifetimes, duplicate-check window, probe interval and the admins' robot from settings."""
        outbox = settings.outbox if settings is not None else OutboxSettings()
        self._text_lifetime = timedelta(hours=outbox.text_lifetime_hours)
        self._dup_seconds = outbox.duplicate_check_seconds
        self._probe = timedelta(minutes=outbox.probe_minutes)
        self._robot_key = settings.duty.webhook_key if settings is not None else ""

    # ---- health ---------------------------------------------------------------------------

    def health(self) -> tuple[str, str]:
        """("ok", "") or ("degraded", why): a kind of delivery is paused on an admin-only code."""
        if not self._paused:
            return "ok", ""
        reasons = [
            f"{scope}: errcode {p.errcode} {p.errmsg} since {p.since.isoformat()}"
            + (f" ({ADMIN_HINTS[p.errcode]})" if p.errcode in ADMIN_HINTS else "")
            for scope, p in sorted(self._paused.items())
        ]
        return "degraded", "outbox paused: " + "; ".join(reasons)

    def health_json(self) -> dict[str, str]:
        """The /healthz body: {"status": "ok"} or {"status": "degraded", "reason": …}."""
        status, reason = self.health()
        return {"status": status, **({"reason": reason} if reason else {})}

    # ---- the loop -------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask the background loop to look at the outbox now."""
        self._wake.set()

    async def run_forever(self) -> None:
        """The background loop: drain on every kick, and at least every `poll_seconds`."""
        while True:
            try:
                await self.drain(give_way=True)
            except Exception:  # CancelledError is a BaseException: cancelling ends the loop
                log.exception("outbox drain failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    async def drain(self, *, give_way: bool = False) -> None:
        """Deliver every row that is due now; `give_way`: to callbacks (see give_way_to)."""
        async with self._lock:
            deferred_users: dict[str, datetime] = {}
            # a claim left over by a pass that failed is dropped here and lapses after CLAIM_FOR
            self._candidates, self._paced_until, self._next_claim = [], {}, None
            while True:
                if give_way:
                    await self._give_way()
                claimed = await self._claim_next()
                if claimed is None:
                    return
                row, token = claimed
                try:
                    await self._deliver(row, token, deferred_users)
                except _Fenced:
                    log.warning("outbox %s: claim taken over by another sender; left to it", row.id)
                except Exception as exc:  # one row (an export that cannot be built …) stops no other
                    log.exception("outbox %s (%s) failed unexpectedly", row.id, row.op)
                    await self._retry_later(row, token, f"{type(exc).__name__}: {exc}")

    async def _give_way(self) -> None:
        # Real time, not the injected clock: this is how long the process holds back.
        if self._idle is not None and not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), GIVE_WAY_SECONDS)

    async def _claim_next(self) -> tuple[OutboxMessage, str] | None:
        """Claim one due row for CLAIM_FOR under a new fencing token (claims cover only what is
        being sent now, so a slow API cannot let another instance take over a queued tail).
        Within a pass the row after a sent one was claimed as that one was marked."""
        if self._next_claim is not None:
            claimed, self._next_claim = self._next_claim, None
            return claimed
        async with self._db() as session, session.begin():
            return await self._claim_in(session)

    async def _claim_in(self, session: AsyncSession) -> tuple[OutboxMessage, str] | None:
        """The claim, in `session`'s transaction. The ids due are looked up a batch at a time
        and tried in order; each claim checks again that its row is still due and free."""
        now = self._clock.now()
        token = uuid.uuid4().hex
        for _ in range(2):  # this pass's list, then one fresh look
            while self._candidates:
                row_id = self._candidates.pop(0)
                claimed = await direct.run(
                    session, _CLAIM, row_id=row_id, now=now, until=now + CLAIM_FOR, token=token
                )
                if claimed == 1:
                    row = await direct.first_model(session, OutboxMessage, _ROW, row_id=row_id)
                    assert row is not None  # claimed in this transaction
                    # read in the claim's transaction: one transaction less for every message
                    self._paced_until[row_id] = await self._pacing_delay(session, _recipients(row))
                    return row, token
            self._candidates = [
                row_id for (row_id,) in await direct.rows(session, _DUE_IDS, now=now, batch=self._batch)
            ]
            if not self._candidates:
                break
        return None

    async def _fenced_update(
        self, session: AsyncSession, row: OutboxMessage, token: str, **values: Any
    ) -> None:
        params = {f"v_{column}": value for column, value in values.items()}
        changed = await direct.run(
            session, _fenced_statement(tuple(values)), **params, row_id=row.id, token=token
        )
        if changed != 1:
            raise _Fenced()

    async def _renew(self, row: OutboxMessage, token: str, **values: Any) -> None:
        """Before each API call: still ours? extend the claim (and store `values`). A claim
        taken or renewed within FRESH_CLAIM needs neither (nothing to store)."""
        now = self._clock.now()
        if (
            not values
            and row.claimed_until is not None
            and ensure_utc(row.claimed_until) - now > CLAIM_FOR - FRESH_CLAIM
        ):
            return
        async with self._db() as session, session.begin():
            await self._fenced_update(session, row, token, claimed_until=now + CLAIM_FOR, **values)

    # ---- one row --------------------------------------------------------------------------

    def _is_card(self, row: OutboxMessage) -> bool:
        return row.op == "update_card" or (row.op == "send" and row.payload.get("msgtype") == "template_card")

    def lifetime_end(self, row: OutboxMessage) -> datetime:
        """Until when delivering `row` is still worth it: cards 72 h, the rest text_lifetime."""
        start = ensure_utc(row.retried_at or row.created_at)
        return start + (CARD_LIFETIME if self._is_card(row) else self._text_lifetime)

    def _scopes(self, row: OutboxMessage) -> list[str]:
        if row.op == "webhook":
            return [f"webhook:{row.payload.get('key', '')}"]
        return [GLOBAL, f"op:{row.op}", f"to:{row.recipients}"]

    def _scope_of(self, row: OutboxMessage, exc: WeComAPIError) -> str:
        if row.op == "webhook":
            return f"webhook:{row.payload.get('key', '')}"
        if exc.errcode in RECIPIENT_ERRORS:
            return f"to:{row.recipients}"
        if exc.errcode == 48002:
            return f"op:{row.op}"
        return GLOBAL

    async def _deliver(self, row: OutboxMessage, token: str, deferred_users: dict[str, datetime]) -> None:
        now = self._clock.now()
        if now >= self.lifetime_end(row):
            await self._finish(row, token, "expired", row.last_error or "lifetime ended before delivery")
            return
        pause = next((self._paused[s] for s in self._scopes(row) if s in self._paused), None)
        if pause is not None and now < pause.probe_at:
            await self._reschedule(row, token, pause.probe_at, error=row.last_error, count_attempt=False)
            return
        if pause is not None:  # this row is the probe; others wait for its answer
            pause.probe_at = now + self._probe
        recipients = _recipients(row)
        # A person held back earlier in this pass holds their later rows back too (their order),
        # but only while the wait lasts: a pass can outlive it (a slow API call), and a wait
        # already over would put the row back as due at once, to be claimed again, for ever.
        blocked = [deferred_users[u] for u in recipients if deferred_users.get(u, now) > now]
        assert row.id is not None  # claimed from the table
        wait_until = max(blocked) if blocked else self._paced_until.pop(row.id)
        if wait_until is not None:
            for userid in recipients:  # keep per-person order: later rows wait too
                deferred_users[userid] = max(wait_until, deferred_users.get(userid, wait_until))
            await self._reschedule(
                row, token, wait_until, error=row.last_error, count_attempt=False, same_recipients=True
            )
            return
        try:
            result = await self._perform(row, token)
        except WeComAPIError as exc:
            if self._is_card(row) and row.op == "send" and exc.errcode == CARD_TASK_EXISTS:
                log.warning("outbox %s: card task_id already sent; marking delivered", row.id)
                await self._mark_sent(row, token, recipients, {})
                return
            if exc.needs_admin:
                await self._pause(row, token, exc)
                return
            if exc.transient:
                await self._retry_later(row, token, str(exc))
                return
            await self._mark_failed(row, token, str(exc))
            return
        except WeComTransportError as exc:
            await self._retry_later(row, token, str(exc))
            return
        await self._mark_sent(row, token, recipients, result)
        await self._resume(row)

    async def _pacing_delay(self, session: AsyncSession, recipients: list[str]) -> datetime | None:
        """The earliest time a message to `recipients` may go without breaking the per-member
        limit (a sliding minute each), if later than now."""
        if not recipients:
            return None
        since = self._clock.now() - timedelta(minutes=1)
        people = {f"to_{n}": userid for n, userid in enumerate(dict.fromkeys(recipients))}
        recent: dict[str, list[datetime]] = {}
        for userid, sent_at in await direct.rows(session, _recent_sends(len(people)), **people, since=since):
            recent.setdefault(userid, []).append(sent_at)
        latest: datetime | None = None
        for times in recent.values():
            if len(times) >= self._per_minute:
                free_at = times[len(times) - self._per_minute] + timedelta(minutes=1)
                latest = free_at if latest is None or free_at > latest else latest
        return latest

    async def _dup_check(self, row: OutboxMessage, token: str, message: dict[str, Any]) -> int:
        """The duplicate-check window for this row's message/send, decided at its first attempt
        and kept for every retry (so a retry is byte-identical to the first try). Off when
        another row sent the identical request within the window: WeCom would swallow it."""
        if row.first_try_at is not None:
            await self._renew(row, token)
            return self._dup_seconds if row.dup_check else 0
        now = self._clock.now()
        digest = hashlib.sha256(
            json.dumps(message, sort_keys=True, ensure_ascii=False).encode("utf-8")
        ).hexdigest()
        async with self._db() as session, session.begin():
            since = now - timedelta(seconds=self._dup_seconds)
            check = await direct.first(session, _TWIN, digest=digest, row_id=row.id, since=since) is None
            await self._fenced_update(
                session,
                row,
                token,
                first_try_at=now,
                dup_check=check,
                body_hash=digest,
                claimed_until=now + CLAIM_FOR,
            )
        row.first_try_at, row.dup_check, row.body_hash = now, check, digest
        return self._dup_seconds if check else 0

    async def _send(self, row: OutboxMessage, token: str, message: dict[str, Any]) -> dict[str, Any]:
        seconds = await self._dup_check(row, token, message)
        return await self._wecom.send_message(message, duplicate_check_seconds=seconds)

    async def _media(self, row: OutboxMessage, token: str, filename: str, content: bytes, kind: str) -> str:
        """Upload and keep the media_id (valid 3 days) in the row, so a retry does not upload
        again but sends the identical file message, which WeCom's duplicate check recognises."""
        await self._renew(row, token)
        media_id = await self._wecom.upload_file(filename, content, kind=kind)
        row.payload = {**row.payload, "media_id": media_id}
        await self._renew(row, token, payload=row.payload)
        return media_id

    async def _perform(self, row: OutboxMessage, token: str) -> dict[str, Any]:
        payload = row.payload
        if row.op == "send":
            return await self._send(row, token, payload)
        if row.op == "update_card":
            await self._renew(row, token)
            return await self._wecom.update_template_card(payload)
        if row.op == "webhook":
            await self._renew(row, token)
            await self._wecom.send_webhook(payload["key"], payload["message"])
            return {}
        if row.op == "export":
            media_id = str(payload.get("media_id") or "")
            msgtype = str(payload.get("msgtype") or "file")  # file | image
            if not media_id:  # built and uploaded at the first try only
                filename, content = await self._export_file(self._db, payload)
                media_id = await self._media(row, token, filename, content, msgtype)
            message = {"touser": payload["touser"], "msgtype": msgtype, msgtype: {"media_id": media_id}}
            return await self._send(row, token, message)
        raise ValueError(f"unknown outbox op {row.op}")

    # ---- outcomes -------------------------------------------------------------------------

    async def _mark_sent(
        self, row: OutboxMessage, token: str, recipients: list[str], result: dict[str, Any]
    ) -> None:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            await self._fenced_update(
                session,
                row,
                token,
                status="sent",
                sent_at=now,
                claimed_until=None,
                attempts=row.attempts + 1,
                msgid=str(result.get("msgid") or "")[:128],
            )
            await direct.run_many(
                session, _LOG_DELIVERY, [{"to_user": userid, "at": now} for userid in recipients]
            )
            code = result.get("response_code")
            if row.card_id and code:
                await direct.run(session, _CARD_RESPONSE_CODE, card_id=row.card_id, code=str(code))
            elif code and row.payload.get("msgtype") == "template_card":
                task_id = row.payload["template_card"]["task_id"]
                handle = (await session.exec(select(CardHandle).where(CardHandle.task_id == task_id))).first()
                if handle is not None:
                    handle.response_code = str(code)
                    if handle.closed:  # its subject closed while it was queued: grey it now
                        Outbox(session, self._clock).update_card(str(code), replace_name=handle.closed_label)
            # the next row's claim in this transaction: one transaction less for each message
            following = await self._claim_in(session)
        self._next_claim = following  # committed
        invalid = result.get("invaliduser")
        if invalid:
            log.warning("outbox %s: WeCom did not know users %s", row.id, invalid)
        log.debug("outbox %s sent (%s)", row.id, row.op)

    async def _reschedule(
        self,
        row: OutboxMessage,
        token: str,
        when: datetime,
        *,
        error: str,
        count_attempt: bool,
        notify: str = "",
        same_recipients: bool = False,
    ) -> None:
        """Put `row` back until `when`. With `same_recipients` (they are paced), every later row
        due now for exactly the same recipients waits with it, in the same write: a person's
        backlog of hundreds costs one statement a pass, not a claim and a write per row, and
        their order stays (ids)."""
        async with self._db() as session, session.begin():
            await self._fenced_update(
                session,
                row,
                token,
                not_before=when,
                claimed_until=None,
                claim_token="",
                attempts=row.attempts + (1 if count_attempt else 0),
                last_error=error[:500],
            )
            if same_recipients:
                now = self._clock.now()
                await session.exec(
                    update(_TABLE)
                    .where(_TABLE.c.status == "pending", _TABLE.c.recipients == row.recipients)
                    .where(_TABLE.c.id > row.id, _TABLE.c.not_before <= bindparam("now"))
                    .where(_UNCLAIMED)
                    .values(not_before=when),
                    params={"now": now},
                )
            if notify and self._robot_key:
                Outbox(session, self._clock).webhook(
                    self._robot_key, {"msgtype": "text", "text": {"content": notify}}
                )

    async def _retry_later(self, row: OutboxMessage, token: str, error: str) -> None:
        """Capped exponential backoff, no cap on attempts: the lifetime decides when to stop."""
        # capped before it becomes a timedelta: a card tried for 72 h has ~430 attempts
        seconds = min(MAX_BACKOFF.total_seconds(), FIRST_BACKOFF_SECONDS * 2**row.attempts)
        delay = timedelta(seconds=seconds)
        log.warning("outbox %s failed (%s); retry in %ss", row.id, error, int(delay.total_seconds()))
        await self._reschedule(row, token, self._clock.now() + delay, error=error, count_attempt=True)

    async def _pause(self, row: OutboxMessage, token: str, exc: WeComAPIError) -> None:
        """An admin-only code: hold this kind of delivery, say so once, probe every few minutes."""
        now = self._clock.now()
        scope = self._scope_of(row, exc)
        pause = self._paused.get(scope)
        first = pause is None
        if pause is None:
            pause = self._paused[scope] = _Pause(exc.errcode, exc.errmsg, now, now + self._probe)
        else:  # still refused (the probe): the latest answer, and the next probe
            pause.errcode, pause.errmsg, pause.probe_at = exc.errcode, exc.errmsg, now + self._probe
        notify = ""
        if first:
            log.error(
                "outbox paused for %s: %s — %s; retrying every %s min",
                scope,
                exc,
                ADMIN_HINTS.get(exc.errcode, "needs an administrator"),
                int(self._probe.total_seconds() // 60),
            )
            if not scope.startswith("webhook:"):
                notify = PAUSED_TEXT.format(
                    errcode=exc.errcode,
                    errmsg=exc.errmsg,
                    hint=ADMIN_HINTS.get(exc.errcode, "请检查应用配置"),
                    probe=int(self._probe.total_seconds() // 60),
                )
        await self._reschedule(row, token, pause.probe_at, error=str(exc), count_attempt=True, notify=notify)

    async def _resume(self, row: OutboxMessage) -> None:
        """A row of a paused kind went through: the cause is fixed, everything waiting goes now."""
        resumed = [s for s in self._scopes(row) if s in self._paused]
        if not resumed:
            return
        for scope in resumed:
            pause = self._paused.pop(scope)
            log.warning("outbox resumed for %s (was errcode %s)", scope, pause.errcode)
        async with self._db() as session, session.begin():
            now = self._clock.now()
            await session.exec(  # rows held for the probe: due now
                update(_TABLE)
                .where(_TABLE.c.status == "pending", _TABLE.c.not_before > now)
                .where(_TABLE.c.not_before <= now + self._probe)
                .where(_UNCLAIMED)
                .values(not_before=now),
                params={"now": now},
            )
            if self._robot_key and row.op != "webhook":
                Outbox(session, self._clock).webhook(
                    self._robot_key,
                    {"msgtype": "text", "text": {"content": RESUMED_TEXT.format(errcode=pause.errcode)}},
                )

    async def _finish(self, row: OutboxMessage, token: str, status: str, error: str) -> None:
        """A final state other than sent (failed, expired): recorded, logged at ERROR, admins told."""
        log.error("outbox %s (%s) %s: %s", row.id, row.op, status, error)
        notify = FAILED_TEXT.format(id=row.id, error=f"{status}: {error}"[:200])
        async with self._db() as session, session.begin():
            await self._fenced_update(
                session,
                row,
                token,
                status=status,
                claimed_until=None,
                attempts=row.attempts + (1 if status == "failed" else 0),
                last_error=error[:500],
            )
            if self._robot_key and row.op != "webhook":
                Outbox(session, self._clock).webhook(
                    self._robot_key, {"msgtype": "text", "text": {"content": notify}}
                )

    async def _mark_failed(self, row: OutboxMessage, token: str, error: str) -> None:
        await self._finish(row, token, "failed", error)


# ---- `sanshen outbox`: what is stuck, and a person's decision about it ------------------------

STUCK_AFTER = timedelta(minutes=10)  # pending this long past its first due time counts as stuck


async def stuck_messages(session: AsyncSession, now: datetime, limit: int = 200) -> list[OutboxMessage]:
    """Failed and expired rows, and pending ones that have been failing or waiting for long."""
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            or_(
                col(OutboxMessage.status).in_(("failed", "expired")),
                (col(OutboxMessage.status) == "pending") & (col(OutboxMessage.attempts) > 0),
                (col(OutboxMessage.status) == "pending")
                & (col(OutboxMessage.created_at) < now - STUCK_AFTER),
            )
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return list(rows.all())


class OutboxDecisionError(Exception):
    """`--retry`/`--discard` of a row that does not exist or is already delivered."""


async def retry_message(session: AsyncSession, message_id: int, now: datetime) -> None:
    """Send a failed, expired or waiting row again now; its lifetime starts again."""
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.status not in ("pending", "failed", "expired"):
        raise OutboxDecisionError(
            f"没有可重试的第 {message_id} 条消息" + (f"（状态 {row.status}）" if row else "")
        )
    row.status, row.not_before, row.retried_at = "pending", now, now
    row.claimed_until, row.claim_token = None, ""


async def discard_message(
    session: AsyncSession, message_id: int, now: datetime, *, reason: str, by: str
) -> None:
    """A person decides a row will not be delivered: recorded in the audit log with who and why."""
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.status not in ("pending", "failed", "expired"):
        raise OutboxDecisionError(
            f"没有可作废的第 {message_id} 条消息" + (f"（状态 {row.status}）" if row else "")
        )
    previous = row.status
    row.status, row.claimed_until, row.claim_token = "discarded", None, ""
    row.last_error = f"discarded by {by}: {reason}"[:500]
    await append_audit(
        session=session,
        at=now,
        actor=by,
        action="outbox_discard",
        details={
            "outbox_id": row.id,
            "op": row.op,
            "recipients": row.recipients,
            "was": previous,
            "reason": reason,
            "attempts": row.attempts,
        },
    )

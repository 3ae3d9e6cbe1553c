"""The outbox: messages queued in the caller's transaction, and the sender that delivers them.

Nothing is sent inside a transaction. A handler queues rows; they commit together with the
state change that caused them; the sender then claims due rows, calls WeCom and marks them. A
crash before the commit loses nothing (WeCom re-sends the callback); a crash after it loses
nothing (the rows are still pending and the sender resumes them after a restart).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.wecom.client import WeComAPIError, WeComClient, WeComTransportError
from storage.db import SessionFactory
from storage.models import ApprovalCard, CardHandle, DeliveryLog, OutboxMessage

log = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 2048  # text and markdown content limit of message/send (facts §4.3)
CARD_TASK_EXISTS = 42014  # task_id already used: the card went out before a crash
CLAIM_FOR = timedelta(seconds=60)
MAX_ATTEMPTS = 8


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
    used = 0
    for index, char in enumerate(line):
        size = len(char.encode("utf-8"))
        if used + size > budget:
            return line[:index], line[index:]
        used += size
    return line, ""


class Outbox:
    """Queues WeCom calls in a session; every method only adds rows (no I/O)."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def _add(
        self,
        op: str,
        payload: dict[str, Any],
        *,
        recipients: Sequence[str] = (),
        card_id: int | None = None,
        not_before: datetime | None = None,
    ) -> OutboxMessage:
        now = self._clock.now()
        row = OutboxMessage(
            created_at=now,
            not_before=not_before or now,
            op=op,
            recipients="|".join(recipients),
            payload=payload,
            card_id=card_id,
        )
        self._session.add(row)
        return row

    def send_text(self, users: Sequence[str], text: str, *, not_before: datetime | None = None) -> None:
        """Plain text, split into several messages when over 2048 bytes."""
        for chunk in split_utf8(text):
            message = {"touser": "|".join(users), "msgtype": "text", "text": {"content": chunk}}
            self._add("send", message, recipients=users, not_before=not_before)

    def send_markdown(self, users: Sequence[str], content: str) -> None:
        for chunk in split_utf8(content):
            message = {"touser": "|".join(users), "msgtype": "markdown", "markdown": {"content": chunk}}
            self._add("send", message, recipients=users)

    def send_card(
        self, users: Sequence[str], card: dict[str, Any], *, card_id: int | None = None, subject: str = ""
    ) -> None:
        """A template card. WeCom's response_code is kept for an ApprovalCard (`card_id`) or,
        with a `subject`, in a CardHandle, so that `close_cards(subject)` can grey it later."""
        message = {"touser": "|".join(users), "msgtype": "template_card", "template_card": card}
        self._add("send", message, recipients=users, card_id=card_id)
        if subject:
            self._session.add(CardHandle(task_id=card["task_id"], subject=subject, created_at=self._clock.now()))

    async def close_cards(self, subject: str, *, replace_name: str, keep: str = "") -> int:
        """Grey every still-open card of `subject` for all holders, except task `keep`."""
        handles = await self._session.exec(
            select(CardHandle).where(CardHandle.subject == subject, CardHandle.closed == False)  # noqa: E712
        )
        closed = 0
        for handle in handles.all():
            if handle.task_id == keep:
                continue
            handle.closed, handle.closed_label = True, replace_name
            self._session.add(handle)
            if handle.response_code:  # not sent yet: the sender greys it once it goes out
                self.update_card(handle.response_code, replace_name=replace_name)
                closed += 1
        return closed

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
        holding it unless `userids` (message/update_template_card, facts §4.5)."""
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

    def send_file(self, users: Sequence[str], filename: str, content: bytes) -> None:
        """Upload a file (media/upload) and send it as a file message."""
        payload = {
            "touser": "|".join(users),
            "filename": filename,
            "content_b64": base64.b64encode(content).decode("ascii"),
        }
        self._add("upload_and_send", payload, recipients=users)

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

    def webhook(self, key: str, message: dict[str, Any]) -> None:
        """A group-robot message (webhook key configured by the unit)."""
        self._add("webhook", {"key": key, "message": message})


# Builds the file an "export" row asks for: (filename, content) from the row's payload.
ExportFile = Callable[[SessionFactory, dict[str, Any]], Awaitable[tuple[str, bytes]]]


async def _no_exports(db: SessionFactory, payload: dict[str, Any]) -> tuple[str, bytes]:
    raise ValueError("this sender was built without an export_file builder")


class OutboxSender:
    """Delivers due outbox rows in order, paced per member, retrying transient failures."""

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
        self._claimant = uuid.uuid4().hex[:8]

    def kick(self) -> None:
        """Ask the background loop to look at the outbox now."""
        self._wake.set()

    async def run_forever(self) -> None:
        """The background loop: drain on every kick, and at least every `poll_seconds`."""
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain(self) -> int:
        """Deliver every row that is due now; returns how many were sent."""
        async with self._lock:
            sent = 0
            while True:
                rows = await self._claim_due()
                if not rows:
                    return sent
                deferred_users: dict[str, datetime] = {}
                for row in rows:
                    sent += await self._deliver(row, deferred_users)

    async def _claim_due(self) -> list[OutboxMessage]:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            candidates = (
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
                    .where(
                        or_(
                            OutboxMessage.claimed_until.is_(None),  # type: ignore[union-attr]
                            OutboxMessage.claimed_until < now,  # type: ignore[operator]
                        )
                    )
                    .order_by(OutboxMessage.id)  # type: ignore[arg-type]
                    .limit(self._batch)
                )
            ).all()
            claimed: list[OutboxMessage] = []
            for row in candidates:
                result = await session.exec(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id, OutboxMessage.status == "pending")
                    .where(
                        or_(
                            OutboxMessage.claimed_until.is_(None),  # type: ignore[union-attr]
                            OutboxMessage.claimed_until < now,  # type: ignore[operator]
                        )
                    )
                    .values(claimed_until=now + CLAIM_FOR)
                )
                if result.rowcount == 1:
                    claimed.append(row)
            return claimed

    async def _recent_deliveries(self, session: AsyncSession, userid: str) -> list[datetime]:
        since = self._clock.now() - timedelta(minutes=1)
        rows = await session.exec(
            select(DeliveryLog.sent_at)
            .where(DeliveryLog.userid == userid, DeliveryLog.sent_at > since)
            .order_by(DeliveryLog.sent_at)  # type: ignore[arg-type]
        )
        return list(rows.all())

    async def _pacing_delay(self, recipients: list[str]) -> datetime | None:
        """The earliest time this row may go without breaking the per-member limit, if later."""
        latest: datetime | None = None
        async with self._db() as session:
            for userid in recipients:
                recent = await self._recent_deliveries(session, userid)
                if len(recent) >= self._per_minute:
                    free_at = recent[len(recent) - self._per_minute] + timedelta(minutes=1)
                    latest = free_at if latest is None or free_at > latest else latest
        return latest

    async def _deliver(self, row: OutboxMessage, deferred_users: dict[str, datetime]) -> int:
        recipients = [u for u in row.recipients.split("|") if u]
        blocked = [deferred_users[u] for u in recipients if u in deferred_users]
        wait_until = max(blocked) if blocked else await self._pacing_delay(recipients)
        if wait_until is not None:
            for userid in recipients:  # keep per-person order: later rows wait too
                deferred_users[userid] = max(wait_until, deferred_users.get(userid, wait_until))
            await self._reschedule(row, wait_until, error="", count_attempt=False)
            return 0
        try:
            result = await self._perform(row)
        except WeComAPIError as exc:
            is_card = row.op == "send" and row.payload.get("msgtype") == "template_card"
            if is_card and exc.errcode == CARD_TASK_EXISTS:  # task_ids are never reused by us
                log.warning("outbox %s: card task_id already sent; marking delivered", row.id)
                await self._mark_sent(row, recipients, {})
                return 1
            if exc.transient and row.attempts + 1 < MAX_ATTEMPTS:
                await self._retry_later(row, str(exc))
                return 0
            await self._mark_failed(row, str(exc))
            return 0
        except WeComTransportError as exc:
            if row.attempts + 1 < MAX_ATTEMPTS:
                await self._retry_later(row, str(exc))
            else:
                await self._mark_failed(row, str(exc))
            return 0
        await self._mark_sent(row, recipients, result)
        return 1

    async def _perform(self, row: OutboxMessage) -> dict[str, Any]:
        payload = row.payload
        if row.op == "send":
            return await self._wecom.send_message(payload)
        if row.op == "update_card":
            return await self._wecom.update_template_card(payload)
        if row.op == "upload_and_send":
            media_id = await self._wecom.upload_file(
                payload["filename"], base64.b64decode(payload["content_b64"])
            )
            message = {"touser": payload["touser"], "msgtype": "file", "file": {"media_id": media_id}}
            return await self._wecom.send_message(message)
        if row.op == "webhook":
            await self._wecom.send_webhook(payload["key"], payload["message"])
            return {}
        if row.op == "export":
            filename, content = await self._export_file(self._db, payload)
            media_id = await self._wecom.upload_file(filename, content)
            message = {"touser": payload["touser"], "msgtype": "file", "file": {"media_id": media_id}}
            return await self._wecom.send_message(message)
        raise ValueError(f"unknown outbox op {row.op}")

    async def _mark_sent(
        self, row: OutboxMessage, recipients: list[str], result: dict[str, Any]
    ) -> None:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status="sent", sent_at=now, claimed_until=None, attempts=row.attempts + 1)
            )
            for userid in recipients:
                session.add(DeliveryLog(userid=userid, sent_at=now))
            code = result.get("response_code")
            if row.card_id and code:
                await session.exec(
                    update(ApprovalCard)
                    .where(ApprovalCard.id == row.card_id)
                    .values(response_code=str(code))
                )
            elif code and row.payload.get("msgtype") == "template_card":
                task_id = row.payload["template_card"]["task_id"]
                handle = (await session.exec(select(CardHandle).where(CardHandle.task_id == task_id))).first()
                if handle is not None:
                    handle.response_code = str(code)
                    session.add(handle)
                    if handle.closed:  # its subject closed while it was queued: grey it now
                        Outbox(session, self._clock).update_card(str(code), replace_name=handle.closed_label)
        invalid = result.get("invaliduser")
        if invalid:
            log.warning("outbox %s: WeCom did not know users %s", row.id, invalid)
        log.debug("outbox %s sent (%s)", row.id, row.op)

    async def _reschedule(
        self, row: OutboxMessage, when: datetime, *, error: str, count_attempt: bool
    ) -> None:
        async with self._db() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    not_before=when,
                    claimed_until=None,
                    attempts=row.attempts + (1 if count_attempt else 0),
                    last_error=error[:500],
                )
            )

    async def _retry_later(self, row: OutboxMessage, error: str) -> None:
        delay = timedelta(seconds=min(600, 5 * 2**row.attempts))
        log.warning("outbox %s failed (%s); retry in %ss", row.id, error, int(delay.total_seconds()))
        await self._reschedule(row, self._clock.now() + delay, error=error, count_attempt=True)

    async def _mark_failed(self, row: OutboxMessage, error: str) -> None:
        log.error("outbox %s (%s) failed for good: %s", row.id, row.op, error)
        async with self._db() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    status="failed",
                    claimed_until=None,
                    attempts=row.attempts + 1,
                    last_error=error[:500],
                )
            )


async def pending_count(session: AsyncSession) -> int:
    """How many outbox rows still wait to be delivered."""
    result = await session.exec(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
    )
    return int(result.one())

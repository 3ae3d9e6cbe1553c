"""What a handler receives: one typed Context per event, and the UserFacingError it may raise."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Settings, StaffMember
from bot.outbox import Outbox
from bot.wecom_events import IncomingEvent


class UserFacingError(Exception):
    """Stops the handler, rolls back its changes and tells the person `message` (Chinese)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SkipHandler(Exception):  # noqa: N818 - aiogram's name for the same idea
    """Raised by a text handler that does not apply; the dispatcher tries the next one."""


@dataclass(frozen=True)
class Context:
    settings: Settings
    session: AsyncSession
    clock: Clock
    outbox: Outbox
    event: IncomingEvent
    log: logging.Logger
    commands: Sequence[Any] = ()  # CommandSpec list, for /help

    @property
    def user(self) -> str:
        return self.event.user

    @property
    def staff(self) -> dict[str, StaffMember]:
        return {m.userid: m for m in self.settings.staff}

    @property
    def member(self) -> StaffMember | None:
        return self.staff.get(self.event.user)

    def name_of(self, userid: str) -> str:
        member = self.staff.get(userid)
        return member.name if member else userid

    def now(self) -> datetime:
        return self.clock.now()

    def reply_text(self, text: str) -> None:
        """Queue a text reply to the person who sent the event (sent after commit)."""
        self.outbox.send_text([self.event.user], text)

    def reply_markdown(self, content: str) -> None:
        self.outbox.send_markdown([self.event.user], content)

"""What a handler receives: one typed Context per event (it also serves as the services' Scope)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.core.config import Settings, StaffMember
from bot.wecom.events import IncomingEvent
from bot.wecom.outbox import Outbox


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
        return self.settings.staff_by_id

    @property
    def member(self) -> StaffMember | None:
        return self.staff.get(self.event.user)

    def name_of(self, userid: str) -> str:
        return self.settings.name_of(userid)

    def now(self) -> datetime:
        return self.clock.now()

    def reply_text(self, text: str) -> None:
        """Queue a text reply to the person who sent the event (sent after commit, before the
        other messages the event caused: the confirmation comes before what it announces)."""
        self.outbox.send_text([self.event.user], text, first=True)

"""Scope: what a service works in — one transaction, the outbox, the settings, the clock and who acts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.core.config import Settings, StaffMember
from bot.wecom.outbox import Outbox

SYSTEM = "system"


class Scope(Protocol):
    """Anything that carries these can call a service: a chat Context, a sweep's Work, a web request."""

    @property
    def settings(self) -> Settings: ...
    @property
    def session(self) -> AsyncSession: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def log(self) -> logging.Logger: ...
    @property
    def user(self) -> str: ...
    @property
    def staff(self) -> dict[str, StaffMember]: ...
    def name_of(self, userid: str) -> str: ...
    def now(self) -> datetime: ...


def is_admin(scope: Scope) -> bool:
    """Whether the person acting is on the staff list with the admin role."""
    member = scope.staff.get(scope.user)
    return member is not None and "admin" in member.roles


@dataclass(frozen=True)
class Work:
    """A Scope outside a chat event: the scheduler's sweeps and the web pages build one."""

    settings: Settings
    session: AsyncSession
    clock: Clock
    outbox: Outbox
    user: str = SYSTEM
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("bot.services"))

    @property
    def staff(self) -> dict[str, StaffMember]:
        return self.settings.staff_by_id

    @property
    def member(self) -> StaffMember | None:
        return self.staff.get(self.user)

    def name_of(self, userid: str) -> str:
        return self.settings.name_of(userid)

    def now(self) -> datetime:
        return self.clock.now()

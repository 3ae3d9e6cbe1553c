"""Command arguments every handler reads the same way: draft numbers and usage errors."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError


def parse_number(text: str, usage: str) -> int:
    """A draft or incident number ('12', '#12', '＃12'), or a usage error."""
    token = text.strip().lstrip("#＃")
    if not token.isdigit():
        raise UserFacingError(views.usage(usage))
    return int(token)

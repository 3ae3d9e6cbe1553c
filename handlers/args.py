"""What every handler does the same way: read numbers (range checked), answer usage errors, reply with a service's result."""

from __future__ import annotations

import re
from datetime import date

from bot import views
from bot.core.errors import UserFacingError
from bot.services.review import Done
from bot.wecom.context import Context

# Draft, card and incident numbers are the databases' INTEGER (PostgreSQL: 32-bit signed).
ID_MAX = 2_147_483_647
DAY_TEXT = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")  # a day as people type it: 2026-12-1 or 2026-12-01


def number_in(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number in low..high, or None: ASCII digits only (str.isdigit also
    takes '²' and '١'), and never a 60,000-digit string handed to int()."""
    if not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if low <= value <= high else None


def parse_int(text: str, usage: str, low: int = 1, high: int = ID_MAX) -> int:
    """A whole number in low..high, or the command's usage (in Chinese) as the answer."""
    value = number_in(text.strip(), low, high)
    if value is None:
        raise UserFacingError(views.usage(usage))
    return value


def parse_number(text: str, usage: str) -> int:
    """A draft or incident number ('12', '#12', '＃12') in 1..ID_MAX, or a usage error."""
    return parse_int(text.strip().lstrip("#＃"), usage)


def card_number(text: str) -> int | None:
    """The number a card button's key carries, or None for a key no card of ours has."""
    return number_in(text, 1, ID_MAX)


def parse_day(text: str, *, what: str = "日期", usage: str = "") -> date:
    """A day typed as YYYY-MM-DD (one-digit month and day allowed), or a Chinese answer saying
    whether its form is wrong or the day does not exist."""
    if not DAY_TEXT.fullmatch(text):
        raise UserFacingError(f"{what}“{text}”应写成 YYYY-MM-DD。" + (f"用法：{usage}" if usage else ""))
    year, month, day = (int(part) for part in text.split("-"))
    try:
        return date(year, month, day)
    except ValueError:
        raise UserFacingError(f"日期“{text}”不存在。") from None


def tell(ctx: Context, done: Done) -> None:
    """Reply to the person who acted with what the service says they should hear (if anything)."""
    if done.message:
        ctx.reply_text(done.message)

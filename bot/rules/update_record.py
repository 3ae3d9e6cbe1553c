"""An account's update record replayed from its history: the spells it was overdue, its gaps, and
钦州 第二十八条's counting of 更新不及时 (several in one month count once; 提醒函 → 约谈 → 通报)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class OverdueSpell:
    """From the moment a deadline passed to the moment the account stopped being late (a post, a
    pause, its 注销), or None while it still is."""

    since: datetime
    until: datetime | None

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        stop = end if self.until is None else min(self.until, end)
        return max(stop - max(self.since, start), timedelta(0))


def overdue_spells(
    *,
    registered: datetime,
    posts: Iterable[datetime],
    pauses: Iterable[tuple[datetime, datetime]],
    period: timedelta,
    closed_at: datetime | None,
    now: datetime,
) -> list[OverdueSpell]:
    """Replay the 14×24-hour clock as the bot runs it: it starts at registration and at every post;
    a pause (临时下线) stops it, and it starts again when the pause ends (a post during the pause
    does not count past the pause's end); 注销 stops it for good. Events after `now` are unknown."""
    events: list[tuple[datetime, int, str]] = [(t, 0, "post") for t in posts if t <= now]
    for start, end in pauses:
        if start <= now:
            events.append((start, 1, "pause"))
            if end <= now:
                events.append((end, 2, "resume"))
    stop = now if closed_at is None else min(closed_at, now)
    events = sorted(e for e in events if e[0] <= stop)
    spells: list[OverdueSpell] = []
    imported = [t for t, _, kind in events if kind == "post" and t <= registered]
    # the clock starts at registration, or at an imported last post given with it (as the bot does)
    last_post = max(imported, default=registered)
    clock: datetime | None = last_post
    for at, _, kind in events:
        if clock is not None and clock + period < at and kind in ("post", "pause"):
            spells.append(OverdueSpell(clock + period, at))
        if kind == "post":
            last_post = max(last_post, at)
            if clock is not None:
                clock = max(clock, at)
        elif kind == "pause":
            clock = None
        else:
            clock = max(last_post, at)
    if clock is not None and clock + period < stop:
        spells.append(
            OverdueSpell(clock + period, None if closed_at is None or closed_at > now else closed_at)
        )
    return spells


def longest_gap(
    *, registered: datetime, posts: Sequence[datetime], start: datetime, end: datetime
) -> timedelta:
    """The longest time without a post among the gaps that end inside [start, end): from the post
    before (or the registration) to the next post, or to `end` for the gap still open."""
    times = sorted(t for t in posts if t < end)
    before = [t for t in times if t < start]
    anchor = before[-1] if before else registered  # an imported post may precede the registration
    longest = timedelta(0)
    for moment in [t for t in times if t >= start] + [end]:
        longest = max(longest, moment - anchor)
        anchor = max(anchor, moment)
    return longest


@dataclass(frozen=True)
class Accountability:
    """钦州 第二十八条 for 更新不及时 in one year: each month with a lapse is one 提醒函; every 2 提醒函
    in the year bring a 约谈, every 2 约谈 a 通报批评."""

    months: tuple[int, ...]  # the months (1–12) a deadline passed unmet

    @property
    def reminder_letters(self) -> int:  # 提醒函
        return len(self.months)

    @property
    def interviews(self) -> int:  # 约谈
        return self.reminder_letters // 2

    @property
    def public_criticisms(self) -> int:  # 通报批评
        return self.interviews // 2

    @property
    def level(self) -> str:
        if self.public_criticisms:
            return "通报批评"
        if self.interviews:
            return "约谈"
        if self.reminder_letters:
            return "提醒函"
        return "—"


def accountability(
    spells: Iterable[OverdueSpell], year: int, tz: ZoneInfo, *, through: datetime
) -> Accountability:
    """Count the lapses of `year` whose deadline passed before `through` by local month."""
    months = {
        local.month
        for spell in spells
        if spell.since < through and (local := spell.since.astimezone(tz)).year == year
    }
    return Accountability(tuple(sorted(months)))

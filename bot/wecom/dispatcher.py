"""Routers and the dispatcher: matches an event to a handler and runs it in one transaction."""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import UserFacingError
from bot.wecom.context import Context, SkipHandler
from bot.wecom.events import (
    CardClick,
    EnterAgent,
    IncomingEvent,
    MenuClick,
    MenuView,
    OtherEvent,
    TextMessage,
)
from bot.wecom.outbox import Outbox, OutboxSender
from storage.db import SessionFactory
from storage.dedupe_repo import remember_callback, remember_callbacks

log = logging.getLogger(__name__)

CommandHandler = Callable[[Context, "Command"], Awaitable[None]]
CardHandler = Callable[[Context, CardClick, list[str]], Awaitable[None]]
TextHandler = Callable[[Context, TextMessage], Awaitable[None]]
OtherHandler = Callable[[Context, OtherEvent], Awaitable[None]]
EnterHandler = Callable[[Context, EnterAgent], Awaitable[None]]
# Run once at the start of a group commit's transaction with the callbacks it applies (all but
# duplicates): reads what their handlers will ask for, for all of them at once (see Router.reads_ahead).
ReadAhead = Callable[[Any, list[IncomingEvent], datetime], Awaitable[None]]  # (session, events, now)

# A click button of the app menu runs the command its key names: CMD_PENDING is /pending.
MENU_COMMAND_PREFIX = "CMD_"


def menu_key(command: str) -> str:
    """The click key of a menu button that runs `/command`."""
    return MENU_COMMAND_PREFIX + command.upper()


def command_of_menu_key(key: str) -> str | None:
    """The command name a menu key runs, or None when the key is not a CMD_ key."""
    if not key.startswith(MENU_COMMAND_PREFIX) or len(key) == len(MENU_COMMAND_PREFIX):
        return None
    return key[len(MENU_COMMAND_PREFIX) :].lower()


@dataclass(frozen=True)
class Command:
    """A parsed command message: `/name args` on the first line, `body` below it."""

    name: str
    word: str  # what the person typed (an alias or the name)
    args: str
    body: str

    @property
    def argv(self) -> list[str]:
        return self.args.split()


@dataclass(frozen=True)
class CommandSpec:
    name: str
    aliases: tuple[str, ...]
    usage: str
    summary: str
    roles: tuple[str, ...]
    handler: CommandHandler


def pack_action(prefix: str, *parts: object) -> str:
    """A card button key: 'prefix:part:part' (WeCom allows up to 1024 bytes)."""
    key = ":".join([prefix, *(str(p) for p in parts)])
    if any(":" in str(p) for p in parts) or len(key.encode()) > 1024:
        raise ValueError(f"bad card action parts {parts!r}")
    return key


def unpack_action(key: str) -> tuple[str, list[str]]:
    prefix, _, rest = key.partition(":")
    return prefix, rest.split(":") if rest else []


@dataclass
class Router:
    """Handlers of one module, registered by decorator (aiogram style)."""

    name: str
    commands: list[CommandSpec] = field(default_factory=list)
    cards: list[tuple[str, CardHandler]] = field(default_factory=list)
    texts: list[TextHandler] = field(default_factory=list)
    others: list[OtherHandler] = field(default_factory=list)
    entered: list[EnterHandler] = field(default_factory=list)
    ahead: list[ReadAhead] = field(default_factory=list)

    def command(
        self,
        name: str,
        *,
        aliases: Iterable[str] = (),
        usage: str = "",
        summary: str = "",
        roles: Iterable[str] = (),
    ) -> Callable[[CommandHandler], CommandHandler]:
        def register(func: CommandHandler) -> CommandHandler:
            spec = CommandSpec(name, tuple(aliases), usage, summary, tuple(roles), func)
            self.commands.append(spec)
            return func

        return register

    def card(self, prefix: str) -> Callable[[CardHandler], CardHandler]:
        def register(func: CardHandler) -> CardHandler:
            self.cards.append((prefix, func))
            return func

        return register

    def text(self) -> Callable[[TextHandler], TextHandler]:
        def register(func: TextHandler) -> TextHandler:
            self.texts.append(func)
            return func

        return register

    def other(self) -> Callable[[OtherHandler], OtherHandler]:
        def register(func: OtherHandler) -> OtherHandler:
            self.others.append(func)
            return func

        return register

    def reads_ahead(self) -> Callable[[ReadAhead], ReadAhead]:
        """A function(session, events, now) run when a group of callbacks begins its transaction,
        before any is applied: it may read, in one statement, what their handlers will read one
        by one (a round trip each saved on PostgreSQL). What it keeps must be dropped when
        anything the group applies changes it: the group's handlers run after it, in order."""

        def register(func: ReadAhead) -> ReadAhead:
            self.ahead.append(func)
            return func

        return register

    def enter_agent(self) -> Callable[[EnterHandler], EnterHandler]:
        """The handler for a member opening the app (the first registered one runs)."""

        def register(func: EnterHandler) -> EnterHandler:
            self.entered.append(func)
            return func

        return register


class CommandTable:
    """All commands by name and alias, and command-line parsing."""

    def __init__(self, routers: Iterable[Router]) -> None:
        specs: list[CommandSpec] = []
        self._by_word: dict[str, CommandSpec] = {}
        for router in routers:
            for spec in router.commands:
                specs.append(spec)
                for word in (spec.name, *spec.aliases):
                    if word in self._by_word:
                        raise ValueError(f"command word {word!r} registered twice")
                    self._by_word[word] = spec
        self.specs = tuple(specs)  # never changed: views.help_text keeps its texts by it

    def parse(self, text: str) -> tuple[Command, CommandSpec | None] | None:
        """A Command if `text` starts with a command word ('/x', or a bare Chinese alias)."""
        stripped = text.strip()
        if not stripped:
            return None
        first_line, _, body = stripped.partition("\n")
        word, _, args = first_line.strip().partition(" ")
        args = args.strip()
        if word.startswith("/") or word.startswith("／"):
            bare = word[1:]
        elif word in self._by_word and not word.isascii():
            bare = word  # Chinese aliases work without the slash: "投稿 标题"
        else:
            return None
        spec = self._by_word.get(bare) or self._by_word.get(bare.lower())
        command = Command(name=spec.name if spec else bare, word=bare, args=args, body=body.strip("\n"))
        return command, spec

    def spec(self, name: str) -> CommandSpec | None:
        """The command registered under `name` (its name, not an alias)."""
        spec = self._by_word.get(name)
        return spec if spec is not None and spec.name == name else None

    def suggestions(self, word: str) -> list[str]:
        return difflib.get_close_matches(word, list(self._by_word), n=3, cutoff=0.5)


# Dedupe keys of the callbacks this process applied most recently, kept in memory: WeCom's
# re-sends come within seconds of the first try (three tries in all), so a few thousand keys
# cover every re-send of a burst, at about 100 bytes each.
APPLIED_KEYS_KEPT = 20_000


class RecentKeys:
    """The last `size` keys added, for membership tests (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: dict[str, None] = {}  # insertion-ordered

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        if key in self._keys:
            return
        self._keys[key] = None
        if len(self._keys) > self._size:
            del self._keys[next(iter(self._keys))]


# Group commit: callbacks that arrive while others are being applied wait, and are then applied
# together, one after another, in one transaction: one BEGIN, one audit-head update, one INSERT
# of their outbox rows and one COMMIT for all of them instead of one each. Each is still
# answered only after that commit (durable before the 200), in arrival order, each seeing the
# ones before it. SQLite (one writer) applies one group at a time, PostgreSQL a few at once
# (bot.app). At most this many share a transaction.
GROUP_COMMIT_MAX = 64


class _Waiting:
    """A callback queued for the next group commit, and where its outcome goes."""

    __slots__ = ("event", "done")

    def __init__(self, event: IncomingEvent, done: asyncio.Future[str]) -> None:
        self.event = event
        self.done = done


class _GroupBroken(Exception):
    """The handler of the group's event at `index` refused or failed: the group's transaction
    rolls back, and its events are applied again around that one."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class _HandlerFailed(Exception):
    """A handler refused or failed: its transaction rolls back; what to record instead."""

    def __init__(self, outcome: str, answer: str | None) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.answer = answer


class Dispatcher:
    """Applies each event exactly once: dedupe key, state change and replies in one transaction."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: SessionFactory,
        clock: Clock,
        routers: Iterable[Router],
        sender: OutboxSender | None,
        texts: Any,
        group_commit: int = 0,
    ) -> None:
        """`group_commit`: how many groups of callbacks may be applied at once, each group in
        one transaction (see GROUP_COMMIT_MAX); 0 gives every callback a transaction of its own."""
        self._settings = settings
        self._db = db
        self._clock = clock
        self._routers = list(routers)
        self._sender = sender
        self._views = texts
        self.commands = CommandTable(self._routers)
        self._applied = RecentKeys(APPLIED_KEYS_KEPT)
        self._in_flight = 0
        self._group_commit = group_commit
        self._waiting: list[_Waiting] = []
        self._appliers: set[asyncio.Task[None]] = set()
        self._applying = 0  # appliers that have not stopped
        # Set while no callback is being applied (the outbox sender gives way meanwhile).
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def groups_at_once(self) -> int:
        """How many groups of callbacks may be applied at once (0: no group commit)."""
        return self._group_commit

    @property
    def queued(self) -> int:
        """Callbacks waiting for the next group commit."""
        return len(self._waiting)

    async def feed(self, event: IncomingEvent) -> str:
        """Apply one event; returns the outcome word for the log. Raises only on storage errors."""
        started = time.perf_counter()
        if event.dedupe_key in self._applied:
            # WeCom re-sends a callback it got no answer to in time, up to three times: one this
            # process committed is answered without a transaction (the database has the key;
            # one another instance applied is found there).
            took = (time.perf_counter() - started) * 1000
            log.info("event %s from %s: duplicate in %d ms", type(event).__name__, event.user, took)
            return "duplicate"
        self._in_flight += 1
        self.idle.clear()
        try:
            outcome = await (self._queued(event) if self._group_commit else self._apply(event))
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self.idle.set()
        self._applied.add(event.dedupe_key)  # committed (or found committed)
        if outcome != "duplicate" and self._sender is not None:
            self._sender.kick()
        log.info(
            "event %s from %s: %s in %d ms",
            type(event).__name__,
            event.user,
            outcome,
            (time.perf_counter() - started) * 1000,
        )
        return outcome

    def _context(self, session: Any, event: IncomingEvent, segment: int = 0) -> Context:
        return Context(
            settings=self._settings,
            session=session,
            clock=self._clock,
            outbox=Outbox(session, self._clock, segment=segment),
            event=event,
            log=log,
            commands=self.commands.specs,
        )

    async def _queued(self, event: IncomingEvent) -> str:
        """Wait for the next group commit that takes `event`; its outcome (or storage error)."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(event, loop.create_future())
        self._waiting.append(waiting)
        if self._applying < self._group_commit:
            self._applying += 1  # (given back by the applier itself, the moment it stops)
            applier = loop.create_task(self._apply_waiting(), name="group-commit")
            self._appliers.add(applier)  # a reference until it is done
            applier.add_done_callback(self._appliers.discard)
        # A request given up on cancels only this future: its callback stays in the group (the
        # group skips the answer), so what WeCom sent is applied all the same. (No shield: it
        # cost a future and two callbacks a request for the same.)
        return await waiting.done

    async def _apply_waiting(self) -> None:
        """Apply what waits, a group at a time, until nothing does (then this task ends; a
        callback arriving while fewer than `group_commit` of these run starts another)."""
        try:
            await self._apply_groups()
        finally:
            # At once, not in a done-callback: one arriving in this same turn of the loop must
            # start another applier, not wait for this one that has stopped.
            self._applying -= 1

    async def _apply_groups(self) -> None:
        while self._waiting:
            group = self._waiting[:GROUP_COMMIT_MAX]
            del self._waiting[:GROUP_COMMIT_MAX]
            results: list[str | BaseException]
            try:
                results = await self._apply_together([w.event for w in group])
            except Exception as exc:  # a bug here, not in a handler: these fail, the rest go on
                log.exception("group commit of %d callbacks failed", len(group))
                results = [exc] * len(group)
            except BaseException:  # cancelled (shutting down): nothing waits forever
                for waiting in [*group, *self._waiting]:
                    waiting.done.cancel()
                self._waiting.clear()
                raise
            for waiting, result in zip(group, results, strict=True):
                if waiting.done.cancelled():
                    continue
                if isinstance(result, BaseException):
                    waiting.done.set_exception(result)
                else:
                    waiting.done.set_result(result)

    async def _apply_together(self, events: list[IncomingEvent]) -> list[str | BaseException]:
        """Each event's outcome, or the storage error that kept it from being applied: in one
        transaction when every handler succeeds. One that refuses or fails is applied alone
        (its answer recorded as `_apply` does), the ones before it together again, then the rest."""
        results: list[str | BaseException] = []
        while events:
            if len(events) == 1:
                results.append(await self._apply_alone(events[0]))
                break
            try:
                results.extend(await self._apply_group(events))
                break
            except _GroupBroken as broken:
                before, failed, events = (
                    events[: broken.index],
                    events[broken.index],
                    events[broken.index + 1 :],
                )
                results.extend(await self._apply_together(before))
                results.append(await self._apply_alone(failed))
            except Exception as exc:  # a storage error: each alone, so each gets its own answer
                log.warning("group of %d callbacks failed (%s); applying them one by one", len(events), exc)
                results.extend([await self._apply_alone(event) for event in events])
                break
        return results

    async def _apply_alone(self, event: IncomingEvent) -> str | BaseException:
        try:
            return await self._apply(event)
        except Exception as exc:
            return exc

    async def _apply_group(self, events: list[IncomingEvent]) -> list[str]:
        """Every event in one transaction, in order; raises _GroupBroken (rolling it all back)
        at the first handler that refuses or fails."""
        outcomes: list[str] = []
        async with self._db() as session, session.begin():
            # Every dedupe key in one statement; each event then finds whether its key was new.
            fresh = await remember_callbacks(
                session=session, keys=[event.dedupe_key for event in events], at=self._clock.now()
            )
            applied = [event for event in events if event.dedupe_key in fresh]
            for router in self._routers:
                for read_ahead in router.ahead:
                    await read_ahead(session, applied, self._clock.now())
            for index, event in enumerate(events):
                admitted = await self._admit(session, event, segment=index, fresh=fresh)
                if isinstance(admitted, str):
                    outcomes.append(admitted)  # (a duplicate may be a re-send within the group)
                    continue
                try:
                    outcomes.append(await self._route(admitted, event))
                    if not session.sync_session._is_clean():  # (a clean session's flush is a no-op)
                        await session.flush()
                except Exception as exc:  # logged when it is applied alone
                    raise _GroupBroken(index) from exc
        return outcomes

    async def _admit(
        self, session: Any, event: IncomingEvent, segment: int = 0, fresh: set[str] | None = None
    ) -> Context | str:
        """Spend the event's dedupe key and check its sender is staff: the context its handler
        runs in, or the outcome that ends it here ("duplicate", or "not_staff" answered).
        `fresh`: the keys this transaction has recorded already and not yet spent (a group's)."""
        if fresh is not None:
            if event.dedupe_key not in fresh:
                return "duplicate"  # applied before, or earlier in this group (a re-send)
            fresh.discard(event.dedupe_key)
        elif not await remember_callback(session=session, key=event.dedupe_key, at=self._clock.now()):
            return "duplicate"
        ctx = self._context(session, event, segment)
        if ctx.member is None:
            log.warning("event from unknown user %s refused", event.user)
            ctx.reply_text(self._views.NOT_STAFF)
            return "not_staff"
        return ctx

    async def _apply(self, event: IncomingEvent) -> str:
        """The event's dedupe key, its handler's changes and replies, in one transaction. A
        handler that refuses or fails changes nothing: its transaction rolls back, and the key
        and the answer (the refusal, or an apology) are recorded in a transaction of their own.
        (No savepoint around the handler: the path taken by almost every callback pays for
        none, and only a refusal pays for a second transaction.)"""
        try:
            async with self._db() as session, session.begin():
                admitted = await self._admit(session, event)
                if isinstance(admitted, str):
                    return admitted
                try:
                    outcome = await self._route(admitted, event)
                    await session.flush()  # the handler's own writes fail here, not at the commit
                    return outcome
                except UserFacingError as exc:
                    failed = _HandlerFailed("refused", exc.message)
                except Exception:
                    log.exception("handler failed on %s", event.dedupe_key)
                    quiet = isinstance(event, OtherEvent | MenuView | EnterAgent)
                    failed = _HandlerFailed("error", None if quiet else self._views.APOLOGY)
                raise failed  # rolls the transaction back: nothing the handler did stays
        except _HandlerFailed as failure:
            async with self._db() as session, session.begin():
                if not await remember_callback(session=session, key=event.dedupe_key, at=self._clock.now()):
                    return "duplicate"  # another instance applied a re-send meanwhile
                if failure.answer:
                    self._context(session, event).reply_text(failure.answer)
            return failure.outcome

    async def _route(self, ctx: Context, event: IncomingEvent) -> str:
        if isinstance(event, CardClick):
            prefix, parts = unpack_action(event.event_key)
            for router in self._routers:
                for card_prefix, card_handler in router.cards:
                    if card_prefix == prefix:
                        await card_handler(ctx, event, parts)
                        return f"card:{prefix}"
            raise UserFacingError(self._views.UNKNOWN_CARD)
        if isinstance(event, MenuClick):
            return await self._menu_click(ctx, event)
        if isinstance(event, MenuView):
            log.debug("%s opened the menu link %s", event.user, event.url)
            return "menu:view"  # WeCom opened the page already; a chat answer would only be noise
        if isinstance(event, EnterAgent):
            for router in self._routers:
                for enter_handler in router.entered:
                    await enter_handler(ctx, event)
                    return "enter_agent"
            return "ignored:enter_agent"
        if isinstance(event, OtherEvent):
            for router in self._routers:
                for other_handler in router.others:
                    await other_handler(ctx, event)
                    return f"other:{event.kind}"
            return f"ignored:{event.kind}"
        parsed = self.commands.parse(event.content)
        if parsed is not None:
            command, spec = parsed
            if spec is None:
                raise UserFacingError(
                    self._views.unknown_command(command.word, self.commands.suggestions(command.word))
                )
            return await self._command(ctx, command, spec)
        for router in self._routers:
            for text_handler in router.texts:
                try:
                    await text_handler(ctx, event)
                except SkipHandler:
                    continue
                return "text"
        ctx.reply_text(self._views.TEXT_HINT)
        return "hint"

    async def _command(self, ctx: Context, command: Command, spec: CommandSpec) -> str:
        """Run a command after its role check (typed, or tapped in the app menu)."""
        member = ctx.member
        if (
            spec.roles
            and member is not None
            and not (set(spec.roles) & set(member.roles) or "admin" in member.roles)
        ):
            raise UserFacingError(self._views.not_permitted(spec))
        await spec.handler(ctx, command)
        return f"command:{spec.name}"

    async def _menu_click(self, ctx: Context, event: MenuClick) -> str:
        """A menu button CMD_X answers exactly as the text /x would."""
        name = command_of_menu_key(event.key)
        spec = self.commands.spec(name) if name else None
        if spec is None:
            log.warning("menu key %r from %s names no command", event.key, event.user)
            raise UserFacingError(self._views.UNKNOWN_MENU_KEY)
        command = Command(name=spec.name, word=spec.name, args="", body="")
        return await self._command(ctx, command, spec)

"""Inbound WeCom events: wechatpy parsing plus template_card_event, converted to our own types."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import xmltodict
from wechatpy.fields import IntegerField, StringField
from wechatpy.work import parse_message
from wechatpy.work.events import BaseEvent, ClickEvent, EnterAgentEvent, ViewEvent


class TemplateCardEvent(BaseEvent):
    """Card button click; wechatpy 2.0.0a26 lacks it (registered by subclassing, see facts §3.4)."""

    event = "template_card_event"
    event_key = StringField("EventKey")
    task_id = StringField("TaskId")
    card_type = StringField("CardType")
    response_code = StringField("ResponseCode")
    agent = IntegerField("AgentID", 0)


class EventParseError(Exception):
    """The decrypted XML is not a message or event we can read."""


@dataclass(frozen=True)
class TextMessage:
    user: str
    content: str
    msg_id: int
    create_time: int

    @property
    def dedupe_key(self) -> str:
        return f"msg:{self.msg_id}"


@dataclass(frozen=True)
class CardClick:
    user: str
    event_key: str
    task_id: str
    response_code: str
    create_time: int

    @property
    def dedupe_key(self) -> str:
        # Events carry no MsgId: WeCom's rule is FromUserName + CreateTime; the task and the
        # button are added so two different clicks in the same second stay distinct.
        return f"card:{self.user}:{self.create_time}:{self.task_id}:{self.event_key}"


def _short(value: str) -> str:
    """`value` as a piece of a dedupe key: itself when short, else its digest (keys are ≤ 200)."""
    if len(value) <= 64:
        return value
    return "sha256-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _MenuTap:
    """A tap on an app menu button (§8.2); WeCom's EventKey is the button's key or URL."""

    user: str
    event_key: str
    create_time: int
    kind: ClassVar[str] = ""

    @property
    def dedupe_key(self) -> str:
        return f"menu:{self.user}:{self.create_time}:{self.kind}:{_short(self.event_key)}"


class MenuClick(_MenuTap):
    """A button of type click: answered like the command its key names."""

    kind = "click"

    @property
    def key(self) -> str:
        return self.event_key


class MenuView(_MenuTap):
    """A button of type view: WeCom opens the page and tells us afterwards (informational)."""

    kind = "view"

    @property
    def url(self) -> str:
        return self.event_key


@dataclass(frozen=True)
class EnterAgent:
    """The member opened the app (sent every time it is opened)."""

    user: str
    create_time: int

    @property
    def dedupe_key(self) -> str:
        return f"evt:{self.user}:{self.create_time}:enter_agent"


@dataclass(frozen=True)
class OtherEvent:
    """Anything else (images, unknown types): acknowledged, answered with a hint."""

    user: str
    kind: str
    create_time: int
    msg_id: int | None = None

    @property
    def dedupe_key(self) -> str:
        if self.msg_id is not None:
            return f"msg:{self.msg_id}"
        return f"evt:{self.user}:{self.create_time}:{self.kind}"


IncomingEvent = TextMessage | CardClick | MenuClick | MenuView | EnterAgent | OtherEvent


def parse_event(xml: str) -> IncomingEvent:
    """Turn decrypted callback XML into one of our event types; raise EventParseError."""
    try:
        message = parse_message(xml)
    except Exception as exc:  # wechatpy raises assorted parser errors on bad XML
        raise EventParseError(f"unparseable XML: {type(exc).__name__}") from exc
    user = str(getattr(message, "source", "") or "")
    create_time = _create_time(message)
    if not user:
        raise EventParseError("missing FromUserName")
    if isinstance(message, TemplateCardEvent):
        if not message.task_id or not message.event_key:
            raise EventParseError("card event without TaskId or EventKey")
        return CardClick(
            user=user,
            event_key=message.event_key,
            task_id=message.task_id,
            response_code=message.response_code or "",
            create_time=create_time,
        )
    if isinstance(message, ClickEvent):
        return MenuClick(user=user, event_key=str(message.key or ""), create_time=create_time)
    if isinstance(message, ViewEvent):
        return MenuView(user=user, event_key=str(message.url or ""), create_time=create_time)
    if isinstance(message, EnterAgentEvent):
        return EnterAgent(user=user, create_time=create_time)
    msg_id = getattr(message, "id", None)
    if message.type == "text":
        return TextMessage(
            user=user, content=str(message.content or ""), msg_id=int(msg_id), create_time=create_time
        )
    kind = str(getattr(message, "event", None) or message.type)
    if kind == "unknown":
        kind = _raw_kind(xml)
    return OtherEvent(
        user=user, kind=kind, create_time=create_time, msg_id=int(msg_id) if msg_id else None
    )


def _create_time(message: object) -> int:
    raw = getattr(message, "_data", {}).get("CreateTime")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise EventParseError("missing CreateTime") from None


def _raw_kind(xml: str) -> str:
    data = xmltodict.parse(xml).get("xml", {})
    return str(data.get("Event") or data.get("MsgType") or "unknown")

"""Inbound WeCom events: wechatpy parsing plus template_card_event, converted to our own types."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, ClassVar

from wechatpy.fields import IntegerField, StringField
from wechatpy.messages import UnknownMessage
from wechatpy.work.events import EVENT_TYPES, BaseEvent, ClickEvent, EnterAgentEvent, ViewEvent
from wechatpy.work.messages import MESSAGE_TYPES


class TemplateCardEvent(BaseEvent):
    """Card button click; wechatpy 2.0.0a26 lacks it (registered by subclassing, see docs/wecom.md §3.4)."""

    event = "template_card_event"
    event_key = StringField("EventKey")
    task_id = StringField("TaskId")
    card_type = StringField("CardType")
    response_code = StringField("ResponseCode")
    agent = IntegerField("AgentID", 0)


class EventParseError(Exception):
    """The decrypted XML is not a message or event we can read (the message names the field and
    the rule broken, never the value: it is logged)."""


# Field rules for a validly signed callback (a bad field is HTTP 400: nothing stored or changed).
USERID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # WeCom userid: 1..64 of letters, digits, _-@.
TASK_ID_RE = re.compile(r"[A-Za-z0-9_@-]{1,128}")  # task_id rules of message/send (docs/wecom.md §4.4)
WORD_RE = re.compile(r"[A-Za-z_]{1,64}")  # MsgType, Event, CardType
DIGITS_RE = re.compile(r"[0-9]{1,20}")  # ASCII only (str.isdigit also takes "²" and "١")
RESPONSE_CODE_RE = re.compile(r"[!-~]{1,200}")  # visible ASCII; stored in a 200-character column
INT64_MAX = 2**63 - 1  # MsgId is a 64-bit integer (docs/wecom.md §3.1)
INT32_MAX = 2**31 - 1  # AgentID
CREATE_TIME_RANGE = (1_000_000_000, 2**32 - 1)  # seconds: 2001-09-09 .. 2106-02-07
CARD_KEY_BYTES = 1024  # a card button's key (docs/wecom.md §4.4)
MENU_KEY_BYTES = 128  # a click menu button's key (docs/wecom.md §8.2); a view button's URL ≤ 1024 bytes
# WeCom documents 2048 bytes for text it *sends* (message/send, passive reply: docs/wecom.md §1.6, §4.3),
# not for what members type; a longer inbound text is accepted up to this bound (bodies arrive
# in pieces anyway, and refusing a real message would make WeCom re-send it and then drop it).
CONTENT_BYTES = 64 * 1024
DEDUPE_KEY_CHARS = 200  # ProcessedCallback.key


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
        return _bounded(f"card:{self.user}:{self.create_time}:{self.task_id}:{self.event_key}")


def _bounded(key: str) -> str:
    """A dedupe key that fits its column: itself, or a prefix plus the digest of all of it."""
    if len(key) <= DEDUPE_KEY_CHARS:
        return key
    return key[:150] + "~sha256-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _MenuTap:
    """A tap on an app menu button (docs/wecom.md §8.2); WeCom's EventKey is the button's key or URL."""

    user: str
    event_key: str
    create_time: int
    kind: ClassVar[str] = ""

    @property
    def dedupe_key(self) -> str:
        return _bounded(f"menu:{self.user}:{self.create_time}:{self.kind}:{self.event_key}")


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


def parse_xml(text: str) -> dict[str, Any]:
    """WeCom's XML as xmltodict gives it (what wechatpy reads): {root: {child: text, …}}, text
    stripped and empty text None, a repeated child a list, attributes ignored (WeCom sends
    none). ElementTree's C parser does it in a third of the time. A document type is refused
    before parsing: WeCom never sends one, and its entities are how XML bombs go off."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("XML with a document type declaration")
    root = ElementTree.fromstring(text)
    return {root.tag: _element_value(root)}


def _element_value(element: ElementTree.Element) -> Any:
    if len(element) == 0:
        return (element.text or "").strip() or None
    fields: dict[str, Any] = {}
    for child in element:
        value = _element_value(child)
        if child.tag not in fields:
            fields[child.tag] = value
        elif isinstance(fields[child.tag], list):
            fields[child.tag].append(value)
        else:
            fields[child.tag] = [fields[child.tag], value]
    return fields


def parse_event(xml: str) -> IncomingEvent:
    """Turn decrypted callback XML into one of our event types; raise EventParseError."""
    try:
        data = parse_xml(xml).get("xml")
    except Exception as exc:  # expat errors, bad encodings
        raise EventParseError(f"unparseable XML: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise EventParseError("no <xml> element with fields")
    check_fields(data)
    try:
        message = _wechatpy_message(data)
    except Exception as exc:  # wechatpy raises assorted errors on fields it cannot read
        raise EventParseError(f"unreadable fields: {type(exc).__name__}") from exc
    user = str(data["FromUserName"])
    create_time = int(data["CreateTime"])
    if isinstance(message, TemplateCardEvent):
        return CardClick(
            user=user,
            event_key=str(data["EventKey"]),
            task_id=str(data["TaskId"]),
            response_code=str(data.get("ResponseCode") or ""),
            create_time=create_time,
        )
    if isinstance(message, ClickEvent):
        return MenuClick(user=user, event_key=str(data.get("EventKey") or ""), create_time=create_time)
    if isinstance(message, ViewEvent):
        return MenuView(user=user, event_key=str(data.get("EventKey") or ""), create_time=create_time)
    if isinstance(message, EnterAgentEvent):
        return EnterAgent(user=user, create_time=create_time)
    msg_id = data.get("MsgId")
    if message.type == "text":
        assert msg_id is not None  # check_fields requires MsgId on a text message
        return TextMessage(
            user=user, content=str(data.get("Content") or ""), msg_id=int(msg_id), create_time=create_time
        )
    kind = str(getattr(message, "event", None) or message.type)
    if kind == "unknown":
        kind = str(data.get("Event") or data.get("MsgType"))
    return OtherEvent(user=user, kind=kind, create_time=create_time, msg_id=int(msg_id) if msg_id else None)


def _wechatpy_message(data: dict[str, Any]) -> Any:
    """wechatpy's message object for the fields already parsed: what its parse_message(xml)
    gives, without parsing the XML a second time (the same class tables, the same classes)."""
    message_type = str(data["MsgType"]).lower()
    if message_type == "event":
        return EVENT_TYPES.get(str(data["Event"]).lower(), UnknownMessage)(data)
    return MESSAGE_TYPES.get(message_type, UnknownMessage)(data)


def check_fields(data: dict[str, object]) -> None:
    """Every field we read has the type and length WeCom gives it; EventParseError otherwise."""

    def text(name: str, *, required: bool = False) -> str | None:
        value = data.get(name)
        if value is None or value == "":
            if required:
                raise EventParseError(f"missing {name}")
            return None
        if not isinstance(value, str):
            raise EventParseError(f"{name} is not a plain value")
        return value

    def matching(name: str, pattern: re.Pattern[str], *, required: bool = False) -> str | None:
        value = text(name, required=required)
        if value is not None and not pattern.fullmatch(value):
            raise EventParseError(f"bad {name} ({len(value)} characters, pattern {pattern.pattern})")
        return value

    def number(name: str, low: int, high: int, *, required: bool = False) -> None:
        value = matching(name, DIGITS_RE, required=required)
        if value is not None and not low <= int(value) <= high:
            raise EventParseError(f"{name} out of range {low}..{high}")

    def at_most(name: str, limit: int) -> None:
        value = text(name)
        if value is not None and len(value.encode("utf-8")) > limit:
            raise EventParseError(f"{name} longer than {limit} bytes")

    matching("ToUserName", USERID_RE, required=True)
    matching("FromUserName", USERID_RE, required=True)
    number("CreateTime", *CREATE_TIME_RANGE, required=True)
    msg_type = matching("MsgType", WORD_RE, required=True)
    number("AgentID", 0, INT32_MAX)
    number("MsgId", 0, INT64_MAX, required=(msg_type or "").lower() == "text")
    at_most("Content", CONTENT_BYTES)
    if (msg_type or "").lower() != "event":
        return
    event = (matching("Event", WORD_RE, required=True) or "").lower()
    card = event == "template_card_event"
    matching("TaskId", TASK_ID_RE, required=card)
    text("EventKey", required=card)
    at_most("EventKey", MENU_KEY_BYTES if event in ("click", "enter_agent") else CARD_KEY_BYTES)
    matching("CardType", WORD_RE)
    matching("ResponseCode", RESPONSE_CODE_RE)

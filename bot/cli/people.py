"""People on their phones in the simulator: type, tap buttons, read what arrived (tests and bench)."""

from __future__ import annotations

from typing import Any

from bot.cli.stack import Stack
from bot.simulator import button_key as find_button_key


class PeopleError(AssertionError):
    """What a person expected is not there (no reply, no card, no such button).

    An AssertionError, so a test that trips over it fails like any other assertion."""


def _check(result: Any) -> None:
    if result.status != 200:
        raise PeopleError(f"the bot answered the callback with {result}")


async def say(stack: Stack, user: str, text: str, *, msg_id: int | None = None) -> str:
    """`user` sends a text to the app; the bot's replies are then delivered. Returns the first
    text `user` received in answer (the reply comes before anything else it caused), or ""."""
    seen = len(texts(stack, user))
    _check(await stack.sim.send_text(user, text, msg_id=msg_id))
    await stack.drain()
    answers = texts(stack, user)[seen:]
    return answers[0] if answers else ""


def texts(stack: Stack, user: str) -> list[str]:
    return [d.payload["text"]["content"] for d in stack.sim.inbox(user) if d.msgtype == "text"]


def last_text(stack: Stack, user: str) -> str:
    received = texts(stack, user)
    if not received:
        raise PeopleError(f"{user} received no text")
    return received[-1]


def cards(stack: Stack, user: str) -> list[Any]:
    return [d for d in stack.sim.inbox(user) if d.msgtype == "template_card"]


def active_card(stack: Stack, user: str) -> Any:
    """The newest card whose buttons `user` can still tap."""
    for delivered in reversed(cards(stack, user)):
        state = stack.sim.card(delivered.payload["template_card"]["task_id"])
        if state.is_active_for(user):
            return delivered
    raise PeopleError(f"{user} holds no active card")


def current_card(stack: Stack, user: str, delivered: Any) -> dict[str, Any]:
    """The card as `user` sees it now: WeCom may have replaced it since it was delivered."""
    return dict(stack.sim.card(delivered.payload["template_card"]["task_id"]).shown_to(user))


def button_key(card: dict[str, Any], label: str) -> str:
    """The button named `label` (see bot.simulator.button_key), which must be there."""
    key = find_button_key(card, label)
    if key is None:
        raise PeopleError(f"no button {label}")
    return key


async def tap(stack: Stack, user: str, label: str, *, deliver: bool = True) -> Any:
    """`user` taps button `label` on their newest active card (as it looks now)."""
    delivered = active_card(stack, user)
    task_id = delivered.payload["template_card"]["task_id"]
    _check(await stack.sim.click(user, task_id, button_key(current_card(stack, user, delivered), label)))
    if deliver:
        await stack.drain()
    return delivered


def card_click_xml(stack: Stack, user: str, task_id: str, key: str) -> str:
    created = int(stack.clock.now().timestamp())
    return (
        f"<xml><ToUserName><![CDATA[{stack.settings.wecom.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        f"<ResponseCode><![CDATA[forged-code]]></ResponseCode><AgentID>{stack.settings.wecom.agent_id}</AgentID></xml>"
    )


async def forged_tap(stack: Stack, user: str, card: dict[str, Any], label: str) -> None:
    """A correctly signed click by `user` on `card`'s button `label`, even one WeCom would not
    let them make (a card they never held, or one already greyed): what a replay looks like."""
    _check(await stack.sim.post_raw(card_click_xml(stack, user, card["task_id"], button_key(card, label))))
    await stack.drain()

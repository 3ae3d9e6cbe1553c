"""Plain-text rendering of what a member's phone shows for one delivered message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.simulator.wecom import Delivered, WeComSimulator


def render(delivered: Delivered, sim: WeComSimulator) -> str:
    """Text, markdown, files and template cards as a person would read them."""
    payload = delivered.payload
    if delivered.msgtype == "text":
        return str(payload["text"]["content"])
    if delivered.msgtype == "markdown":
        return str(payload["markdown"]["content"])
    if delivered.msgtype == "file":
        media = sim.media.get(payload["file"]["media_id"])
        name = media.filename if media else payload["file"]["media_id"]
        size = len(media.content) if media else 0
        return f"📎 文件：{name}（{size} 字节）"
    if delivered.msgtype == "template_card":
        return _render_card(delivered, sim)
    return f"[{delivered.msgtype}]"


def _render_card(delivered: Delivered, sim: WeComSimulator) -> str:
    sent = delivered.payload["template_card"]
    state = sim.card(sent["task_id"]) if sent.get("task_id") else None  # text_notice may have none
    card = state.shown_to(delivered.userid) if state else sent
    lines = []
    source = card.get("source", {}).get("desc")
    if source:
        lines.append(f"〔{source}〕")
    title = card.get("main_title", {})
    lines.append(f"┏ {title.get('title', '')}")
    if title.get("desc"):
        lines.append(f"┃ {title['desc']}")
    if card.get("sub_title_text"):
        lines.extend(f"┃ {line}" for line in str(card["sub_title_text"]).split("\n"))
    for field in card.get("horizontal_content_list", []):
        lines.append(f"┃ {field.get('keyname')}：{field.get('value', '')}")
    quote = card.get("quote_area")
    if quote:
        if quote.get("title"):
            lines.append(f"┃ ▍{quote['title']}")
        for line in str(quote.get("quote_text", "")).splitlines():
            lines.append(f"┃ ▍{line}")
    for jump in card.get("jump_list", []):
        lines.append(f"┃ ↗ {jump.get('title', '')} → {_link_target(jump)}")
    action = card.get("card_action")
    if action and action.get("type", 0):
        lines.append(f"┃ （点按卡片 → {_link_target(action)}）")
    greyed = state.greyed.get(delivered.userid) if state else None
    if greyed is not None:
        lines.append(f"┗ 〖{greyed}〗（按钮已置灰）")
    else:
        buttons = "  ".join(f"[{b['text']}]" for b in card.get("button_list", []))
        lines.append(f"┗ {buttons}")
    return "\n".join(lines)


def _link_target(link: dict[str, Any]) -> str:
    """Where a card_action or jump_list entry leads: a URL or a mini program."""
    if link.get("type") == 2:
        return f"小程序 {link.get('appid', '')} {link.get('pagepath', '')}".rstrip()
    return str(link.get("url", "")) if link.get("type") == 1 else "（无链接）"

"""The app menu: `sanshen menu sync`, menu clicks answered as commands, view events, the welcome."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from bot.cli.stack import Stack, stack_settings
from bot.services.menu import app_menu
from bot.views import NOT_STAFF, UNKNOWN_MENU_KEY
from bot.wecom.events import EnterAgent, MenuClick, MenuView, parse_event
from tests.flow import drafts, last_text, say, tap, texts
from tests.test_review_flow import SUBMISSION

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, stack: Stack, *, public_url: str | None = None) -> Path:
    """The example config pointed at the running simulator (and, unless told, the bot's address)."""
    wecom = stack.settings.wecom
    values: dict[str, Any] = {
        "corp_id": wecom.corp_id,
        "agent_id": wecom.agent_id,
        "secret": wecom.secret,
        "token": wecom.token,
        "encoding_aes_key": wecom.encoding_aes_key,
        "api_base": wecom.api_base,
        "public_url": stack.settings.server.public_url if public_url is None else public_url,
        "url": stack.settings.database.url,
    }
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for key, value in values.items():
        literal = str(value) if isinstance(value, int) else f'"{value}"'
        text, replaced = re.subn(rf"^{key} = .*$", f"{key} = {literal}", text, count=1, flags=re.M)
        assert replaced == 1, key
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in a child process; awaited, so the simulator in this event loop can answer it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANSHEN_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return int(process.returncode or 0), out.decode(), err.decode()


def leaves(menu: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for button in menu["button"]:
        found.extend(button.get("sub_button") or [button])
    return found


# ---- the menu and `sanshen menu sync` ------------------------------------------------------------


def test_menu_shape_fits_wecom_limits(sqlite_url: str) -> None:
    with_pages = stack_settings(sqlite_url, {"server": {"public_url": "https://shenhe.example.gov.cn/"}})
    menu = app_menu(with_pages)
    assert [b["name"] for b in menu["button"]] == ["投稿", "待办", "更多"]
    submit = {"type": "view", "name": "投稿", "url": "https://shenhe.example.gov.cn/app/submit"}
    assert menu["button"][0] == submit
    more = menu["button"][2]["sub_button"]
    assert [b["name"] for b in more] == ["我的", "值班", "账号", "工作台", "帮助"]
    assert len(menu["button"]) <= 3 and len(more) <= 5
    assert all(len(b["name"].encode()) <= 16 for b in menu["button"])
    assert {b.get("key") for b in leaves(menu)} - {None} == {
        "CMD_PENDING",
        "CMD_MINE",
        "CMD_DUTY",
        "CMD_ACCOUNTS",
        "CMD_HELP",
    }
    without = app_menu(stack_settings(sqlite_url))
    assert not [b for b in leaves(without) if b["type"] == "view"]
    assert [b["name"] for b in without["button"]] == ["待办", "更多"]


async def test_cli_menu_sync_sets_and_reads_back_the_menu(sqlite_stack: Stack, tmp_path: Path) -> None:
    stack = sqlite_stack
    base = stack.settings.server.public_url
    code, out, err = await run_cli("menu", "sync", "-c", str(write_config(tmp_path, stack)))
    assert code == 0, err
    menu = stack.sim.menu
    assert menu is not None and [b["name"] for b in menu["button"]] == ["投稿", "待办", "更多"]
    urls = {b["name"]: b["url"] for b in leaves(menu) if b["type"] == "view"}
    assert urls == {"投稿": f"{base}/app/submit", "工作台": f"{base}/app/"}
    assert stack.sim.call_count("/menu/get") == 1, "the menu is read back after it is set"
    assert "应用菜单已设置" in out and f"投稿 → 打开 {base}/app/submit" in out
    assert "待办 → /pending" in out and "帮助 → /help" in out
    assert stack.settings.wecom.secret not in out + err
    # Without public_url the page buttons are left out, and the output says so.
    no_pages = write_config(tmp_path, stack, public_url="")
    code, out, err = await run_cli("menu", "sync", "-c", str(no_pages))
    assert code == 0, err
    assert not [b for b in leaves(stack.sim.menu) if b["type"] == "view"]
    assert "未配置 [server] public_url" in out and "投稿、工作台" in out


async def test_cli_menu_sync_reports_wecom_errors(sqlite_stack: Stack, tmp_path: Path) -> None:
    stack = sqlite_stack
    config = write_config(tmp_path, stack)
    stack.sim.fail_next("/menu/create", 40016)
    code, out, err = await run_cli("menu", "sync", "-c", str(config))
    assert code == 1 and stack.sim.menu is None
    assert "errcode 40016" in err and "invalid button size" in err and "设置应用菜单失败" in err
    assert stack.settings.wecom.secret not in out + err
    secret = stack.settings.wecom.secret
    bad = config.read_text(encoding="utf-8").replace(f'secret = "{secret}"', 'secret = "wrong"')
    config.write_text(bad, encoding="utf-8")
    code, out, err = await run_cli("menu", "sync", "-c", str(config))
    assert code == 1 and "errcode 40001" in err
    config.write_text(bad.replace("agent_id = ", "agent_id = -"), encoding="utf-8")
    code, out, err = await run_cli("menu", "sync", "-c", str(config))
    assert code == 2 and err.startswith("配置错误 wecom.agent_id")


# ---- menu events ---------------------------------------------------------------------------------


async def click(stack: Stack, user: str, key: str) -> None:
    assert (await stack.sim.menu_click(user, key)).status == 200
    await stack.drain()


async def test_menu_click_answers_like_the_command(stack: Stack) -> None:
    stack.sim.menu = app_menu(stack.settings)
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    for key, command in (
        ("CMD_PENDING", "/pending"),
        ("CMD_MINE", "/mine"),
        ("CMD_DUTY", "/duty"),
        ("CMD_ACCOUNTS", "/accounts"),
        ("CMD_HELP", "/help"),
    ):
        user = "zhangkz" if command == "/pending" else "wangxm"
        await say(stack, user, command)
        typed = last_text(stack, user)
        await click(stack, user, key)
        assert last_text(stack, user) == typed, key
    assert "待您审核 1 件" in last_text(stack, "zhangkz")


async def test_menu_click_keeps_the_role_check(stack: Stack) -> None:
    await click(stack, "wangxm", "CMD_EXPORT")  # no menu stored: any key reaches the bot
    assert "没有使用 /export 的权限" in last_text(stack, "wangxm")
    assert not [d for d in stack.sim.inbox("wangxm") if d.msgtype == "file"]


async def test_unknown_menu_key_answers_politely_and_changes_nothing(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    before = [(d.id, d.status, d.stage) for d in await drafts(stack)]
    inbox = len(stack.sim.inbox("wangxm"))
    for key in ("OLD_BUTTON", "CMD_", "CMD_FLY"):
        await click(stack, "wangxm", key)
        assert last_text(stack, "wangxm") == UNKNOWN_MENU_KEY
    assert len(stack.sim.inbox("wangxm")) == inbox + 3
    assert [(d.id, d.status, d.stage) for d in await drafts(stack)] == before


async def test_a_resent_menu_click_is_applied_once(stack: Stack) -> None:
    stack.sim.menu = app_menu(stack.settings)
    await click(stack, "wangxm", "CMD_HELP")
    assert (await stack.sim.resend_last()).status == 200
    await stack.drain()
    assert len(texts(stack, "wangxm")) == 1
    stack.clock.advance(seconds=1)  # a second tap is a new event
    await click(stack, "wangxm", "CMD_HELP")
    assert len(texts(stack, "wangxm")) == 2


async def test_view_event_gets_no_reply(stack: Stack) -> None:
    stack.sim.menu = app_menu(stack.settings)
    url = f"{stack.settings.server.public_url}/app/submit"
    assert (await stack.sim.menu_view("wangxm", url)).status == 200
    await stack.drain()
    assert stack.sim.inbox("wangxm") == []


async def test_non_staff_get_the_not_staff_answer(stack: Stack) -> None:
    stack.sim.add_member("visitor", "访客")
    await click(stack, "visitor", "CMD_PENDING")
    assert last_text(stack, "visitor") == NOT_STAFF


# ---- enter_agent: the welcome --------------------------------------------------------------------


async def enter(stack: Stack, user: str) -> None:
    assert (await stack.sim.enter_agent(user)).status == 200
    await stack.drain()


async def test_enter_agent_greets_once_a_day_with_what_waits(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    before = len(texts(stack, "zhangkz"))
    await enter(stack, "zhangkz")
    greeting = last_text(stack, "zhangkz")
    assert len(texts(stack, "zhangkz")) == before + 1
    assert greeting.startswith("张科长，您好") and "待您审核 1 件" in greeting
    assert "1号《关于开展2025年防汛演练的通知》二审" in greeting
    assert f"工作台：{stack.settings.server.public_url}/app/" in greeting
    stack.clock.advance(hours=3)
    await enter(stack, "zhangkz")
    assert (await stack.sim.resend_last()).status == 200
    await stack.drain()
    assert len(texts(stack, "zhangkz")) == before + 1, "greeted once a day"
    stack.clock.advance(days=1)
    await enter(stack, "zhangkz")
    assert len(texts(stack, "zhangkz")) == before + 2
    assert "待您审核 1 件" in last_text(stack, "zhangkz")


async def test_enter_agent_with_nothing_pending(stack: Stack) -> None:
    await enter(stack, "liuzr")
    greeting = last_text(stack, "liuzr")
    assert "没有待审核的稿件" in greeting and "/help" in greeting


def test_menu_events_parse_to_typed_events_with_short_dedupe_keys() -> None:
    def xml(event: str, key: str) -> str:
        return (
            "<xml><ToUserName>ww1</ToUserName><FromUserName>wangxm</FromUserName><CreateTime>1764000000"
            f"</CreateTime><MsgType>event</MsgType><Event>{event}</Event><EventKey>{key}</EventKey>"
            "<AgentID>1000002</AgentID></xml>"
        )

    tapped = parse_event(xml("click", "CMD_PENDING"))
    assert isinstance(tapped, MenuClick) and tapped.key == "CMD_PENDING"
    assert tapped.dedupe_key == "menu:wangxm:1764000000:click:CMD_PENDING"
    opened = parse_event(xml("view", "https://shenhe.example.gov.cn/app/" + "x" * 900))
    assert isinstance(opened, MenuView) and opened.url.endswith("x" * 900)
    assert len(opened.dedupe_key) <= 200  # the ProcessedCallback key column
    assert opened.dedupe_key != parse_event(xml("view", "https://shenhe.example.gov.cn/app/")).dedupe_key
    assert isinstance(parse_event(xml("enter_agent", "")), EnterAgent)

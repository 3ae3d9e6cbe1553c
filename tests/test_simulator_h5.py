"""The simulator's H5 side speaks WeCom: OAuth2 sign-in (authorize page, single-use 5-minute
codes, getuserinfo), the app menu API with WeCom's errcodes, menu events in the callback, and
template-card links (card_action, jump_list)."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from wechatpy.work import parse_message
from wechatpy.work.crypto import WeChatCrypto
from yarl import URL

from bot.core.clock import FrozenClock
from bot.simulator import SIM_USER_COOKIE, SimulatorError, WeComSimulator, render

CORP, SECRET, AGENT = "wwsimcorp0001", "sim-secret", 1000002
TOKEN, AES_KEY = "simtoken", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
BOT_PAGE = "https://bot.example.gov.cn/h5/drafts?id=D001"


class H5:
    """A running simulator, a phone (cookie-keeping browser) and an API client for the bot."""

    def __init__(self, sim: WeComSimulator, base: str, http: aiohttp.ClientSession) -> None:
        self.sim, self.base, self.http = sim, base, http
        self.received: list[Any] = []  # callbacks the stand-in bot got, parsed by wechatpy

    def hold_phone(self, userid: str) -> None:
        self.http.cookie_jar.update_cookies({SIM_USER_COOKIE: userid}, response_url=self.url("/"))

    def url(self, path: str) -> URL:
        return URL(self.base + path)

    async def authorize(self, **overrides: str | None) -> aiohttp.ClientResponse:
        params: dict[str, str | None] = {
            "appid": CORP,
            "redirect_uri": BOT_PAGE,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "s1",
            "agentid": str(AGENT),
        }
        params.update(overrides)
        query = {k: v for k, v in params.items() if v is not None}
        async with self.http.get(
            self.base + "/connect/oauth2/authorize", params=query, allow_redirects=False
        ) as resp:
            await resp.read()
            return resp

    async def code_for(self, userid: str, **overrides: str | None) -> str:
        self.hold_phone(userid)
        resp = await self.authorize(**overrides)
        assert resp.status == 302, await resp.text()
        return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]

    async def token(self) -> str:
        async with self.http.get(
            self.base + "/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}
        ) as resp:
            return str((await resp.json())["access_token"])

    async def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        params = {"access_token": await self.token(), **kwargs.pop("params", {})}
        async with self.http.request(method, self.base + path, params=params, **kwargs) as resp:
            return dict(await resp.json())

    async def getuserinfo(self, code: str | None) -> dict[str, Any]:
        params = {} if code is None else {"code": code}
        return await self.api("GET", "/cgi-bin/auth/getuserinfo", params=params)


Server = Callable[[web.Application], Awaitable[Any]]


@pytest.fixture
async def h5(clock: FrozenClock, aiohttp_server: Server) -> AsyncIterator[H5]:
    sim = WeComSimulator(
        corp_id=CORP, corp_secret=SECRET, agent_id=AGENT, token=TOKEN, encoding_aes_key=AES_KEY, clock=clock
    )
    sim.add_member("zhangsan", "张三")
    sim.add_member("lisi", "李四")
    server = await aiohttp_server(sim.app)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies on an IP-address origin (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        running = H5(sim, str(server.make_url("")).rstrip("/"), http)
        crypto = WeChatCrypto(TOKEN, AES_KEY, CORP)

        async def bot_callback(request: web.Request) -> web.Response:
            q = request.query
            xml = crypto.decrypt_message(await request.text(), q["msg_signature"], q["timestamp"], q["nonce"])
            running.received.append(parse_message(xml))
            return web.Response(text="")

        bot = web.Application()
        bot.router.add_post("/wecom/callback", bot_callback)
        bot_server = await aiohttp_server(bot)
        sim.callback_url = str(bot_server.make_url("/wecom/callback"))
        yield running
        await sim.close()


# ---- OAuth2 ---------------------------------------------------------------------------------


async def test_authorize_redirects_the_phone_holder_with_code_and_state(h5: H5) -> None:
    h5.hold_phone("zhangsan")
    resp = await h5.authorize(state="abcXYZ123")
    assert resp.status == 302
    target = urlsplit(resp.headers["Location"])
    assert (target.scheme, target.netloc) == ("https", "bot.example.gov.cn")
    assert target.path == "/h5/drafts"
    query = parse_qs(target.query)
    assert query["id"] == ["D001"] and query["state"] == ["abcXYZ123"]
    (code,) = query["code"]
    assert 0 < len(code.encode()) <= 512
    first = await h5.getuserinfo(code)
    assert first == {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}
    reused = await h5.getuserinfo(code)
    assert reused["errcode"] == 40029 and "userid" not in reused
    assert h5.sim.call_count("/auth/getuserinfo") == 2


async def test_state_is_echoed_empty_when_absent(h5: H5) -> None:
    h5.hold_phone("lisi")
    resp = await h5.authorize(state=None)
    query = parse_qs(urlsplit(resp.headers["Location"]).query, keep_blank_values=True)
    assert query["state"] == [""]


async def test_without_a_cookie_the_phone_asks_who_is_holding_it(h5: H5) -> None:
    resp = await h5.authorize()
    assert resp.status == 200
    page = await resp.text()
    assert "模拟企业微信：选择身份" in page and "张三" in page and "李四" in page
    assert "Location" not in resp.headers
    link = unescape(next(href for href in re.findall(r'href="([^"]+)"', page) if "lisi" in href))
    async with h5.http.get(h5.base + link, allow_redirects=False) as chosen:
        assert chosen.status == 302
        again = chosen.headers["Location"]
    async with h5.http.get(h5.base + again, allow_redirects=False) as final:
        assert final.status == 302
        code = parse_qs(urlsplit(final.headers["Location"]).query)["code"][0]
    assert (await h5.getuserinfo(code))["userid"] == "lisi"


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"appid": "wwsomeoneelse"}, "appid"),
        ({"response_type": "token"}, "response_type"),
        ({"scope": "snsapi_userinfo"}, "scope"),
        ({"scope": "snsapi_privateinfo", "agentid": None}, "agentid"),
        ({"agentid": "1000099"}, "agentid"),
        ({"redirect_uri": None}, "redirect_uri"),
        ({"redirect_uri": "/h5/drafts"}, "redirect_uri"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri"),
        ({"state": "has-dash"}, "state"),
        ({"state": "a" * 129}, "state"),
    ],
)
async def test_malformed_authorize_links_show_an_error_page(
    h5: H5, overrides: dict[str, str | None], shown: str
) -> None:
    h5.hold_phone("zhangsan")
    resp = await h5.authorize(**overrides)
    assert resp.status == 200 and "Location" not in resp.headers
    page = await resp.text()
    assert "出错了" in page and shown in page
    assert h5.sim._oauth_codes == {}


async def test_state_of_128_ascii_letters_is_accepted(h5: H5) -> None:
    h5.hold_phone("zhangsan")
    assert (await h5.authorize(state="A" * 128)).status == 302


async def test_code_expires_five_minutes_after_issue(h5: H5, clock: FrozenClock) -> None:
    early = await h5.code_for("zhangsan")
    late = await h5.code_for("zhangsan")
    clock.advance(minutes=4, seconds=59)
    assert (await h5.getuserinfo(early))["userid"] == "zhangsan"
    clock.advance(seconds=2)  # 5 min 1 s after issue
    assert (await h5.getuserinfo(late))["errcode"] == 40029


async def test_non_member_gets_a_stable_openid(h5: H5) -> None:
    first = await h5.getuserinfo(await h5.code_for("outsider"))
    second = await h5.getuserinfo(await h5.code_for("outsider"))
    assert "userid" not in first and first["errcode"] == 0
    assert first["openid"] == second["openid"] != h5.sim.openid("someoneelse")
    assert 0 < len(first["openid"].encode()) <= 64


async def test_privateinfo_adds_a_user_ticket(h5: H5) -> None:
    private = await h5.getuserinfo(await h5.code_for("zhangsan", scope="snsapi_privateinfo"))
    assert private["userid"] == "zhangsan" and private["expires_in"] == 1800
    assert 0 < len(private["user_ticket"].encode()) <= 512
    base = await h5.getuserinfo(await h5.code_for("zhangsan"))
    assert "user_ticket" not in base and "expires_in" not in base


async def test_getuserinfo_checks_token_and_code(h5: H5) -> None:
    code = await h5.code_for("zhangsan")
    stale = await h5.token()
    url = h5.base + "/cgi-bin/auth/getuserinfo"
    async with h5.http.get(url, params={"access_token": "forged", "code": code}) as resp:
        assert (await resp.json())["errcode"] == 40014
    async with h5.http.get(url, params={"code": code}) as resp:
        assert (await resp.json())["errcode"] == 41001
    h5.sim.expire_tokens()
    async with h5.http.get(url, params={"access_token": stale, "code": code}) as resp:
        assert (await resp.json())["errcode"] == 42001
    assert (await h5.getuserinfo(None))["errcode"] == 40029
    assert (await h5.getuserinfo("not-a-code"))["errcode"] == 40029
    assert (await h5.getuserinfo(code))["userid"] == "zhangsan", "refused calls leave it unused"


async def test_untrusted_redirect_domain_is_refused_at_exchange(h5: H5) -> None:
    h5.sim.trusted_domain = "bot.example.gov.cn"
    elsewhere = await h5.code_for("zhangsan", redirect_uri="https://evil.example.com/h5")
    assert (await h5.getuserinfo(elsewhere))["errcode"] == 50001
    assert (await h5.getuserinfo(await h5.code_for("zhangsan")))["userid"] == "zhangsan"


async def test_legacy_getuserinfo_answers_capitalised_fields(h5: H5) -> None:
    answer = await h5.api("GET", "/cgi-bin/user/getuserinfo", params={"code": await h5.code_for("lisi")})
    assert answer["UserId"] == "lisi" and answer["errcode"] == 0


# ---- menu -----------------------------------------------------------------------------------

MENU = {
    "button": [
        {"type": "click", "name": "待办", "key": "PENDING"},
        {
            "name": "更多",
            "sub_button": [
                {"type": "view", "name": "投稿", "url": "https://bot.example.gov.cn/h5/submit"},
                {"type": "click", "name": "值班表", "key": "DUTY"},
                {"type": "scancode_push", "name": "扫码", "key": "SCAN"},
            ],
        },
    ]
}


async def menu_call(h5: H5, action: str, *, agentid: Any = AGENT, **kwargs: Any) -> dict[str, Any]:
    method = "POST" if action == "create" else "GET"
    return await h5.api(method, f"/cgi-bin/menu/{action}", params={"agentid": str(agentid)}, **kwargs)


async def test_menu_create_get_delete_round_trip(h5: H5) -> None:
    assert (await menu_call(h5, "get"))["errcode"] == 46003
    assert await menu_call(h5, "create", json=MENU) == {"errcode": 0, "errmsg": "ok"}
    assert h5.sim.menu == MENU
    assert await menu_call(h5, "get") == {"errcode": 0, "errmsg": "ok", **MENU}
    assert (await menu_call(h5, "delete"))["errcode"] == 0
    assert h5.sim.menu is None
    assert (await menu_call(h5, "get"))["errcode"] == 46003


def leaf(**fields: Any) -> dict[str, Any]:
    return {"type": "click", "name": "按钮", "key": "K", **fields}


def parent(*subs: dict[str, Any], name: str = "更多") -> dict[str, Any]:
    return {"name": name, "sub_button": list(subs)}


@pytest.mark.parametrize(
    ("buttons", "errcode"),
    [
        ([leaf(), leaf(), leaf(), leaf()], 40016),
        ([], 40016),
        ([parent(*[leaf()] * 6)], 40023),
        ([parent()], 40023),
        ([{"name": "无类型"}], 40017),
        ([leaf(type="teleport")], 40017),
        ([parent(leaf(type="teleport"))], 40024),
        ([leaf(name="六个汉字按钮")], 40018),  # 18 bytes > 16
        ([leaf(name=" ")], 40018),
        ([parent(leaf(name="汉" * 14))], 40025),  # 42 bytes > 40
        ([parent(leaf(), name="超过十六字节的名")], 40018),
        ([leaf(key=None)], 40019),
        ([leaf(key="k" * 129)], 40019),
        ([parent(leaf(type="scancode_push", key=""))], 40026),
        ([leaf(type="view", url="ftp://bot.example.gov.cn/x")], 40020),
        ([leaf(type="view", url="https://x.cn/" + "a" * 1012)], 40020),
        ([parent(leaf(type="view", url="bot.example.gov.cn/h5"))], 40027),
        ([parent(parent(leaf()))], 40022),
        ([leaf(type="view_miniprogram", appid="wx1")], 40058),
    ],
)
async def test_menu_validation_uses_wecom_errcodes(h5: H5, buttons: list[Any], errcode: int) -> None:
    assert (await menu_call(h5, "create", json={"button": buttons}))["errcode"] == errcode
    assert h5.sim.menu is None


async def test_menu_limits_are_inclusive(h5: H5) -> None:
    buttons = [
        leaf(name="五个汉字abcd", key="k" * 128),  # 16 bytes
        parent(*[leaf(name="汉" * 13 + "a")] * 5),  # 40 bytes each, five sub-buttons
        leaf(type="view", url="https://x.cn/" + "a" * 1011),  # 1024 bytes
    ]
    assert (await menu_call(h5, "create", json={"button": buttons}))["errcode"] == 0


async def test_menu_agentid_and_body_checks(h5: H5) -> None:
    assert (await menu_call(h5, "create", agentid=1000099, json=MENU))["errcode"] == 301002
    assert (await menu_call(h5, "create", agentid="", json=MENU))["errcode"] == 40056
    assert (await menu_call(h5, "get", agentid=1000099))["errcode"] == 301002
    assert (await menu_call(h5, "create", data=b"{not json"))["errcode"] == 47001
    assert h5.sim.menu is None
    async with h5.http.post(
        h5.base + "/cgi-bin/menu/create", params={"agentid": str(AGENT)}, json=MENU
    ) as resp:
        assert (await resp.json())["errcode"] == 41001


async def test_menu_events_reach_the_bot_encrypted(h5: H5) -> None:
    await menu_call(h5, "create", json=MENU)
    assert (await h5.sim.menu_click("zhangsan", "DUTY")).status == 200
    assert (await h5.sim.menu_view("lisi", "https://bot.example.gov.cn/h5/submit")).status == 200
    await h5.sim.enter_agent("lisi")
    click, view, entered = h5.received
    assert (click.type, click.event, click.key, click.source, click.agent) == (
        "event",
        "click",
        "DUTY",
        "zhangsan",
        AGENT,
    )
    assert (view.event, view.source) == ("view", "lisi")
    assert view.url == "https://bot.example.gov.cn/h5/submit"
    assert entered.event == "enter_agent"


async def test_a_phone_can_only_press_buttons_that_exist(h5: H5) -> None:
    await h5.sim.menu_click("zhangsan", "ANYTHING")  # no menu stored: not checked
    await menu_call(h5, "create", json=MENU)
    with pytest.raises(SimulatorError):
        await h5.sim.menu_click("zhangsan", "NOPE")
    with pytest.raises(SimulatorError):
        await h5.sim.menu_click("zhangsan", "SCAN")  # a scancode button sends no click event
    with pytest.raises(SimulatorError):
        await h5.sim.menu_view("zhangsan", "https://elsewhere.example.com/")
    with pytest.raises(SimulatorError):
        await h5.sim.menu_click("stranger", "PENDING")
    assert len(h5.received) == 1


# ---- template cards: card_action and jump_list ----------------------------------------------

TASK_IDS = itertools.count(1)
READ_MORE = {"type": 1, "url": "https://bot.example.gov.cn/h5/drafts?id=D001", "title": "阅读全文"}


def card(card_type: str = "button_interaction", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"card_type": card_type, "main_title": {"title": "【一审】待审稿件"}}
    if card_type == "button_interaction":
        body.update(task_id=f"t-{next(TASK_IDS)}", button_list=[{"text": "通过", "key": "approve"}])
    body.update(fields)
    return body


async def send_card(h5: H5, template_card: dict[str, Any]) -> dict[str, Any]:
    return await h5.api(
        "POST",
        "/cgi-bin/message/send",
        json={
            "touser": "zhangsan",
            "msgtype": "template_card",
            "agentid": AGENT,
            "template_card": template_card,
        },
    )


@pytest.mark.parametrize(
    "bad",
    [
        card(card_action={"type": 1}),
        card(card_action={"type": 1, "url": "not a url"}),
        card(card_action={"type": 2, "pagepath": "pages/index"}),
        card(card_action={"type": 7, "url": READ_MORE["url"]}),
        card(jump_list=[READ_MORE] * 4),
        card(jump_list=[{"type": 1, "url": READ_MORE["url"]}]),
        card(jump_list=[{"type": 1, "title": "阅读全文"}]),
        card(jump_list=[{"type": 2, "title": "小程序"}]),
        card("text_notice"),
        card("text_notice", card_action={"type": 0}),
        card("text_notice", card_action=READ_MORE, jump_list=[{"title": " "}]),
    ],
)
async def test_card_links_are_validated(h5: H5, bad: dict[str, Any]) -> None:
    assert (await send_card(h5, bad))["errcode"] == 40058
    assert h5.sim.inbox("zhangsan") == []


async def test_card_links_are_delivered_and_rendered(h5: H5) -> None:
    action = {"type": 1, "url": "https://bot.example.gov.cn/h5/drafts?id=D001"}
    jumps = [
        READ_MORE,
        {"type": 2, "title": "小程序查看", "appid": "wx123", "pagepath": "p/i"},
        {"title": "仅文字"},
    ]
    assert (await send_card(h5, card(card_action=action, jump_list=jumps)))["errcode"] == 0
    assert (await send_card(h5, card("text_notice", card_action=action)))["errcode"] == 0
    interactive, notice = (render(d, h5.sim) for d in h5.sim.inbox("zhangsan"))
    assert "阅读全文 → https://bot.example.gov.cn/h5/drafts?id=D001" in interactive
    assert "小程序查看 → 小程序 wx123 p/i" in interactive
    assert "点按卡片 → https://bot.example.gov.cn/h5/drafts?id=D001" in notice

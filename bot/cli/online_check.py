"""`check-config --online`: the configured credentials, app and people tried against WeCom itself."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from bot.core.clock import Clock, SystemClock
from bot.core.config import Settings
from bot.rules.calendar import people_with_role
from bot.wecom.client import WeComAPIError, WeComClient, WeComTransportError, proxy_address

# 成员状态 (user/get "status") other than 1 已激活: such a member receives nothing.
INACTIVE_STATUS = {2: "已被禁用", 4: "尚未激活企业微信", 5: "已退出企业"}
PARALLEL_LOOKUPS = 4  # user/get calls at once: a unit's staff list is tens of people
TEST_MESSAGE = (
    "【配置检查】审校助手已能向您发送消息。这是管理员运行 check-config --send-test 发出的测试，无需回复。"
)


@dataclass(frozen=True)
class Finding:
    """One line of the report: a problem that breaks production, or a passed check."""

    ok: bool
    line: str


def explain(error: WeComAPIError, settings: Settings) -> str:
    """What an errcode from the admin's point of view means, and where it is fixed."""
    code = error.errcode
    if code == 60020:
        address = re.search(r"from ip: ?([0-9a-fA-F.:]+)", error.errmsg)
        seen = f"本服务器的出口地址 {address.group(1)}" if address else "本服务器的出口地址"
        return (
            f"企业可信IP: 企业微信拒绝了{seen}（60020）。请在 管理后台 → 应用管理 → 本应用 → "
            "企业可信IP 中添加它（需先设置可信域名或接收消息服务器URL）"
        )
    if code == 40013:
        return "wecom.corp_id: 企业微信不认这个企业ID（40013），请核对 我的企业 → 企业信息 → 企业ID"
    if code == 40001:
        return "wecom.secret: Secret 不正确（40001），请在 应用管理 → 本应用 → Secret 重新查看并复制"
    if code in (40056, 301002):
        return f"wecom.agent_id: {settings.wecom.agent_id} 不是这个 Secret 所属应用的 AgentId（{code}）"
    if code == 48002:
        return f"wecom: 本应用无权调用 {error.path}（48002），请检查应用的接口权限"
    return f"wecom: {error.path} 返回错误 {code}（{error.errmsg}）"


async def check_online(
    settings: Settings,
    http: aiohttp.ClientSession,
    *,
    send_test: bool = False,
    clock: Clock | None = None,
) -> list[Finding]:
    """gettoken, agent/get (the app, its 可信域名), user/get for every configured member, and
    optionally a test message to the admins. Stops at the first failure that hides the rest."""
    client = WeComClient.for_app(http, settings.wecom, clock or SystemClock())
    findings: list[Finding] = []
    try:
        await client.access_token()
        findings.append(Finding(True, "企业ID 与 Secret 有效（已取得 access_token）"))
        app = await client.call(
            "/cgi-bin/agent/get", params={"agentid": str(settings.wecom.agent_id)}, method="GET"
        )
    except WeComTransportError as exc:
        if settings.wecom.proxy:
            via = proxy_address(settings.wecom)
            return [
                *findings,
                Finding(False, f"wecom.proxy: 经代理 {via} 无法连接 {settings.wecom.api_base}（{exc}）"),
            ]
        return [*findings, Finding(False, f"wecom.api_base: 无法连接 {settings.wecom.api_base}（{exc}）")]
    except WeComAPIError as exc:
        return [*findings, Finding(False, explain(exc, settings))]
    findings.extend(_app_findings(app, settings))
    findings.extend(await _member_findings(client, settings))
    if send_test:
        findings.extend(await _send_test(client, settings))
    return findings


def _app_findings(app: dict[str, object], settings: Settings) -> list[Finding]:
    found = [Finding(True, f"应用“{app.get('name', '')}”（AgentId {settings.wecom.agent_id}）可以访问")]
    if app.get("close"):
        found.append(Finding(False, "wecom.agent_id: 该应用已被停用，请在 应用管理 中启用"))
    trusted = str(app.get("redirect_domain") or "")
    host = urlsplit(settings.server.public_url).netloc if settings.server.public_url else ""
    if host and trusted and trusted != host:
        found.append(
            Finding(
                False,
                f"server.public_url: 域名 {host} 与应用的可信域名 {trusted} 不一致，成员打开稿件页面时"
                "网页授权会失败（应用管理 → 本应用 → 网页授权及JS-SDK）",
            )
        )
    elif host and not trusted:
        found.append(
            Finding(
                False, f"server.public_url: 应用尚未设置可信域名，请把 {host} 设为网页授权及JS-SDK 可信域名"
            )
        )
    return found


async def _member_findings(client: WeComClient, settings: Settings) -> list[Finding]:
    gate = asyncio.Semaphore(PARALLEL_LOOKUPS)

    async def look_up(userid: str) -> Finding | None:
        name = settings.name_of(userid)
        async with gate:
            try:
                member = await client.call("/cgi-bin/user/get", params={"userid": userid}, method="GET")
            except WeComAPIError as exc:
                if exc.errcode in (60111, 40003):
                    return Finding(
                        False,
                        f"staff.{userid}: 企业微信通讯录中没有账号 {userid}（{name}，{exc.errcode}），"
                        "请核对 通讯录 → 成员详情 → 账号",
                    )
                if exc.errcode == 60011:
                    return Finding(
                        False,
                        f"staff.{userid}: {name}（{userid}）不在本应用的可见范围内（60011），收不到任何消息；"
                        "请在 应用管理 → 本应用 → 可见范围 中添加",
                    )
                return Finding(False, explain(exc, settings))
        status = int(member.get("status", 1) or 1)
        if status in INACTIVE_STATUS:
            return Finding(False, f"staff.{userid}: {name}（{userid}）{INACTIVE_STATUS[status]}，收不到消息")
        return None

    try:
        results = await asyncio.gather(*(look_up(m.userid) for m in settings.staff))
    except WeComTransportError as exc:
        return [Finding(False, f"wecom.api_base: 读取成员时连接中断（{exc}）")]
    problems = [r for r in results if r is not None]
    if not problems:
        return [Finding(True, f"人员名单中的 {len(settings.staff)} 人都在通讯录和本应用的可见范围内")]
    return problems


async def _send_test(client: WeComClient, settings: Settings) -> list[Finding]:
    admins = people_with_role(settings, "admin")
    if not admins:
        return [Finding(False, "staff: 没有管理员（角色 admin），测试消息无人可发")]
    try:
        answer = await client.send_message(
            {"touser": "|".join(admins), "msgtype": "text", "text": {"content": TEST_MESSAGE}}
        )
    except (WeComAPIError, WeComTransportError) as exc:
        reason = explain(exc, settings) if isinstance(exc, WeComAPIError) else str(exc)
        return [Finding(False, f"测试消息未发出：{reason}")]
    missed = [u for u in str(answer.get("invaliduser", "")).split("|") if u]
    if missed:
        return [Finding(False, f"测试消息未送达 {'、'.join(missed)}（不在可见范围或账号有误）")]
    names = "、".join(settings.name_of(u) for u in admins)
    return [Finding(True, f"测试消息已发给管理员 {names}，请在企业微信中确认收到")]

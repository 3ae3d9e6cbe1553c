"""Typed aiohttp AppKeys for everything the application factory builds."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.work.crypto import WeChatCrypto

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.wecom.client import WeComClient
from bot.wecom.dispatcher import Dispatcher
from bot.wecom.outbox import OutboxSender
from scheduler.sweeper import Sweeper
from storage.db import SessionFactory

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
HTTP = web.AppKey("http", aiohttp.ClientSession)
ENGINE = web.AppKey("engine", AsyncEngine)
DB = web.AppKey("db", SessionFactory)
WECOM = web.AppKey("wecom", WeComClient)
CRYPTO = web.AppKey("crypto", WeChatCrypto)
SENDER = web.AppKey("sender", OutboxSender)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
SWEEPER = web.AppKey("sweeper", Sweeper)

"""A WeCom stand-in that speaks the real protocol: qyapi endpoints and encrypted callbacks."""

from bot.simulator.crypto import CallbackCrypto, CryptoError, signature
from bot.simulator.render import render
from bot.simulator.wecom import (
    SIM_USER_COOKIE,
    CallbackResult,
    CardState,
    Delivered,
    SimulatorError,
    WeComSimulator,
    button_key,
)

__all__ = [
    "button_key",
    "SIM_USER_COOKIE",
    "CallbackCrypto",
    "CallbackResult",
    "CardState",
    "CryptoError",
    "Delivered",
    "SimulatorError",
    "WeComSimulator",
    "render",
    "signature",
]

"""Logging set-up, with a filter that masks secrets and access tokens in every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_TOKEN_PATTERN = re.compile(r"\b(access_token|corpsecret|key|echostr|msg_signature|code)=([^&\s]+)")
_FEED_PATH = re.compile(r"/ical/[^/\s?#]+\.ics")  # a duty calendar feed's path is its secret


class RedactFilter(logging.Filter):
    """Replaces configured secrets, token-like query values and calendar feed paths with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_PATTERN.sub(lambda m: f"{m.group(1)}=***", message)
        redacted = _FEED_PATH.sub("/ical/***.ics", redacted)
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Log to stderr with times; every handler gets the redaction filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

"""Logging set-up, with a filter that masks secrets and access tokens in every record."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

_TOKEN_PATTERN = re.compile(
    r"\b(access_token|corpsecret|key|echostr|msg_signature|code|response_code)=([^&\s]+)"
)
# a template card's single-use response_code, as it appears inside a JSON payload
_RESPONSE_CODE = re.compile(r'("response_code"\s*:\s*")[^"]*(")')
_FEED_PATH = re.compile(r"/ical/[^/\s?#]+\.ics")  # a duty calendar feed's path is its secret


class RedactFilter(logging.Filter):
    """Replaces configured secrets, token-like query values and calendar feed paths with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        # (each pattern only where the text it must contain is: most lines have none of them)
        if "=" in redacted:
            redacted = _TOKEN_PATTERN.sub(lambda m: f"{m.group(1)}=***", redacted)
        if "/ical/" in redacted:
            redacted = _FEED_PATH.sub("/ical/***.ics", redacted)
        if '"response_code"' in redacted:
            redacted = _RESPONSE_CODE.sub(r"\1***\2", redacted)
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time in UTC, level, logger, message, exception), for log
    collectors; the message is already redacted by RedactFilter."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The text line: local time with milliseconds, level, logger, message — as logging's own
    formatter writes it, but the time's date and seconds are formatted once a second (a busy
    bot logs a line a callback)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if self._second[0] != second:
            self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return f"{self._second[1]},{int(record.msecs):03d}"  # (as default_msec_format writes it)


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), fmt: str = "text") -> None:
    """Log to stderr, as text with times or as JSON lines; every handler gets the redaction filter."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

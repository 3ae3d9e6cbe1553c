"""链接与广告 (kind 6, 湛江 第七条): links outside the allowed domains (ads come from the lists)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from bot.proofread.findings import Finding, finding
from bot.proofread.lexicon import Lexicon

KIND = "link"
RULE_LINK = "湛江 第七条：不得链接商业广告页面（链接不在白名单域名内）"

# A link ends at white space, a Chinese character or a Chinese (full-width) mark.
_STOP = r"\s<>\"'\u3000-\u303f\uff00-\uffef\u4e00-\u9fff“”‘’"
_URL = re.compile(rf"(?i)https?://[^{_STOP}]+")
# Bare forms: www.example.com, example.com/path; only common top-level domains, so file names
# (报告.docx) and version numbers (1.2.3) are not links.
_TLDS = "com|cn|net|org|info|biz|top|xyz|vip|shop|site|online|club|cc|tv|me|io|co|hk|mo|tw|app|ltd|wang"
_BARE = re.compile(
    rf"(?i)(?<![A-Za-z0-9.@/_%+-])(?P<host>(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS}))"
    rf"(?![A-Za-z0-9-])(?::[0-9]{{1,5}})?(?:/[^{_STOP}]*)?"
)
_TRAILING = ".,;:!?)]}"


def find(text: str, lexicon: Lexicon) -> Iterator[Finding]:
    """URLs (http/https, bare domains) whose host is not allowed; e-mail domains are not links."""
    taken: list[tuple[int, int]] = []
    if "://" in text:
        for m in _URL.finditer(text):
            end = m.start() + len(m.group().rstrip(_TRAILING))
            taken.append((m.start(), end))
            try:
                host = urlsplit(text[m.start() : end]).hostname or ""
            except ValueError:  # a malformed port or IPv6 literal: still a link to review
                host = ""
            if not host or not lexicon.allows_host(host):
                yield finding(text, m.start(), end, KIND, "warn", "", RULE_LINK)
    if "." not in text:
        return
    for m in _BARE.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue  # part of a URL already read
        end = m.start() + len(m.group().rstrip(_TRAILING))
        if not lexicon.allows_host(m.group("host")):
            yield finding(text, m.start(), end, KIND, "warn", "", RULE_LINK)

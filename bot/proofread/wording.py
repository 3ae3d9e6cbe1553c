"""规范表述 (kind 2) beyond the word list: Hong Kong, Macao or Taiwan listed among countries."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.proofread.findings import Finding, finding

KIND = "wording"
RULE_COUNTRIES = "新华社禁用词 涉港澳台：香港、澳门、台湾与国家并列时称“国家和地区”"

# "美国、香港、日本等国家" / "日本、香港等国": a 、-list naming a region that ends in 等国(家)
# not followed by 和地区 (the match starts at the region; earlier items need not be read).
# Items are short and hold no clause punctuation, so a list never reaches across a sentence;
# "等国际…", "等国内…", "等国家级…" are not lists of countries.
_COUNTRIES = re.compile(
    r"(?:香港|澳门|台湾)(?:特别行政区|特区|地区)?"
    r"(?:、[^、，。；：！？\s“”《》（）]{1,10}){0,8}"
    r"(?P<tail>等国家|等国(?=[，。；、的和与及\s]|$))"
    r"(?!和地区|及地区|与地区|或地区|级)"
)


def find(text: str) -> Iterator[Finding]:
    """Regions listed as countries; the finding is the 等国家 that should read 等国家和地区."""
    if "香港" not in text and "澳门" not in text and "台湾" not in text:
        return
    for m in _COUNTRIES.finditer(text):
        start, end = m.span("tail")
        yield finding(text, start, end, KIND, "severe", "等国家和地区", RULE_COUNTRIES)

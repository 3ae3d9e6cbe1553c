"""个人隐私 (kind 4): ID card, mobile and bank card numbers, e-mail and street addresses."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator

from bot.proofread.findings import Finding, finding
from bot.proofread.lexicon import Lexicon

KIND = "privacy"
# 湛江 第八条（一） names 个人隐私 among what every item is checked for; 钦州 二审 (4)⑧ forbids
# 泄露个人隐私.
_RULE = "湛江 第八条（一） 个人隐私：{}"
RULE_ID = _RULE.format("居民身份证号码")
RULE_MOBILE = _RULE.format("手机号码")
RULE_CARD = _RULE.format("银行卡号")
RULE_EMAIL = _RULE.format("个人电子邮箱")
RULE_ADDRESS = _RULE.format("详细住址")

# A number is never read out of a longer one: no digit (or decimal point and digit) before it,
# no digit after it. Amounts (…元, …万, …亿, …人) are not contact numbers.
_NOT_AFTER = r"(?<![0-9])(?<![0-9][.．])(?<![¥￥$])"
_NOT_AMOUNT = (
    r"(?![0-9])"
    r"(?!\s?(?:[元万亿千百人个户次吨件台辆套项条笔份家名岁倍%％]|平方|公[里顷斤]|米|千克|美元))"
)

# GB 11643: 6-digit area code, birth date, 3-digit sequence, check digit.
_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-8][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# The province-level codes of GB/T 2260 (71 Taiwan, 81 Hong Kong, 82 Macao).
_PROVINCES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    }
)

# Mainland mobile numbers, optionally grouped 3-4-4 by one kind of separator.
_MOBILE = re.compile(_NOT_AFTER + r"1[3-9][0-9](?P<sep>[- ]?)[0-9]{4}(?P=sep)[0-9]{4}" + _NOT_AMOUNT)

# Bank cards: 16–19 digits, contiguous or in groups of four; checked with Luhn and the issuer
# prefix (UnionPay 62, 60; Visa 4; MasterCard 51–55; JCB 35; old domestic 9).
_CARD = re.compile(
    _NOT_AFTER + r"(?:[0-9]{16,19}|[0-9]{4}(?P<sep>[- ])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}"
    r"(?:(?P=sep)[0-9]{1,3})?)" + _NOT_AMOUNT
)
_CARD_PREFIX = re.compile(r"62|60|4|5[1-5]|35|9")
# GB 32100 统一社会信用代码 (public, printed on every licence): 18 characters, the last a check.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])(?P<local>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63})@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![A-Za-z0-9-])"
)

# A street address down to the house number: …路/街/巷/大道 + number + 号 (+ building, unit, room).
# Found from its end (few places in a text), then read back over the Chinese characters before it.
_STREET = re.compile(
    r"(?:大道|大街|路|街|巷)[0-9０-９]{1,5}(?:[-－][0-9０-９]{1,5})?号"
    r"(?:院)?(?:[0-9０-９]{1,4}(?:栋|幢|座|号楼))?(?:[0-9０-９]{1,2}单元)?(?:[0-9０-９]{1,5}(?:室|房))?"
)
_BEFORE_STREET = re.compile(r"[\u4e00-\u9fff]{1,30}$")
# Where the place name starts: after the last of these before the first 省/市/区/县.
_LEAD_IN = "的在于住址为是至到从向"
_ADMIN = "省市区县"
_PLACE = "省市区县镇乡村"


def _id_valid(number: str) -> bool:
    if number[:2] not in _PROVINCES:
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if day > calendar.monthrange(year, month)[1]:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _uscc_valid(code: str) -> bool:
    if len(code) != 18:
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]


def _address_start(text: str, street: int) -> int | None:
    """Where the address whose street suffix starts at `street` begins, or None when it is not a
    full address: a place name of two or more characters ending in 省/市/区/县 must come first,
    and the street's own name (after the last 省/市/区/县/镇/乡/村) is at most six characters."""
    before = _BEFORE_STREET.search(text, max(0, street - 30), street)
    if before is None:
        return None
    run = before.group()
    first = next((i for i, ch in enumerate(run) if ch in _ADMIN and i >= 2), None)
    if first is None or first == len(run) - 1:
        return None
    cut = max((i for i in range(first) if run[i] in _LEAD_IN), default=-1) + 1
    if first - cut < 2:
        return None  # "在市区…": no place name before the 市
    last = max(i for i in range(first, len(run) - 1) if run[i] in _PLACE)
    if len(run) - 1 - last > 6:
        return None  # "开发区管委会位于人民大道…": words, not a street name, after the 区
    return before.start() + cut


def find(text: str, lexicon: Lexicon) -> Iterator[Finding]:
    """Personal data: ID, mobile and bank card numbers (severe), e-mails and addresses (warn)."""
    ids: set[tuple[int, int]] = set()
    for m in _ID.finditer(text):
        number = m.group()
        if _id_valid(number):
            ids.add(m.span())
            hint = f"{number[:6]}********{number[-4:]}"
            yield finding(text, m.start(), m.end(), KIND, "severe", hint, RULE_ID)
    for m in _MOBILE.finditer(text):
        digits = m.group().replace(m.group("sep"), "") if m.group("sep") else m.group()
        hint = f"{digits[:3]}****{digits[-4:]}"
        yield finding(text, m.start(), m.end(), KIND, "severe", hint, RULE_MOBILE)
    for m in _CARD.finditer(text):
        digits = m.group().replace(m.group("sep"), "") if m.group("sep") else m.group()
        if (
            16 <= len(digits) <= 19
            and m.span() not in ids
            and not (len(digits) == 18 and _ID.fullmatch(digits))  # an ID with a slip, not a card
            and _CARD_PREFIX.match(digits)
            and _luhn(digits)
            and not _uscc_valid(digits)
        ):
            hint = f"{digits[:4]}{'*' * (len(digits) - 8)}{digits[-4:]}"
            yield finding(text, m.start(), m.end(), KIND, "severe", hint, RULE_CARD)
    if "@" in text:
        for m in _EMAIL.finditer(text):
            if lexicon.allows_host(m.group("domain")):
                continue  # an office mailbox on an allowed domain (gov.cn) is public, not personal
            hint = f"{m.group('local')[0]}***@{m.group('domain')}"
            yield finding(text, m.start(), m.end(), KIND, "warn", hint, RULE_EMAIL)
    for m in _STREET.finditer(text):
        start = _address_start(text, m.start())
        if start is not None:
            yield finding(text, start, m.end(), KIND, "warn", "", RULE_ADDRESS)

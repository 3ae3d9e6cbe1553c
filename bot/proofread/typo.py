"""错别字 (kind 1) beyond the list: a same-sound confusion check over jieba's word frequencies.

The listed misspellings (lists/typo.tsv) are matched by the lexicon's automaton like every list.
This module finds the ones no list names: jieba (its shipped dictionary, nothing downloaded)
segments each run of Chinese characters; where it is left with characters it could not join
into words, one character is replaced by another of the same sound (pypinyin, tones ignored) and
the replacement is flagged only when it makes a frequent dictionary word that the original is
not, jieba then segments that word as one, and the corrected text is far more probable than the
original (a frequency ratio with a conservative threshold). It prefers missing a typo to
flagging a correct word: see bench/eval_proofread.py for its measured precision and recall.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot.proofread.findings import Finding, finding
from bot.proofread.lexicon import Lexicon, read_allow

log = logging.getLogger(__name__)

KIND = "typo"
RULE_SOUND = "错别字（同音字）：“{wrong}”不成词，疑为“{right}”"

# Chinese runs only: punctuation, digits and Latin letters end a run.
_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
# Thresholds, set on clean government prose (the Qinzhou regulation and the Zhanjiang
# paragraphs) so that it yields no finding, never on the evaluation set's errors.
MIN_WORD_FREQ = 200  # the corrected word must be at least this frequent in jieba's dictionary
MAX_WRONG_FREQ = 3  # the original may be listed (jieba lists a few misspellings) only this rarely
MIN_GAIN = math.log(10**4.5)  # corrected text at least 30,000 times as probable as the original
MAX_WORD = 4  # corrected words of 2 to 4 characters
CONTEXT = 4  # characters each side re-segmented to compare the two readings
NEW_WORD_FREQ = 1000  # how often lists/words.txt's words (newer than jieba's dictionary) count
WORDS_FILE = "words.txt"
COMMON_CHAR_FREQ = 50  # candidate characters are those of dictionary words this frequent


@dataclass(frozen=True, slots=True)
class Model:
    """jieba's tokenizer over its shipped dictionary, and the same-sound candidates per character."""

    tokenizer: object  # jieba.Tokenizer
    freq: dict[str, int]
    log_total: float
    sounds: dict[str, str]  # character -> the characters sharing one of its readings
    load_seconds: float


_lock = threading.Lock()


@functools.cache
def _model() -> Model:
    with _lock:
        return _load()


def _load() -> Model:
    started = time.perf_counter()
    import jieba  # deferred: the dictionary costs ~1 s and tens of MB, only paid when checking
    from pypinyin.pinyin_dict import pinyin_dict

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    # Read the shipped dict.txt directly: jieba.initialize() would log and write a cache file.
    with (Path(jieba.__file__).parent / "dict.txt").open("rb") as handle:
        freq, total = tokenizer.gen_pfdict(handle)
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = freq, total, True
    for word in read_allow(Path(str(resources.files("bot.proofread") / "lists" / WORDS_FILE))):
        tokenizer.add_word(word, NEW_WORD_FREQ)  # type: ignore[attr-defined]

    common: set[str] = set()
    for word, n in freq.items():
        if n >= COMMON_CHAR_FREQ:
            common.update(word)
    by_sound: dict[str, set[str]] = {}
    readings: dict[str, set[str]] = {}
    for code, spelled in pinyin_dict.items():
        char = chr(code)
        if char not in common:
            continue
        toneless = {_toneless(p) for p in spelled.split(",")}
        readings[char] = toneless
        for sound in toneless:
            by_sound.setdefault(sound, set()).add(char)
    sounds = {
        char: "".join(sorted(set().union(*(by_sound[s] for s in toneless)) - {char}))
        for char, toneless in readings.items()
    }
    seconds = time.perf_counter() - started
    log.info("typo model loaded in %.2f s (%d dictionary entries)", seconds, len(freq))
    return Model(tokenizer, freq, math.log(total), sounds, seconds)


_TONES = str.maketrans(
    "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm"
)


def _toneless(spelled: str) -> str:
    return spelled.strip().translate(_TONES)


def model() -> Model:
    """The shared model, loaded on first use (thread-safe); later calls cost nothing."""
    return _model()


def _log_prob(model: Model, text: str) -> float:
    """The log probability of jieba's best segmentation of `text` (its unigram model)."""
    tokenizer = model.tokenizer
    dag = tokenizer.get_DAG(text)  # type: ignore[attr-defined]
    route: dict[int, tuple[float, int]] = {}
    tokenizer.calc(text, dag, route)  # type: ignore[attr-defined]
    return route[0][0]


def find(text: str, lexicon: Lexicon) -> Iterator[Finding]:
    """Characters that jieba leaves single and whose same-sound replacement forms a frequent word."""
    if not _RUN.search(text):
        return
    m = model()
    _, allowed = lexicon.scan(text)  # the unit's own terms: a window never reaches into one
    for run in _RUN.finditer(text):
        offset = run.start()
        for start, end, right in _run_typos(m, run.group()):
            if allowed and any(s < offset + end and offset + start < e for s, e in allowed):
                continue
            wrong = text[offset + start:offset + end]
            rule = RULE_SOUND.format(wrong=wrong, right=right)
            yield finding(text, offset + start, offset + end, KIND, "warn", right, rule)


def _run_typos(m: Model, run: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, correction) in `run`, within the spans of characters jieba left single."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for token in m.tokenizer.cut(run, HMM=False):  # type: ignore[attr-defined]
        if len(token) == 1 and spans and spans[-1][1] == pos:
            spans[-1] = (spans[-1][0], pos + 1)
        elif len(token) == 1:
            spans.append((pos, pos + 1))
        pos += len(token)
    for s, e in spans:
        if e - s >= 2:
            yield from _span_typos(m, run, s, e)


def _span_typos(m: Model, run: str, s: int, e: int) -> Iterator[tuple[int, int, str]]:
    freq, sounds = m.freq, m.sounds
    found: list[tuple[float, int, int, str]] = []
    for size in range(2, min(MAX_WORD, e - s) + 1):
        for a in range(s, e - size + 1):
            b = a + size
            window = run[a:b]
            if freq.get(window, 0) > MAX_WRONG_FREQ:
                continue
            singles = sum(math.log(freq.get(ch) or 1) for ch in window)
            for p in range(a, b):
                before, after = run[a:p], run[p + 1:b]
                for char in sounds.get(run[p], ""):
                    fixed = before + char + after
                    n = freq.get(fixed, 0)
                    # jieba's unigram score of the window read as one word against the single
                    # characters it was read as: a cheap bound before re-segmenting the context
                    bound = math.log(n or 1) + (size - 1) * m.log_total - singles
                    if n >= MIN_WORD_FREQ and bound >= MIN_GAIN - 1:
                        gain = _gain(m, run, a, b, fixed)
                        if gain >= MIN_GAIN:
                            found.append((gain, a, b, fixed))
    taken: list[tuple[int, int]] = []
    for _, a, b, fixed in sorted(found, reverse=True):  # the most probable correction first
        if all(b <= x or a >= y for x, y in taken):
            taken.append((a, b))
            yield a, b, fixed


def _gain(m: Model, run: str, a: int, b: int, fixed: str) -> float:
    """How much more probable the corrected context is, or -inf when jieba would not segment
    the corrected word as one token there."""
    lo, hi = max(0, a - CONTEXT), min(len(run), b + CONTEXT)
    original = run[lo:hi]
    corrected = run[lo:a] + fixed + run[b:hi]
    pos = 0
    for token in m.tokenizer.cut(corrected, HMM=False):  # type: ignore[attr-defined]
        if pos == a - lo:
            if token != fixed:
                return -math.inf
            break
        if pos > a - lo:
            return -math.inf
        pos += len(token)
    else:
        return -math.inf
    return _log_prob(m, corrected) - _log_prob(m, original)

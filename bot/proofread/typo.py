"""错别字 (kind 1) beyond the list: a same-sound confusion check over jieba's word frequencies.

The listed misspellings (lists/typo.tsv) are matched by the lexicon's automaton like every list.
This module finds the ones no list names: each run of Chinese characters is segmented as jieba
does without its HMM (its unigram model over its shipped dictionary, nothing downloaded); where
characters are left that could not be joined into words, one is replaced by another of the same
sound (pypinyin's readings, tones ignored, in lists/sounds.txt) and the replacement is flagged
only when it makes a frequent dictionary word that the original is not, the segmentation then
reads that word as one, and the corrected text is far more probable than the original (a
frequency ratio with a conservative threshold). It prefers missing a typo to
flagging a correct word: see bench/eval_proofread.py for its measured precision and recall.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import ahocorasick

from bot.proofread.findings import Finding, finding
from bot.proofread.lexicon import Lexicon, read_allow

log = logging.getLogger(__name__)

KIND = "typo"
RULE_SOUND = "错别字（同音字）：“{wrong}”不成词，疑为“{right}”"

# Chinese runs only: punctuation, digits and Latin letters end a run.
_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_ISSUER_END = ("〔", "[", "［")
# Thresholds, set on clean government prose (the Qinzhou regulation and the Zhanjiang
# paragraphs of the tests, the tuning text) so that it yields no finding there, never on the
# evaluation set's errors.
MIN_WORD_FREQ = 200  # the corrected word must be at least this frequent in jieba's dictionary
MAX_WRONG_FREQ = 3  # the original may be listed (jieba lists a few misspellings) only this rarely
# The corrected text must be at least 10^4 times as probable as the original: on the tuning
# text the most probable wrong correction scores 10^3.6 (钦政 → 亲政), so about half an order
# of magnitude is kept as a margin.
MIN_GAIN = math.log(10**4)
MAX_WORD = 4  # corrected words of 2 to 4 characters
CONTEXT = 4  # characters each side re-segmented to compare the two readings
NEW_WORD_FREQ = 1000  # how often lists/words.txt's words (newer than jieba's dictionary) count
WORDS_FILE = "words.txt"
# Same-sound groups (lists/sounds.txt, built by bench/build_sounds.py from pypinyin's table):
# only characters of dictionary words at least this frequent are candidates.
SOUNDS_FILE = "sounds.txt"
COMMON_CHAR_FREQ = 50


@dataclass(frozen=True, slots=True)
class Model:
    """jieba's dictionary in one automaton, and the same-sound candidates per character."""

    words: ahocorasick.Automaton  # word -> frequency * 16 + length (STORE_INTS, compact in C)
    frequent: dict[str, int]  # the words a correction may make: 2-4 characters, frequent enough
    chars: dict[str, int]  # the frequency of each character as a word of its own
    log_total: float
    sounds: dict[str, str]  # character -> the other characters sharing one of its readings
    load_seconds: float

    def freq(self, word: str) -> int:
        """The word's frequency in jieba's dictionary (0 when it is not a word)."""
        return int(self.words.get(word, 0)) >> 4


_lock = threading.Lock()


@functools.cache
def _model() -> Model:
    return _load()


def _load() -> Model:
    started = time.perf_counter()
    # Costs about 1.5 s and ~25 MB, paid on the first check only.
    # jieba's own structures (a dict of every word and prefix) take over 100 MB; its dictionary
    # goes into one automaton instead, and the segmentation is jieba's (see _segment). Reading
    # dict.txt directly also avoids jieba.initialize()'s log lines and cache file.
    words = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    frequent: dict[str, int] = {}
    chars: dict[str, int] = {}
    total = 0
    with _jieba_dictionary().open(encoding="utf-8") as lines:  # line by line: a low peak
        for line in lines:
            word, count = line.split(" ", 2)[:2]
            n = int(count)
            total += n
            if len(word) <= _MAX_LENGTH:
                words.add_word(word, n << 4 | len(word))
                if len(word) == 1:
                    chars[word] = n
                elif len(word) <= MAX_WORD and n >= MIN_WORD_FREQ:
                    frequent[word] = n
    with resources.as_file(resources.files("bot.proofread") / "lists" / WORDS_FILE) as path:
        for word in read_allow(path):
            words.add_word(word, NEW_WORD_FREQ << 4 | len(word))
            total += NEW_WORD_FREQ
            if 2 <= len(word) <= MAX_WORD:
                frequent[word] = NEW_WORD_FREQ
    words.make_automaton()

    sounds = same_sounds()
    seconds = time.perf_counter() - started
    log.info("typo model loaded in %.2f s (%d dictionary words)", seconds, len(words))
    return Model(words, frequent, chars, math.log(total), sounds, seconds)


@functools.cache
def same_sounds() -> dict[str, str]:
    """character → the other characters sharing one of its readings (lists/sounds.txt, tones
    ignored); read once, for this check and for leaders' names one character off."""
    groups: dict[str, set[str]] = {}
    with resources.as_file(resources.files("bot.proofread") / "lists" / SOUNDS_FILE) as path:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                group = set(line.split("\t")[1])
                for char in group:
                    groups.setdefault(char, set()).update(group)
    return {char: "".join(sorted(group - {char})) for char, group in groups.items()}


def _jieba_dictionary() -> Path:
    """jieba's shipped dict.txt, found without importing jieba (its import loads its HMM)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("jieba is not installed (pyproject.toml dependencies)")
    return Path(spec.origin).parent / "dict.txt"


_MAX_LENGTH = 15  # the length is kept in 4 bits; jieba's few longer entries are left out
_TONES = str.maketrans(
    "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm"
)


def _toneless(spelled: str) -> str:
    return spelled.strip().translate(_TONES)


def model() -> Model:
    """The shared model, loaded once on first use (thread-safe); later calls cost nothing.
    An application calls it at start-up, off its event loop, so no check waits for the load."""
    with _lock:
        return _model()


def _segment(m: Model, text: str) -> tuple[float, list[int]]:
    """jieba's segmentation without its HMM (Tokenizer.calc): the most probable reading of `text`
    as a sequence of dictionary words under its unigram model; (log probability, token ends)."""
    n = len(text)
    # ends[i]: where the dictionary words starting at i end, with their log probability
    ends: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    log_total = m.log_total
    for last, value in m.words.iter(text):
        length = value & 15
        ends[last - length + 1].append((last + 1, math.log(value >> 4 or 1) - log_total))
    best = [0.0] * (n + 1)
    step = [0] * n
    for i in range(n - 1, -1, -1):
        score, to = best[i + 1] - log_total, i + 1  # a character that is not a word: frequency 1
        for end, logp in ends[i]:
            candidate = logp + best[end]
            if end == i + 1 and to == i + 1:
                score = candidate  # the character is a word itself
            elif candidate > score or (candidate == score and end > to):
                score, to = candidate, end  # ties go to the longer word, as in jieba
        best[i], step[i] = score, to
    cuts = []
    i = 0
    while i < n:
        i = step[i]
        cuts.append(i)
    return best[0], cuts


def find(text: str, lexicon: Lexicon) -> Iterator[Finding]:
    """Characters jieba leaves single whose same-sound replacement makes a frequent word."""
    if not _RUN.search(text):
        return
    m = model()
    _, allowed = lexicon.scan(text)  # the unit's own terms: a window never reaches into one
    for run in _RUN.finditer(text):
        if text.startswith(_ISSUER_END, run.end()):
            continue  # a 文号's issuer (粤府办〔2017〕51号): an abbreviation, not words
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
    for end in _segment(m, run)[1]:
        if end == pos + 1 and spans and spans[-1][1] == pos:
            spans[-1] = (spans[-1][0], end)
        elif end == pos + 1:
            spans.append((pos, end))
        pos = end
    for s, e in spans:
        if e - s >= 2:
            yield from _span_typos(m, run, s, e)


def _span_typos(m: Model, run: str, s: int, e: int) -> Iterator[tuple[int, int, str]]:
    freq, frequent, chars, sounds = m.freq, m.frequent, m.chars, m.sounds
    log_total = m.log_total
    found: list[tuple[float, int, int, str]] = []
    for size in range(2, min(MAX_WORD, e - s) + 1):
        for a in range(s, e - size + 1):
            b = a + size
            window = run[a:b]
            if freq(window) > MAX_WRONG_FREQ:
                continue
            singles = sum(math.log(chars.get(ch) or 1) for ch in window)
            for p in range(a, b):
                before, after = run[a:p], run[p + 1:b]
                for char in sounds.get(run[p], ""):
                    fixed = before + char + after
                    n = frequent.get(fixed, 0)
                    if not n:
                        continue
                    # jieba's unigram score of the window read as one word against the single
                    # characters it was read as: a cheap bound before re-segmenting the context
                    bound = math.log(n) + (size - 1) * log_total - singles
                    if bound >= MIN_GAIN - 1:
                        gain = _gain(m, run, a, b, fixed)
                        if gain >= MIN_GAIN:
                            found.append((gain, a, b, fixed))
    taken: list[tuple[int, int]] = []
    for _, a, b, fixed in sorted(found, reverse=True):  # the most probable correction first
        if all(b <= x or a >= y for x, y in taken):
            taken.append((a, b))
            yield a, b, fixed


def _gain(m: Model, run: str, a: int, b: int, fixed: str) -> float:
    """How much more probable the corrected context is, or -inf when the segmentation does not
    read the corrected word as one token there."""
    lo, hi = max(0, a - CONTEXT), min(len(run), b + CONTEXT)
    original = run[lo:hi]
    corrected = run[lo:a] + fixed + run[b:hi]
    logp, cuts = _segment(m, corrected)
    if b - lo not in cuts or (a > lo and a - lo not in cuts):
        return -math.inf  # the corrected word is not one token there
    return logp - _segment(m, original)[0]

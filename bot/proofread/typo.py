"""错别字 (kind 1) beyond the list: a same-sound and similar-shape check over jieba's word frequencies.

The listed misspellings (lists/typo.tsv) are matched by the lexicon's automaton like every list.
This module finds the ones no list names: each run of Chinese characters is segmented as jieba
does without its HMM (its unigram model over its shipped dictionary, nothing downloaded); where
characters are left that could not be joined into words, one is replaced by another of the same
sound (pypinyin's readings, tones ignored, in lists/sounds.txt) or of similar shape
(lists/shapes.txt, from pycorrector's table) and the replacement is flagged
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import ahocorasick

from bot.proofread.findings import Finding, finding
from bot.proofread.lexicon import LISTS, Lexicon, read_allow, read_list

log = logging.getLogger(__name__)

KIND = "typo"
RULE_SOUND = "错别字（同音字）：“{wrong}”不成词，疑为“{right}”"
RULE_SHAPE = "错别字（形近字）：“{wrong}”不成词，疑为“{right}”"

# Chinese runs only: punctuation, digits and Latin letters end a run.
_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")

_ISSUER_END = ("〔", "[", "［")
# A list of one-character abbreviations (市直各委、办、局): the run's character next to it is one.
_ABBREVIATION_AFTER = re.compile(r"、[\u4e00-\u9fff](?![\u4e00-\u9fff])")
_ABBREVIATION_BEFORE = re.compile(r"(?<![\u4e00-\u9fff])[\u4e00-\u9fff]、$")
# Thresholds, set on the tuning text (bench/eval/tuning.txt: the 2018 No. 1 central document on
# rural revitalisation, clean, with errors injected into it by `bench.eval_proofread --tune`), never
# on the evaluation set; see the README's table for both.
MIN_WORD_FREQ = 100  # the corrected word must be at least this frequent in jieba's dictionary
MAX_WRONG_FREQ = 3  # the original may be listed (jieba lists a few misspellings) only this rarely
# The corrected text must be at least 10^3 times as probable as the original. On the tuning text
# that finds 0.62 of the injected errors with 0.11 false alarms per 10 clean sentences, a ninth of
# the issue's ceiling (10^2.75: 0.69 and 0.18, and a false alarm in the Qinzhou regulation, 严审与
# → 参与; 10^3.5: 0.48 and 0.05; 10^4: 0.32 and 0.02). Policy prose coins words jieba's 2012
# dictionary lacks (提质, 宜业): the common ones are in lists/words.txt.
MIN_GAIN = math.log(10**3)
# A similar-shape correction needs half an order of magnitude more: shapes confuse fewer
# characters in typing than sounds, so a shape suggestion is more often a coincidence.
SHAPE_MARGIN = math.log(10**0.5)
MAX_WORD = 4  # corrected words of 2 to 4 characters
CONTEXT = 4  # characters each side re-segmented to compare the two readings
NEW_WORD_FREQ = 1000  # how often lists/words.txt's words (newer than jieba's dictionary) count
WORDS_FILE = "words.txt"
# Same-sound groups (lists/sounds.txt, built by bench/build_sounds.py from pypinyin's table):
# only characters of dictionary words at least this frequent are candidates.
SOUNDS_FILE = "sounds.txt"
SHAPES_FILE = "shapes.txt"
COMMON_CHAR_FREQ = 50


@dataclass(frozen=True, slots=True)
class Model:
    """jieba's dictionary in one automaton, and the same-sound and similar-shape candidates per
    character."""

    words: ahocorasick.Automaton  # word -> frequency * 16 + length (STORE_INTS, compact in C)
    frequent: dict[str, int]  # the words a correction may make: 2-4 characters, frequent enough
    # each frequent word with one character masked (MASK) -> the characters that fill the mask
    masked: dict[str, str]
    chars: dict[str, int]  # the frequency of each character as a word of its own
    log_total: float
    sounds: dict[str, str]  # character -> the other characters sharing one of its readings
    shapes: dict[str, str]  # character -> the other characters of similar shape (not of its sound)
    logp_of: dict[int, float]  # automaton value -> log probability, a cache _segment fills
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
    for word in _new_words():
        if word not in words:
            words.add_word(word, NEW_WORD_FREQ << 4 | len(word))
            total += NEW_WORD_FREQ
            if 2 <= len(word) <= MAX_WORD:
                frequent[word] = NEW_WORD_FREQ
    words.make_automaton()

    sounds = same_sounds()
    masked: dict[str, str] = {}
    for word in frequent:
        for p in range(len(word)):
            key = word[:p] + MASK + word[p + 1 :]
            masked[key] = masked.get(key, "") + word[p]
    shapes = {
        char: "".join(c for c in similar if c not in sounds.get(char, ""))
        for char, similar in _groups(SHAPES_FILE, lambda line: line).items()
    }
    seconds = time.perf_counter() - started
    log.info("typo model loaded in %.2f s (%d dictionary words)", seconds, len(words))
    return Model(words, frequent, masked, chars, math.log(total), sounds, shapes, {}, seconds)


def _new_words() -> list[str]:
    """Words jieba's dictionary lacks: lists/words.txt, and the correct forms of the shipped
    misspellings list (张弛有度 is not in jieba's dictionary, yet the list says it is right)."""
    lists = resources.files("bot.proofread") / "lists"
    with resources.as_file(lists / WORDS_FILE) as path:
        found = read_allow(path)
    typo_list = next(spec for spec in LISTS if spec.kind == KIND)
    with resources.as_file(lists / typo_list.file) as path:
        found += [
            entry.suggestion
            for entry in read_list(path, typo_list)
            if _RUN.fullmatch(entry.suggestion) and len(entry.suggestion) <= _MAX_LENGTH
        ]
    return found


@functools.cache
def same_sounds() -> dict[str, str]:
    """character → the other characters sharing one of its readings (lists/sounds.txt, tones
    ignored); read once, for this check and for leaders' names one character off."""
    return _groups(SOUNDS_FILE, lambda line: line.split("\t")[1])


def _groups(name: str, members: Callable[[str], str]) -> dict[str, str]:
    """character → the other characters of its groups in lists/`name` (one group a line)."""
    groups: dict[str, set[str]] = {}
    with resources.as_file(resources.files("bot.proofread") / "lists" / name) as path:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                group = set(members(line))
                for char in group:
                    groups.setdefault(char, set()).update(group)
    return {char: "".join(sorted(group - {char})) for char, group in groups.items()}


def _jieba_dictionary() -> Path:
    """jieba's shipped dict.txt, found without importing jieba (its import loads its HMM)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("jieba is not installed (pyproject.toml dependencies)")
    return Path(spec.origin).parent / "dict.txt"


MASK = "\0"
_MAX_LENGTH = 15  # the length is kept in 4 bits; jieba's few longer entries are left out
_TONES = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


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
    logp_of = m.logp_of  # an automaton value -> its word's log probability, filled as met
    for last, value in m.words.iter(text):
        logp = logp_of.get(value)
        if logp is None:
            logp = logp_of[value] = math.log(value >> 4 or 1) - log_total
        ends[last - (value & 15) + 1].append((last + 1, logp))
    best = [0.0] * (n + 1)
    step = [0] * n
    for i in range(n - 1, -1, -1):
        single = i + 1
        score, to = best[single] - log_total, single  # a character that is not a word: frequency 1
        for end, logp in ends[i]:
            candidate = logp + best[end]
            if end == single and to == single:
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
        listed_after = _ABBREVIATION_AFTER.match(text, run.end()) is not None
        listed_before = _ABBREVIATION_BEFORE.search(text, max(0, offset - 2), offset) is not None
        for start, end, right, by_shape in _run_typos(m, run.group()):
            if allowed and any(s < offset + end and offset + start < e for s, e in allowed):
                continue
            if (listed_after and offset + end == run.end()) or (listed_before and start == 0):
                continue  # an abbreviation in a list, not a word
            wrong = text[offset + start : offset + end]
            rule = (RULE_SHAPE if by_shape else RULE_SOUND).format(wrong=wrong, right=right)
            yield finding(text, offset + start, offset + end, KIND, "warn", right, rule)


def _run_typos(m: Model, run: str) -> Iterator[tuple[int, int, str, bool]]:
    """(start, end, correction, whether of similar shape) in `run`, within the spans of characters jieba left single."""
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


def _span_typos(m: Model, run: str, s: int, e: int) -> Iterator[tuple[int, int, str, bool]]:
    freq, frequent, masked, chars = m.freq, m.frequent, m.masked, m.chars
    sounds, shapes = m.sounds, m.shapes
    log_total = m.log_total
    found: list[tuple[float, int, int, str, bool]] = []
    for size in range(2, min(MAX_WORD, e - s) + 1):
        for a in range(s, e - size + 1):
            b = a + size
            window = run[a:b]
            if freq(window) > MAX_WRONG_FREQ:
                continue
            singles = sum(math.log(chars.get(ch) or 1) for ch in window)
            for p in range(a, b):
                before, after = run[a:p], run[p + 1 : b]
                fills = masked.get(before + MASK + after)
                if not fills:
                    continue
                same_sound, same_shape = sounds.get(run[p], ""), shapes.get(run[p], "")
                for char in fills:
                    if char in same_sound:
                        by_shape = False
                    elif char in same_shape:
                        by_shape = True
                    else:
                        continue
                    fixed = before + char + after
                    n = frequent[fixed]
                    # jieba's unigram score of the window read as one word against the single
                    # characters it was read as: a cheap bound before re-segmenting the context
                    bound = math.log(n) + (size - 1) * log_total - singles
                    least = MIN_GAIN + SHAPE_MARGIN if by_shape else MIN_GAIN
                    if bound >= least - 1:
                        gain = _gain(m, run, a, b, fixed)
                        if gain >= least:
                            found.append((gain, a, b, fixed, by_shape))
    taken: list[tuple[int, int]] = []
    for _, a, b, fixed, by_shape in sorted(found, reverse=True):  # most probable first
        if all(b <= x or a >= y for x, y in taken):
            taken.append((a, b))
            yield a, b, fixed, by_shape


def _gain(m: Model, run: str, a: int, b: int, fixed: str) -> float:
    """How much more probable the corrected context is, or -inf when the segmentation does not
    read the corrected word as one token there."""
    lo, hi = max(0, a - CONTEXT), min(len(run), b + CONTEXT)
    original = run[lo:hi]
    corrected = run[lo:a] + fixed + run[b:hi]
    logp, cuts = _segment(m, corrected)
    if any(a - lo < cut < b - lo for cut in cuts):
        return -math.inf  # the corrected word is split there (it may be part of a longer one)
    return logp - _segment(m, original)[0]

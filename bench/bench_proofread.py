"""Proofreading benchmark: characters per second, one 10,000-character draft, lexicon memory.

Run: .venv/bin/python -m bench.bench_proofread [--chars 1000000]

The text is the Qinzhou regulation shipped with the tests (tests/texts/, a public document),
repeated to `--chars` characters, with one paragraph of seeded errors (every kind: wording,
personal data, punctuation, a date, an ordinal, links and advertising) after every fifth copy
of a paragraph, so the matching paths run as well as the scans. Targets (issue #14): at least
1,000,000 characters/s, and a 10,000-character draft in under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bot.proofread import Lexicon, check

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "texts" / "qinzhou-2023-website-newmedia-rules.txt"
SEEDED = (
    "截止目前，台湾总统府与香港政府均未回应,联系人手机13812345678，身份证号440802199003071234，"
    "家住湛江市赤坎区南桥路12号。详见 https://www.example.com/ad 或扫码领取，限时优惠。。"
    "请于2023年2月29日前报送（逾期不候。"
)
TARGET_CHARS_PER_S = 1_000_000
TARGET_DRAFT_MS = 100.0


def build_text(chars: int, *, seeded: bool = True) -> str:
    """The sample's paragraphs, cycled, with the seeded paragraph after every fifth, to `chars`."""
    paragraphs = [p for p in SAMPLE.read_text(encoding="utf-8").split("\n") if p.strip()]
    out: list[str] = []
    size = 0
    i = 0
    while size < chars:
        piece = SEEDED if seeded and i % 6 == 5 else paragraphs[i % len(paragraphs)]
        out.append(piece)
        size += len(piece) + 1
        i += 1
    return "\n".join(out)[:chars]


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="passes over the text (best kept)")
    args = parser.parse_args()

    Lexicon.load()  # first use imports what loading needs; only the second build is measured
    tracemalloc.start()
    started = time.perf_counter()
    lexicon = Lexicon.load()
    build_ms = (time.perf_counter() - started) * 1000
    lexicon_bytes, _ = tracemalloc.get_traced_memory()  # what is still held: the lexicon
    tracemalloc.stop()

    text = build_text(args.chars)
    check(text[:1000], lexicon=lexicon)  # warm the regex caches
    passes = []
    for _ in range(args.runs):
        started = time.perf_counter()
        found = check(text, lexicon=lexicon)
        passes.append(time.perf_counter() - started)
    best = min(passes)
    clean = build_text(args.chars, seeded=False)
    clean_best = min(_timed(lambda: check(clean, lexicon=lexicon)) for _ in range(args.runs))

    draft = text[:10_000]
    draft_ms = []
    for _ in range(50):
        started = time.perf_counter()
        check(draft, lexicon=lexicon)
        draft_ms.append((time.perf_counter() - started) * 1000)

    kinds = Counter(f.kind for f in found)
    rate = len(text) / best
    median_ms = statistics.median(draft_ms)
    terms = len(lexicon.entries)
    print(f"Proofreading benchmark: {len(text):,} characters, {terms} listed terms\n")
    print(f"{'measure':40} {'value':>16} {'target':>12}")
    label = f"throughput (best of {args.runs})"
    print(f"{label:40} {rate:>12,.0f} c/s {'>= 1,000,000':>12}")
    print(f"{'one pass over the text':40} {best * 1000:>13.1f} ms")
    print(f"{'throughput, the sample alone (no errors)':40} {len(clean) / clean_best:>12,.0f} c/s")
    print(f"{'10,000-character draft (median of 50)':40} {median_ms:>13.2f} ms {'< 100 ms':>12}")
    print(f"{'10,000-character draft (worst of 50)':40} {max(draft_ms):>13.2f} ms")
    print(f"{'lexicon build':40} {build_ms:>13.1f} ms")
    print(f"{'lexicon memory (tracemalloc)':40} {lexicon_bytes / 1024:>13.1f} KiB")
    print(f"{'automaton size (pyahocorasick)':40} {lexicon.memory_bytes() / 1024:>13.1f} KiB")
    per_kind = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items()))
    print(f"\nfindings: {len(found):,} ({per_kind})")
    ok = rate >= TARGET_CHARS_PER_S and median_ms < TARGET_DRAFT_MS
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()

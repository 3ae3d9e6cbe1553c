"""Proofreading benchmark: characters per second, one 10,000-character draft, lexicon memory.

Run: .venv/bin/python -m bench.bench_proofread [--chars 1000000] [--leaders 50]

The text is the Qinzhou regulation shipped with the tests (tests/texts/, a public document),
repeated to `--chars` characters, with one paragraph of seeded errors (every kind: wording,
personal data, punctuation, a date, an ordinal, links and advertising) after every fifth copy
of a paragraph, so the matching paths run as well as the scans. With `--leaders N`, a made-up
领导人姓名职务表 of N people is loaded too and the seeded paragraph names some of them (a wrong
title, a name one character off, a list out of order). Targets (issue #14): at least
1,000,000 characters/s, and a 10,000-character draft in under 100 ms.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
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
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "建国明华军伟芳强磊洋勇艳杰娟涛超"
TITLES = (
    "市委书记", "市委副书记、市长", "市人大常委会主任", "市政协主席", "市委常委、常务副市长",
    "市委常委、秘书长", "副市长", "市人大常委会副主任", "市政协副主席", "市委常委",
)
TARGET_CHARS_PER_S = 1_000_000
TARGET_DRAFT_MS = 100.0


def leader_names(count: int) -> list[str]:
    """`count` made-up three-character names, the same every run, none one character off
    another (so the misspelt one in the seeded paragraph points at a single leader)."""
    names: list[str] = []
    keys: set[str] = set()
    for b, c, a in itertools.product(GIVEN, GIVEN, SURNAMES):
        name = a + b + c
        blanked = {name[:i] + "?" + name[i + 1:] for i in range(3)}
        if b != c and not blanked & keys:
            names.append(name)
            keys |= blanked
            if len(names) == count:
                break
    return names


def leaders_table(count: int) -> str:
    """leaders.tsv for `count` made-up leaders, ranked in the order made."""
    rows = [f"{n}\t{TITLES[i % len(TITLES)]}\t{i + 1}" for i, n in enumerate(leader_names(count))]
    return "姓名\t职务\t排序号\n" + "\n".join(rows) + "\n"


def leaders_paragraph(count: int) -> str:
    """A sentence naming leaders of the made-up table: one wrong title, one name one character
    off (the last character replaced), one list out of order."""
    n = leader_names(count)
    return (
        f"市委书记{n[0]}、市长{n[2]}出席会议，{n[1][:2]}辉同志（市长）主持，"
        f"出席的有{n[4]}、{n[3]}、{n[5]}和{n[6]}。"
    )


def build_text(chars: int, *, seeded: bool = True, leaders: int = 0) -> str:
    """The sample's paragraphs, cycled, with the seeded paragraph after every fifth, to `chars`."""
    seed = SEEDED + (leaders_paragraph(leaders) if leaders else "")
    paragraphs = [p for p in SAMPLE.read_text(encoding="utf-8").split("\n") if p.strip()]
    out: list[str] = []
    size = 0
    i = 0
    while size < chars:
        piece = seed if seeded and i % 6 == 5 else paragraphs[i % len(paragraphs)]
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
    parser.add_argument("--leaders", type=int, default=0, help="people in a made-up leaders table")
    args = parser.parse_args()
    if args.leaders and not 7 <= args.leaders <= len(leader_names(10_000)):
        parser.error(f"--leaders: 0, or 7 to {len(leader_names(10_000))}")  # 7 to 240
    unit_dir = None
    if args.leaders:
        unit_dir = Path(tempfile.mkdtemp(prefix="bench-leaders-"))
        (unit_dir / "leaders.tsv").write_text(leaders_table(args.leaders), encoding="utf-8")

    Lexicon.load(unit_dir)  # first use imports what loading needs; only the second is measured
    tracemalloc.start()
    started = time.perf_counter()
    lexicon = Lexicon.load(unit_dir)
    build_ms = (time.perf_counter() - started) * 1000
    lexicon_bytes, _ = tracemalloc.get_traced_memory()  # what is still held: the lexicon
    tracemalloc.stop()

    text = build_text(args.chars, leaders=args.leaders)
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
    table = f", a leaders table of {args.leaders}" if args.leaders else ""
    print(f"Proofreading benchmark: {len(text):,} characters, {terms} listed terms{table}\n")
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

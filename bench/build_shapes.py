"""Writes bot/proofread/lists/shapes.txt, the similar-shape groups the typo check reads.

Run: .venv/bin/python -m bench.build_shapes SAME_STROKE_TXT

The source is pycorrector's pycorrector/data/same_stroke.txt (github.com/shibing624/pycorrector,
Apache License 2.0): one group a line of characters that share a component and are confused in
print and handwriting (辨辩瓣辫, 竟竞, 拨拔). Kept: the characters of words jieba's dictionary counts
at least COMMON_CHAR_FREQ times (as for sounds.txt), groups of two or more such characters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.build_sounds import common_characters
from bot.proofread.typo import SHAPES_FILE

OUT = Path(__file__).resolve().parent.parent / "bot" / "proofread" / "lists" / SHAPES_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="pycorrector's same_stroke.txt")
    args = parser.parse_args()
    common = common_characters()
    groups: list[str] = []
    seen: set[str] = set()
    for line in args.source.read_text(encoding="utf-8").splitlines():
        chars = [c for c in "".join(line.split()) if "\u4e00" <= c <= "\u9fff"]
        group = "".join(dict.fromkeys(c for c in chars if c in common))
        if len(group) > 1 and group not in seen:
            seen.add(group)
            groups.append(group)
    with OUT.open("w", encoding="utf-8") as out:
        out.write(
            "# 形近字表（错别字检查用）：每行一组字形相近、印刷和书写中常被混淆的常用字。\n"
            "# 来源：pycorrector 的 pycorrector/data/same_stroke.txt（github.com/shibing624/"
            "pycorrector，Apache License 2.0），\n"
            "# 由 bench/build_shapes.py 生成，只收 jieba 词典常用词里出现的字。\n"
        )
        for group in groups:
            out.write(group + "\n")
    print(f"{OUT}: {len(groups)} groups")


if __name__ == "__main__":
    main()

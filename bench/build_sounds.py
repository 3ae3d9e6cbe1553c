"""Writes bot/proofread/lists/sounds.txt, the same-sound groups the typo check reads.

Run: .venv/bin/python -m bench.build_sounds

Each line is a toneless pinyin syllable and the characters that have it as one of their readings
(pypinyin's table), limited to the characters of words jieba's dictionary counts at least
COMMON_CHAR_FREQ times. Built ahead of time because importing pypinyin's table costs the bot
process about 55 MB; the file is about 30 KB.
"""

from __future__ import annotations

from pathlib import Path

from pypinyin.pinyin_dict import pinyin_dict

from bot.proofread.typo import COMMON_CHAR_FREQ, SOUNDS_FILE, _jieba_dictionary, _toneless

OUT = Path(__file__).resolve().parent.parent / "bot" / "proofread" / "lists" / SOUNDS_FILE


def common_characters() -> set[str]:
    """The characters of words jieba's dictionary counts at least COMMON_CHAR_FREQ times."""
    common: set[str] = set()
    with _jieba_dictionary().open(encoding="utf-8") as lines:
        for line in lines:
            word, count = line.split(" ", 2)[:2]
            if int(count) >= COMMON_CHAR_FREQ:
                common.update(word)
    return common


def main() -> None:
    common = common_characters()
    groups: dict[str, set[str]] = {}
    for code, spelled in pinyin_dict.items():
        char = chr(code)
        if char in common:
            for reading in spelled.split(","):
                groups.setdefault(_toneless(reading), set()).add(char)
    with OUT.open("w", encoding="utf-8") as out:
        out.write(
            "# 同音字表（错别字检查用）：每行一个不带声调的拼音<TAB>读这个音的常用字"
            "（多音字在各音下都有）。\n"
            "# 由 bench/build_sounds.py 从 pypinyin 的字表生成，只收 jieba 词典常用词里出现的字。\n"
        )
        for sound in sorted(groups):
            if len(groups[sound]) > 1:
                out.write(f"{sound}\t{''.join(sorted(groups[sound]))}\n")
    print(f"{OUT}: {len(groups)} syllables, {len(common)} characters")


if __name__ == "__main__":
    main()

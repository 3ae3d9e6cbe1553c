"""`sanshen demo -c config.toml`: a rehearsal with the unit's own chains and staff, on the
simulator and a temporary database, never the unit's own database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def rehearse(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        timeout=300,
    )


def records(stdout: str) -> list[str]:
    """The transcript's stored 审 decisions: "一审 王小明（wangxm） 同意" …"""
    part = stdout.split("=== 数据库中的审核与校对记录 ===", 1)[1]
    return [
        " ".join(line.split()[1:4])
        for line in part.splitlines()
        if line.startswith("  第1版 ") and "审 " in line
    ]


def test_the_example_config_rehearses_its_whole_chain(tmp_path: Path) -> None:
    done = rehearse(tmp_path, EXAMPLE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "演练完成" in done.stdout
    assert records(done.stdout) == [
        "一审 王小明（wangxm） 同意",
        "二审 张科长（zhangkz） 同意",
        "三审 刘主任（liuzr） 同意",
    ]
    assert not (tmp_path / "data").exists()  # the config's own database path is left alone


def test_a_units_own_chain_and_people_are_the_ones_rehearsed(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        '  { name = "三审", assignees = ["role:leader"], mode = "any" },\n]\nproofs',
        '  { name = "三审", assignees = ["role:leader"], mode = "any" },\n'
        '  { name = "终审", assignees = ["role:leader"], eligible_roles = ["leader"] },\n]\nproofs',
        1,
    ).replace(
        '[[staff]]\nuserid = "chenfb"',
        '[[staff]]\nuserid = "huangsz"\nname = "黄副主任"\nroles = ["leader"]\n\n[[staff]]\nuserid = "chenfb"',
        1,
    )
    assert "终审" in text and "huangsz" in text
    done = rehearse(tmp_path, text)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "审核链：一审 → 二审 → 三审 → 终审" in done.stdout
    # two leaders: one signs 三审, the other 终审 (nobody signs two stages of a draft)
    assert records(done.stdout)[-2:] == ["三审 黄副主任（huangsz） 同意", "终审 刘主任（liuzr） 同意"]


def test_a_config_with_errors_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = rehearse(tmp_path, EXAMPLE.replace('roles = ["leader"]', 'roles = ["reviewer"]', 1))
    assert done.returncode == 2 and done.stderr.startswith("配置错误 chains.issued.stages.2"), done.stderr
    assert "演练" not in done.stdout

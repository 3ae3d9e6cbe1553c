"""Configuration: the example file loads, bad values name their key, secrets come from env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_config_example_file_is_valid() -> None:
    settings = load_settings(ROOT / "config.example.toml", env={})
    assert settings.wecom.agent_id == 1000002
    assert [c.category for c in settings.chains] == ["issued", "reprint", "reported"]
    assert settings.chain_for("issued").stages[0].assignees[0] == "@submitter"


def test_config_environment_overrides_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        ROOT / "config.example.toml",
        env={"SANSHEN_WECOM_SECRET": "from-env-secret", "SANSHEN_DATABASE_URL": "sqlite+aiosqlite:///x.db"},
    )
    assert settings.wecom.secret == "from-env-secret"
    assert settings.database.url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("needle", "replacement", "key"),
    [
        ('encoding_aes_key = "ReplaceWithYour43CharacterEncodingAESKey000"', 'encoding_aes_key = "short"',
         "wecom.encoding_aes_key"),
        ("agent_id = 1000002", 'agent_id = "abc"', "wecom.agent_id"),
        ('url = "sqlite+aiosqlite:///./data/sanshen.db"', 'url = "mysql://x"', "database.url"),
        ('roles = ["leader"]', 'roles = ["boss"]', "staff.3.roles"),
        ('{ name = "二审", assignees = ["role:reviewer"], mode = "any" },',
         '{ name = "二审", assignees = ["@submitter"], mode = "any" },', "chains.0"),
    ],
)
def test_config_error_names_the_key(tmp_path: Path, needle: str, replacement: str, key: str) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert needle in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace(needle, replacement, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(key), str(caught.value)


def test_config_cli_exits_nonzero_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[wecom]\ncorp_id = 'x'\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "wecom.agent_id" in done.stderr


def test_config_unknown_assignee_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(text.replace('assignees = ["role:leader"]', 'assignees = ["nobody"]', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="nobody"):
        load_settings(path, env={})

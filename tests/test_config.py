"""Configuration: the example file loads, bad values name their key, secrets come from env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.config import ConfigError, load_settings

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
    assert settings.wecom.proxy == ""
    proxied = load_settings(
        ROOT / "config.example.toml", env={"SANSHEN_WECOM_PROXY": "http://bot:s3cret@10.0.0.8:3128/"}
    )
    assert proxied.wecom.proxy == "http://bot:s3cret@10.0.0.8:3128"
    assert "s3cret" not in repr(proxied.wecom)


@pytest.mark.parametrize(
    ("needle", "replacement", "key"),
    [
        (
            'encoding_aes_key = "ReplaceWithYour43CharacterEncodingAESKey000"',
            'encoding_aes_key = "short"',
            "wecom.encoding_aes_key",
        ),
        ("agent_id = 1000002", 'agent_id = "abc"', "wecom.agent_id"),
        ('url = "sqlite+aiosqlite:///./data/sanshen.db"', 'url = "mysql://x"', "database.url"),
        ('roles = ["leader"]', 'roles = ["boss"]', "staff.3.roles"),
        (
            '{ name = "二审", assignees = ["role:reviewer"], mode = "any" },',
            '{ name = "二审", assignees = ["@submitter"], mode = "any" },',
            "chains.0",
        ),
        ('proxy = ""', 'proxy = "10.0.0.8:3128"', "wecom.proxy"),
        ('proxy = ""', 'proxy = "http://10.0.0.8"', "wecom.proxy"),
        ('proxy = ""', 'proxy = "https://10.0.0.8:3128"', "wecom.proxy"),
        ('proxy = ""', 'proxy = "socks5://10.0.0.8:1080"', "wecom.proxy"),
        ('proxy = ""', 'proxy = "http://10.0.0.8:3128/wecom"', "wecom.proxy"),
        ('proxy = ""', 'proxy = "http://10.0.0.8:99999"', "wecom.proxy"),
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
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "wecom.agent_id" in done.stderr


def test_config_unknown_assignee_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        text.replace('assignees = ["role:leader"]', 'assignees = ["nobody"]', 1), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="nobody"):
        load_settings(path, env={})


def config_with_files(tmp_path: Path, roster: str = "", accounts: str = "") -> Path:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('roster_file = ""', f'roster_file = "{roster}"', 1)
    text = text.replace('accounts_file = ""', f'accounts_file = "{accounts}"', 1)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("roster", "accounts", "key", "reason"),
    [
        ("日期,主班\n2026-12-01,zhaoli\n", "", "duty.roster_file", ""),
        ("日期,主班\n2026-12-01,nobody\n", "", "duty.roster_file", "第 2 行：主班 nobody 不在人员名单中"),
        ("日期,主班\n12月1日,zhaoli\n", "", "duty.roster_file", "第 2 行：日期“12月1日”应写成 YYYY-MM-DD"),
        (
            "",
            "name,owners,last_post\n本市发布,wangxm,昨天\n",
            "freshness.accounts_file",
            "第 2 行：last_post 应写成 YYYY-MM-DD HH:MM",
        ),
        ("", "name,owners\n本市发布,nobody\n", "freshness.accounts_file", "负责人 ['nobody'] 不在人员名单中"),
    ],
)
def test_config_data_files_are_read_before_start(
    tmp_path: Path, roster: str, accounts: str, key: str, reason: str
) -> None:
    from bot.app import check_watch_files

    names = {}
    for name, content in (("roster.csv", roster), ("accounts.csv", accounts)):
        if content:
            (tmp_path / name).write_text(content, encoding="utf-8")
            names[name] = str(tmp_path / name)
    settings = load_settings(
        config_with_files(tmp_path, names.get("roster.csv", ""), names.get("accounts.csv", "")), env={}
    )
    if not reason:
        check_watch_files(settings)  # a good file passes
        return
    with pytest.raises(ConfigError) as caught:
        check_watch_files(settings)
    assert str(caught.value).startswith(f"{key}: ") and reason in str(caught.value), str(caught.value)


def test_config_cli_names_a_missing_or_unreadable_data_file(tmp_path: Path) -> None:
    (tmp_path / "roster.xlsx").write_bytes(b"not a workbook")
    for roster, reason in (
        (str(tmp_path / "missing.csv"), "不存在"),
        (str(tmp_path / "roster.xlsx"), "无法读取"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "check-config", "-c", str(config_with_files(tmp_path, roster))],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 2, done.stdout
        assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
        assert done.stderr.startswith("配置错误 duty.roster_file: ") and reason in done.stderr, done.stderr


def check_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )


@pytest.mark.parametrize(
    ("needle", "replacement", "expected"),
    [
        (None, None, "web.session_secret"),
        (
            'public_url = "https://shenhe.example.gov.cn"',
            'public_url = "http://shenhe.example.gov.cn"',
            "server.public_url: 生产环境必须使用 https://",
        ),
        ('public_url = "https://shenhe.example.gov.cn"', 'public_url = ""', "server.public_url: 未填写"),
    ],
)
def test_check_config_explains_what_production_pages_need(
    tmp_path: Path, needle: str | None, replacement: str | None, expected: str
) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    if needle is not None:
        assert needle in text
        text = text.replace(needle, replacement or "", 1)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    env = {} if expected == "web.session_secret" else {"SANSHEN_WEB_SESSION_SECRET": "s" * 40}
    done = check_config(path, **env)
    assert done.returncode == 2 and f"配置错误 {expected}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "s" * 40 not in done.stderr


@pytest.mark.parametrize(
    ("needle", "replacement", "key", "reason"),
    [
        (
            '  { name = "三审", assignees = ["role:leader"], mode = "any" },\n]',
            "]",
            "chains.0",
            "至少需要 3 个审核环节",
        ),
        (
            '{ name = "二审", assignees = ["role:reviewer"], mode = "any" },',
            '{ name = "二审", assignees = ["wangxm"], mode = "any" },',
            "chains.issued.stages.1",
            "没有二审所需的角色",
        ),
        (
            '{ name = "三审", assignees = ["role:leader"], mode = "any" },',
            '{ name = "三审", assignees = ["role:leader"], mode = "any", eligible_roles = ["publisher"] },',
            "chains.issued.stages.2",
            "三审的审核人中没有人具有可签署的角色",
        ),
        (
            'leader_rotation = ["liuzr"]',
            'leader_rotation = ["zhaoli"]',
            "duty.leader_rotation",
            "没有 leader 角色",
        ),
        (
            '  { name = "二校", after_stage = 2, method = "默读", assignees = ["role:reviewer"], eligible_roles = ["reviewer"] },\n',
            "",
            "chains.0",
            "三校须配置一校、二校、三校",
        ),
        (
            '{ name = "一校", after_stage = 1, method = "读校", assignees = ["role:collector"]',
            '{ name = "一校", after_stage = 1, method = "读校", assignees = ["zhaoli"]',
            "chains.issued.proofs.0",
            "须 2 人签署，符合条件的校对人只有 1 人",
        ),
        ('rotation = ["zhaoli"]', 'rotation = ["zhangkz"]', "duty.rotation", "没有 duty 角色"),
    ],
)
def test_check_config_refuses_chains_nobody_may_sign_as_the_rules_say(
    tmp_path: Path, needle: str, replacement: str, key: str, reason: str
) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert needle in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace(needle, replacement, 1), encoding="utf-8")
    done = check_config(path, SANSHEN_WEB_SESSION_SECRET="0123456789abcdef0123456789abcdef")
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"配置错误 {key}") and reason in lines[0], lines[0]

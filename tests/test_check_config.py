"""check-config catches what breaks production, one Chinese line naming the key, exit 2; and
`--online` tries the credentials, the app, every member and a test message against WeCom."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.stack import random_aes_key
from bot.core.clock import FrozenClock
from bot.simulator import WeComSimulator
from bot.simulator.wire import serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
SESSION_SECRET = "0123456789abcdef0123456789abcdef"
# Credentials shaped like WeCom's (the example file's are placeholders).
REAL_LOOKING = {
    'corp_id = "ww0000000000000000"': 'corp_id = "ww1436e0e65a779aee"',
    'secret = "replace-with-the-app-secret"': 'secret = "Qb3fK9vN2mT7pL4sR8tE1wZ6cH0jD5gA3eU9iO2nB7k"',
    'token = "ReplaceWithYourToken"': 'token = "QDG6eK"',
    'encoding_aes_key = "ReplaceWithYour43CharacterEncodingAESKey000"': (
        'encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"'
    ),
    'public_url = "https://shenhe.example.gov.cn"': 'public_url = "https://shenhe.qinzhou.gov.cn"',
}
# pydantic's own (English) wording must never reach the admin
ENGLISH = re.compile(r"Input should|Field required|Extra inputs|not permitted|valid integer|Value error")


def production_text() -> str:
    text = EXAMPLE
    for placeholder, real in REAL_LOOKING.items():
        assert placeholder in text
        text = text.replace(placeholder, real, 1)
    return text


def check_config(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(path), *args],
        capture_output=True,
        text=True,
        cwd=path.parent,
        check=False,
        env={"PATH": "/usr/bin:/bin", "SANSHEN_WEB_SESSION_SECRET": SESSION_SECRET},
    )


def test_a_complete_production_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(production_text(), encoding="utf-8")
    done = check_config(path)
    assert done.returncode == 0 and "配置有效" in done.stdout, done.stderr


def test_the_example_file_as_shipped_is_refused_for_each_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    done = check_config(path)
    assert done.returncode == 2 and "配置有效" not in done.stdout
    keys = [line.split(":")[0].removeprefix("配置错误 ") for line in done.stderr.splitlines()]
    assert keys == [
        "wecom.corp_id",
        "wecom.secret",
        "wecom.token",
        "wecom.encoding_aes_key",
        "server.public_url",
    ]
    assert all("示例" in line for line in done.stderr.splitlines())


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def staff_roles(userid: str, roles: str) -> Callable[[str], str]:
    """Give one member of the example's staff list other roles."""

    def edit(text: str) -> str:
        pattern = re.compile(rf'(userid = "{userid}"\nname = "[^"]+"\nroles = )\[[^\]]*\]')
        assert pattern.search(text), userid
        return pattern.sub(rf"\g<1>{roles}", text, count=1)

    return edit


# (what is wrong, the edit, the key its line names, words the line must contain)
BAD_CONFIGS: list[tuple[str, Callable[[str], str], str, str]] = [
    (
        "corp_id not WeCom's",
        replace('corp_id = "ww1436e0e65a779aee"', 'corp_id = "hello"'),
        "wecom.corp_id",
        "ww 加 16 位",
    ),
    (
        "secret cut short",
        replace(
            '"Qb3fK9vN2mT7pL4sR8tE1wZ6cH0jD5gA3eU9iO2nB7k"', '"Qb3fK9vN2mT7pL4sR8tE1wZ6cH0jD5gA3eU9iO2n"'
        ),
        "wecom.secret",
        "43 位",
    ),
    ("token with a dash", replace('token = "QDG6eK"', 'token = "QDG6-eK"'), "wecom.token", "字母和数字"),
    (
        "AES key one short",
        replace(
            '"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"', '"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2"'
        ),
        "wecom.encoding_aes_key",
        "43 位",
    ),
    (
        "no leader: 三审 has nobody",
        staff_roles("liuzr", '["reviewer"]'),
        "chains.issued.stages.2",
        "三审无人能签",
    ),
    (
        "one person for several stages",
        lambda text: staff_roles("zhangkz", '["collector", "reviewer", "leader"]')(
            staff_roles("liuzr", '["collector"]')(
                replace('leader_rotation = ["liuzr"]', "leader_rotation = []")(text)
            )
        ),
        "chains.issued",
        "二审、三审须由 2 位不同的人签署",
    ),
    (
        "a stage's role nobody has",
        replace(
            '{ name = "三审", assignees = ["role:leader"], mode = "any" },',
            '{ name = "三审", assignees = ["role:leader", "role:principal"], mode = "any" },',
        ),
        "chains.issued.stages.2",
        "没有人员具有角色 principal",
    ),
    (
        "negative warning",
        replace("warn_hours = [72, 24, 6]", "warn_hours = [72, -24, 6]"),
        "freshness.warn_hours",
        "正小时数",
    ),
    (
        "unordered warnings",
        replace("warn_hours = [72, 24, 6]", "warn_hours = [6, 24, 72]"),
        "freshness.warn_hours",
        "从大到小",
    ),
    (
        "escalation before the reminder",
        replace("escalate_after_hours = 48", "escalate_after_hours = 12"),
        "reminders.escalate_after_hours",
        "须大于 remind_after_hours",
    ),
    (
        "inspection reminder after its deadline",
        replace("inspection_reminder_minutes = 30", "inspection_reminder_minutes = 150"),
        "duty.inspection_reminder_minutes",
        "须小于 inspection_deadline_minutes",
    ),
    (
        "a whole webhook URL as the key",
        replace(
            'webhook_key = ""',
            'webhook_key = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"',
        ),
        "duty.webhook_key",
        "key= 后面的部分",
    ),
    (
        "a misspelt key",
        replace("remind_interval_minutes = 120", "remind_intervall_minutes = 120"),
        "review.remind_intervall_minutes",
        "不是可用的配置项",
    ),
    ("a required key left out", replace("agent_id = 1000002\n", ""), "wecom.agent_id", "必须填写"),
    (
        "a mode that does not exist",
        replace(
            '{ name = "二审", assignees = ["role:reviewer"], mode = "any" },',
            '{ name = "二审", assignees = ["role:reviewer"], mode = "one" },',
        ),
        "chains.0.stages.1.mode",
        "只能是 any、all 之一",
    ),
    (
        "a time of day as 8:30",
        replace('handover_time = "08:30"', 'handover_time = "8:30"'),
        "duty.handover_time",
        "HH:MM",
    ),
    (
        "a number in quotes",
        replace("shift_hours = 24", 'shift_hours = "24h"'),
        "duty.shift_hours",
        "应为整数",
    ),
    (
        "a shift the day cannot repeat",
        replace("shift_hours = 24", "shift_hours = 10"),
        "duty.shift_hours",
        "整除 24",
    ),
]


@pytest.mark.parametrize(("what", "edit", "key", "words"), BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS])
def test_each_production_breaker_is_one_chinese_line_naming_its_key(
    tmp_path: Path, what: str, edit: Callable[[str], str], key: str, words: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(edit(production_text()), encoding="utf-8")
    done = check_config(path)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"配置错误 {key}: ") and words in lines[0], lines[0]
    assert not ENGLISH.search(lines[0]) and "Traceback" not in done.stderr


# (file name, content, key, words): a data file's problems name the row and the column
BAD_FILES = [
    (
        "accounts.csv",
        "账号,负责人\n本市发布,wangxm\n",
        "freshness.accounts_file",
        "第 1 行：不认识的列“账号”",
    ),
    (
        "accounts.csv",
        "platform,owners\n微信公众号,wangxm\n",
        "freshness.accounts_file",
        "缺少 name（名称）列",
    ),
    ("accounts.csv", "name,owners\n,wangxm\n", "freshness.accounts_file", "第 2 行：name（名称）列为空"),
    (
        "accounts.csv",
        "name,period_hours\n本市发布,-5\n",
        "freshness.accounts_file",
        "第 2 行 period_hours 列：不能小于 1",
    ),
    (
        "accounts.csv",
        "name,owners\n本市发布,王大明\n",
        "freshness.accounts_file",
        "负责人 ['王大明'] 不在人员名单中",
    ),
    ("roster.csv", "日期,主班人员\n2026-12-01,zhaoli\n", "duty.roster_file", "第 1 行：不认识的列“主班人员”"),
    ("roster.csv", "日期\n2026-12-01\n", "duty.roster_file", "至少需要 主班、副班、带班领导 中的一列"),
    (
        "roster.csv",
        "日期,主班\n2026-12-01,nobody\n",
        "duty.roster_file",
        "第 2 行：主班 nobody 不在人员名单中",
    ),
]


@pytest.mark.parametrize(("name", "content", "key", "words"), BAD_FILES)
def test_a_bad_data_file_names_its_row_and_column(
    tmp_path: Path, name: str, content: str, key: str, words: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    setting = "accounts_file" if key.startswith("freshness") else "roster_file"
    path = tmp_path / "config.toml"
    path.write_text(replace(f'{setting} = ""', f'{setting} = "{name}"')(production_text()), encoding="utf-8")
    done = check_config(path)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"配置错误 {key}: ") and words in lines[0], lines[0]
    assert not ENGLISH.search(lines[0])


def test_data_files_may_use_chinese_headings_and_names(tmp_path: Path) -> None:
    """What an office's spreadsheet looks like: Chinese headings, people by name."""
    (tmp_path / "accounts.csv").write_text(
        "名称,平台,负责人\n本市发布,微信公众号,王小明|zhaoli\n", encoding="utf-8"
    )
    (tmp_path / "roster.csv").write_text("日期,主班,带班领导\n2026-12-01,赵丽,刘主任\n", encoding="utf-8")
    text = replace('accounts_file = ""', 'accounts_file = "accounts.csv"')(production_text())
    path = tmp_path / "config.toml"
    path.write_text(replace('roster_file = ""', 'roster_file = "roster.csv"')(text), encoding="utf-8")
    done = check_config(path)
    assert done.returncode == 0, done.stderr

    from bot.core.config import load_settings
    from storage.accounts_repo import read_accounts_csv
    from storage.duty_repo import read_roster

    settings = load_settings(path, env={"SANSHEN_WEB_SESSION_SECRET": SESSION_SECRET})
    (account,) = read_accounts_csv(tmp_path / "accounts.csv", settings)
    assert account.data.owners == ("wangxm", "zhaoli")
    shifts = read_roster(tmp_path / "roster.csv", settings)
    assert sorted((s.role, s.userid) for s in shifts) == [("leader", "liuzr"), ("primary", "zhaoli")]


# ---- --online, against the simulator over HTTP ------------------------------------------------

CORP, SECRET, AGENT = "ww1436e0e65a779aee", "Qb3fK9vN2mT7pL4sR8tE1wZ6cH0jD5gA3eU9iO2nB7k", 1000002
EXAMPLE_STAFF = {
    "wangxm": "王小明",
    "zhaoli": "赵丽",
    "zhangkz": "张科长",
    "liuzr": "刘主任",
    "chenfb": "陈发布",
}


async def run_online(
    tmp_path: Path, arrange: Callable[[WeComSimulator], None], *args: str, secret: str = SECRET
) -> tuple[int, list[str], list[str], WeComSimulator]:
    """check-config --online in its own process against a simulator on a real port."""
    aes_key = random_aes_key()
    sim = WeComSimulator(
        corp_id=CORP,
        corp_secret=SECRET,
        agent_id=AGENT,
        token="QDG6eK",
        encoding_aes_key=aes_key,
        clock=FrozenClock(datetime(2026, 12, 1, 9, tzinfo=UTC)),
    )
    for userid, name in EXAMPLE_STAFF.items():
        sim.add_member(userid, name)
    sim.trusted_domain = "shenhe.qinzhou.gov.cn"
    arrange(sim)
    runner, url = await serve(sim.app)
    text = production_text().replace(SECRET, secret)
    text = text.replace('api_base = "https://qyapi.weixin.qq.com"', f'api_base = "{url}"')
    path = tmp_path / "config.toml"
    path.write_text(text.replace("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", aes_key), encoding="utf-8")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "check-config",
            "-c",
            str(path),
            "--online",
            *args,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "SANSHEN_WEB_SESSION_SECRET": SESSION_SECRET},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    finally:
        await runner.cleanup()
        await sim.close()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode().splitlines(), sim


async def test_online_check_passes_and_sends_the_admins_a_test_message(tmp_path: Path) -> None:
    code, out, err, sim = await run_online(tmp_path, lambda sim: None, "--send-test")
    assert code == 0 and err == [], err
    assert any("企业ID 与 Secret 有效" in line for line in out)
    assert any("5 人都在通讯录和本应用的可见范围内" in line for line in out)
    (message,) = sim.inbox("chenfb")  # the only admin
    assert "【配置检查】" in message.payload["text"]["content"]
    assert all(not sim.inbox(u) for u in EXAMPLE_STAFF if u != "chenfb")


def untrusted(sim: WeComSimulator) -> None:
    sim.trusted_ips = {"203.0.113.7"}


def without_liuzr(sim: WeComSimulator) -> None:
    del sim.members["liuzr"]


def zhaoli_not_visible(sim: WeComSimulator) -> None:
    sim.visible = set(EXAMPLE_STAFF) - {"zhaoli"}


def zhangkz_disabled(sim: WeComSimulator) -> None:
    sim.member_status["zhangkz"] = 2


def other_domain(sim: WeComSimulator) -> None:
    sim.trusted_domain = "oa.qinzhou.gov.cn"


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (untrusted, ["企业可信IP: 企业微信拒绝了本服务器的出口地址 127.0.0.1（60020）"]),
        (without_liuzr, ["staff.liuzr: 企业微信通讯录中没有账号 liuzr（刘主任，60111）"]),
        (zhaoli_not_visible, ["staff.zhaoli: 赵丽（zhaoli）不在本应用的可见范围内（60011）"]),
        (zhangkz_disabled, ["staff.zhangkz: 张科长（zhangkz）已被禁用"]),
        (
            other_domain,
            ["server.public_url: 域名 shenhe.qinzhou.gov.cn 与应用的可信域名 oa.qinzhou.gov.cn 不一致"],
        ),
    ],
    ids=["60020", "unknown userid", "outside the visible range", "disabled member", "trusted domain"],
)
async def test_online_check_names_what_the_admin_must_fix(
    tmp_path: Path, arrange: Callable[[WeComSimulator], None], expected: list[str]
) -> None:
    code, _, err, _ = await run_online(tmp_path, arrange)
    assert code == 2
    assert len(err) == len(expected), err
    for line, words in zip(err, expected, strict=True):
        assert line.startswith("配置错误 ") and words in line, line


async def test_online_check_with_a_wrong_secret_stops_at_the_token(tmp_path: Path) -> None:
    code, out, err, sim = await run_online(tmp_path, lambda sim: None, secret="W" * 43)
    assert code == 2 and any(line.startswith("配置有效") for line in out)
    assert err == [
        "配置错误 wecom.secret: Secret 不正确（40001），请在 应用管理 → 本应用 → Secret 重新查看并复制"
    ]
    assert sim.call_count("/user/get") == 0

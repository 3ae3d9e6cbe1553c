"""Settings: the one validated, frozen configuration object, loaded from TOML plus environment."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROLES = ("collector", "reviewer", "leader", "principal", "duty", "publisher", "admin")
CATEGORIES: tuple[Literal["issued", "reprint", "reported"], ...] = ("issued", "reprint", "reported")
CATEGORY_LABELS = {"issued": "制发类", "reprint": "转载类", "reported": "报送类"}
SUBMITTER = "@submitter"

# Environment variables that override secrets and deployment values (never logged).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SANSHEN_WECOM_CORP_ID": ("wecom", "corp_id"),
    "SANSHEN_WECOM_SECRET": ("wecom", "secret"),
    "SANSHEN_WECOM_TOKEN": ("wecom", "token"),
    "SANSHEN_WECOM_AES_KEY": ("wecom", "encoding_aes_key"),
    "SANSHEN_WECOM_API_BASE": ("wecom", "api_base"),
    "SANSHEN_WECOM_PROXY": ("wecom", "proxy"),
    "SANSHEN_DATABASE_URL": ("database", "url"),
    "SANSHEN_WEB_SESSION_SECRET": ("web", "session_secret"),
    "SANSHEN_AUDIT_KEY": ("audit", "key"),
}
REAL_WECOM_API = "https://qyapi.weixin.qq.com"
# What WeCom's credentials look like (企业ID: "ww" + 16 hex digits, older corps "wx"; an app's
# Secret: 43 url-safe base64 characters), and the example file's stand-ins for them.
CORP_ID = re.compile(r"w[wx][0-9a-f]{16}", re.IGNORECASE)
APP_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
PLACEHOLDER = re.compile(r"replace|your|example|change.?me|x{4}|0{12}", re.IGNORECASE)
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"  # a local time of day, 24-hour


def _http_url(value: str) -> str:
    if not re.match(r"https?://[^/\s]+", value):
        raise ValueError("必须以 http:// 或 https:// 开头")
    return value.rstrip("/")


class ConfigError(Exception):
    """Configuration is missing or invalid; the message names the key and the reason."""


_Index = TypeVar("_Index")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeComSettings(_Frozen):
    corp_id: str = Field(min_length=1)
    agent_id: int = Field(gt=0)
    secret: str = Field(min_length=1, repr=False)
    token: str = Field(min_length=1, max_length=32, repr=False)
    encoding_aes_key: str = Field(repr=False)
    api_base: str = REAL_WECOM_API
    # Where members' browsers sign in (网页授权): WeCom's own; the demo and tests use the simulator.
    oauth_base: str = "https://open.weixin.qq.com"
    # An HTTP forward proxy every call to api_base goes through (http://host:port, optionally
    # user:password@), for a server with no direct route out; empty: a direct connection.
    proxy: str = Field(default="", repr=False)
    # Reject callbacks whose timestamp is further than this from our clock (replay window).
    timestamp_tolerance_seconds: int = Field(default=300, gt=0)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]{43}", value):
            raise ValueError("必须是 43 位字母或数字 (EncodingAESKey)")
        return value

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]+", value):
            raise ValueError("只能包含字母和数字，最多 32 位")
        return value

    @field_validator("api_base", "oauth_base")
    @classmethod
    def _base_shape(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("proxy")
    @classmethod
    def _proxy_shape(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        extra = parts.path not in ("", "/") or parts.query or parts.fragment
        if parts.scheme != "http" or not parts.hostname or port is None or extra:
            raise ValueError("必须是 http://主机:端口（可带 用户名:密码@），例如 http://10.0.0.8:3128")
        return value.rstrip("/")

    @property
    def is_real(self) -> bool:
        """Talking to the real WeCom (production), not a simulator."""
        return self.api_base == REAL_WECOM_API


class ServerSettings(_Frozen):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    callback_path: str = "/wecom/callback"
    # The https address members' phones reach this server at (behind the reverse proxy); the
    # links in cards and the OAuth redirect are built from it. Empty: no draft pages.
    public_url: str = ""

    @field_validator("callback_path")
    @classmethod
    def _path_shape(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("必须以 / 开头")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str) -> str:
        if value and urlsplit(value).path.strip("/"):
            raise ValueError(
                "只填写协议和域名（如 https://shenhe.example.gov.cn），页面固定在 /app 下，不能带路径"
            )
        return _http_url(value) if value else value


class WebSettings(_Frozen):
    """The draft pages (H5 workspace) opened from cards and the app menu."""

    # Signs and encrypts the session cookie; every instance must share it. Better set
    # SANSHEN_WEB_SESSION_SECRET. Empty: a random one per start (sessions end at restart).
    session_secret: str = Field(default="", repr=False)
    max_upload_mb: int = Field(default=20, ge=1, le=200)
    session_hours: int = Field(default=8, ge=1, le=72)

    @field_validator("session_secret")
    @classmethod
    def _secret_strength(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("至少 32 个字符（建议用 openssl rand -hex 32 生成）")
        return value


class AuditSettings(_Frozen):
    """Witnesses of the audit chain kept outside the database (Qinzhou 五(三) 台账, 责任倒查)."""

    # Signs the daily checkpoints; keep it out of the database and its backups (SANSHEN_AUDIT_KEY).
    key: str = Field(default="", repr=False)
    # Each daily checkpoint (date, last entry, its hash, signature) is appended here too, e.g. on
    # another disk; `verify-audit --checkpoint-file` proves the log still contains them all.
    checkpoint_file: str = ""
    checkpoint_time: str = Field(default="00:10", pattern=HHMM)


class StorageSettings(_Frozen):
    # Uploaded files and pictures, stored by content (sha256); back it up with the database.
    files_dir: str = "./data/files"


class DatabaseSettings(_Frozen):
    url: str = "sqlite+aiosqlite:///./data/sanshen.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("只支持 sqlite+aiosqlite:// 或 postgresql+asyncpg:// 开头的地址")
        return value


class StaffMember(_Frozen):
    userid: str = Field(min_length=1)
    name: str = Field(min_length=1)
    roles: tuple[str, ...] = ()

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in value if r not in ROLES]
        if unknown:
            raise ValueError(f"未知角色 {unknown}，可用：{', '.join(ROLES)}")
        return value


class StaffDirectory(dict[str, StaffMember]):
    """userid → member, and who holds each role (built on first asking: the review chain and
    the reminders ask for a role's members on every decision, and a unit has hundreds of staff)."""

    __slots__ = ("_by_role",)

    def __init__(self, members: Iterable[StaffMember]) -> None:
        super().__init__((m.userid, m) for m in members)
        self._by_role: dict[str, tuple[str, ...]] | None = None

    def with_role(self, role: str) -> tuple[str, ...]:
        """The userids of the members holding `role`, in staff-list order."""
        if self._by_role is None:
            by_role: dict[str, list[str]] = {}
            for member in self.values():
                for held in dict.fromkeys(member.roles):
                    by_role.setdefault(held, []).append(member.userid)
            self._by_role = {held: tuple(userids) for held, userids in by_role.items()}
        return self._by_role.get(role, ())


def members_with_role(staff: Mapping[str, StaffMember], role: str) -> Sequence[str]:
    """The userids in `staff` holding `role`, in order (indexed when `staff` is a directory)."""
    if isinstance(staff, StaffDirectory):
        return staff.with_role(role)
    return [m.userid for m in staff.values() if role in m.roles]


# Who may sign each 审 stage by default (Qinzhou 附件 四(一)): 一审 采编人员, 二审 科室负责人,
# 三审 单位领导; any stage past the third is a leader's.
DEFAULT_ELIGIBLE_ROLES: dict[int, tuple[str, ...]] = {1: ("collector",), 2: ("reviewer",), 3: ("leader",)}
MIN_REVIEW_STAGES = 3
PRINCIPAL_STAGE = "审签"  # the 主要领导's sign-off of a 重要稿件, after 三审


def default_eligible_roles(stage: int) -> tuple[str, ...]:
    return DEFAULT_ELIGIBLE_ROLES.get(stage, ("leader",))


class StageSettings(_Frozen):
    name: str = Field(min_length=1)
    # Each entry: a userid, "role:<role>" (everyone with that role) or "@submitter".
    assignees: tuple[str, ...] = Field(min_length=1)
    mode: Literal["any", "all"] = "any"
    # The roles that may sign this stage (empty: the default for its place, see above). Enforced
    # on every path: card, command, page, 转审, 代理 and an admin's reassignment.
    eligible_roles: tuple[str, ...] = ()

    @field_validator("eligible_roles")
    @classmethod
    def _known_eligible_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in value if r not in ROLES]
        if unknown:
            raise ValueError(f"未知角色 {unknown}，可用：{', '.join(ROLES)}")
        return value


PROOF_METHODS = {
    "读校": "两人合作，一人朗读原稿，另一人核对校样",
    "默读": "不发声逐字逐句阅读，全面校核字词句和体例格式",
}


class ProofSettings(_Frozen):
    """A 校 step (三校, Qinzhou 附件 三(二)): proofreading after a 审 stage, signed with 校次 and time."""

    name: str = Field(min_length=1)  # 一校, 二校, 三校
    after_stage: int = Field(ge=1)  # the 审 stage it follows (三校 follows 三审, before publishing)
    method: Literal["读校", "默读"] = "读校"
    assignees: tuple[str, ...] = Field(min_length=1)  # userids or "role:<role>"
    eligible_roles: tuple[str, ...] = Field(min_length=1)
    # How many different people sign it: 读校 is two (one reads, one checks), 默读 one.
    proofreaders: int = Field(default=0, ge=0, le=5)

    @field_validator("eligible_roles")
    @classmethod
    def _known_proof_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in value if r not in ROLES]
        if unknown:
            raise ValueError(f"未知角色 {unknown}，可用：{', '.join(ROLES)}")
        return value

    @property
    def needed(self) -> int:
        return self.proofreaders or (2 if self.method == "读校" else 1)


def default_proofs() -> tuple[ProofSettings, ...]:
    """Qinzhou 附件 三(二): 一校 by 采编人员 (读校), 二校 by 科室负责人 (默读), 三校 by 科室负责人
    with 采编人员 after the leader's 签发 (读校), before publishing."""
    return (
        ProofSettings(
            name="一校",
            after_stage=1,
            method="读校",
            assignees=("role:collector",),
            eligible_roles=("collector",),
        ),
        ProofSettings(
            name="二校",
            after_stage=2,
            method="默读",
            assignees=("role:reviewer",),
            eligible_roles=("reviewer",),
        ),
        ProofSettings(
            name="三校",
            after_stage=3,
            method="读校",
            assignees=("role:reviewer", "role:collector"),
            eligible_roles=("reviewer", "collector"),
        ),
    )


class ChainSettings(_Frozen):
    category: Literal["issued", "reprint", "reported"]
    stages: tuple[StageSettings, ...] = Field(min_length=1)
    # 三校 (on unless switched off explicitly; then nothing claims 三审三校 for this chain).
    proofreading: bool = True
    proofs: tuple[ProofSettings, ...] = Field(default_factory=default_proofs)
    # The 审 stage that does the 保密审查 (Zhanjiang 第八条; 二审 by default): its reviewer states
    # 不涉密 with 同意, or 涉密不得公开, which stops the draft for good.
    secrecy_stage: int = Field(default=2, ge=1)

    def with_principal(self) -> ChainSettings:
        """This chain for a 重要稿件: the 主要领导's 审签 after the last 审 stage (Qinzhou 附件 四(一)
        末段; Zhanjiang 第六条(一)), and the 校 step that followed the last stage follows it."""
        last = len(self.stages)
        signing = StageSettings(
            name=PRINCIPAL_STAGE, assignees=("role:principal",), eligible_roles=("principal",)
        )
        proofs = tuple(
            p.model_copy(update={"after_stage": last + 1}) if p.after_stage == last else p
            for p in self.proofs
        )
        return self.model_copy(update={"stages": (*self.stages, signing), "proofs": proofs})

    def proof_after(self, stage: int) -> ProofSettings | None:
        """The 校 step that follows 审 stage `stage`, when proofreading is on."""
        if not self.proofreading:
            return None
        return next((p for p in self.proofs if p.after_stage == stage), None)

    @model_validator(mode="after")
    def _submitter_only_first(self) -> ChainSettings:
        if len(self.stages) < MIN_REVIEW_STAGES:
            raise ValueError(
                f"至少需要 {MIN_REVIEW_STAGES} 个审核环节（一审、二审、三审，三审三校制度不得压减）"
            )
        for index, stage in enumerate(self.stages[1:], start=2):
            if SUBMITTER in stage.assignees:
                raise ValueError(f"第{index}审不能由投稿人审核（{SUBMITTER} 只能用于一审）")
        if self.secrecy_stage > len(self.stages):
            raise ValueError(
                f"secrecy_stage: 第{self.secrecy_stage}审不存在（共 {len(self.stages)} 个审核环节）"
            )
        if self.proofreading:
            if len(self.proofs) < 3:
                raise ValueError("三校须配置一校、二校、三校（或明确设置 proofreading = false 关闭三校）")
            after = [p.after_stage for p in self.proofs]
            if len(set(after)) != len(after) or max(after) > len(self.stages):
                raise ValueError("proofs: 每个审核环节之后至多一个校次，且须在已配置的审核环节之后")
        return self

    def eligible_roles(self, stage: int) -> tuple[str, ...]:
        return self.stages[stage - 1].eligible_roles or default_eligible_roles(stage)


# Keys that no longer exist, and why: a config still carrying one is refused by name.
RETIRED_REVIEW_KEYS = {
    key: "已取消：保密审查表注3 要求投稿人自行勾选，请在投稿时写明"
    for key in ("default_source", "default_disclosure", "default_platforms")
}


class ReviewSettings(_Frozen):
    # A submission whose title or body contains one of these is a 重要稿件 (重大信息): after 三审
    # the 主要领导 (role principal) signs it (审签). A submitter can also write 重要：是.
    important_keywords: tuple[str, ...] = ()
    cc_on_submit: tuple[str, ...] = ()  # copied (抄送) on every new draft
    cc_on_approval: tuple[str, ...] = ()  # told when a draft passes 三审
    # 发布后第一时间再次审核 (湛江 细则 三(三)2): each /published opens a re-check, due this many
    # working-day hours later, for the people who decided stage N of the published version
    # ("stage:2") or everyone with a role ("role:reviewer")
    recheck_within_hours: float = Field(default=2, gt=0, le=168)
    recheck_by: str = Field(default="stage:2", pattern=r"^(stage:[1-9]|role:[a-z_]+)$")
    remind_interval_minutes: int = Field(default=120, ge=1)  # /remind: at most once per draft per this
    # 纠错 of a 错别字 (/correct 编号 错别字 说明): the 审 stages its corrected version passes, e.g. [1, 3]
    # (a short chain: at least two stages, so never fewer than two people); [] = the whole chain
    typo_correction_stages: tuple[int, ...] = ()

    @field_validator("typo_correction_stages")
    @classmethod
    def _short_chain(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if value and (len(value) < 2 or list(value) != sorted(set(value)) or value[0] < 1):
            raise ValueError("至少两个审核环节，按顺序写环节序号（如 [1, 3]），纠错稿不得少于两人审核")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_retired_keys(cls, data: Any) -> Any:
        # ConfigError is not a ValueError, so pydantic lets it through unchanged: the line
        # names the full key ("review.default_source") instead of "Extra inputs are not permitted".
        for key, reason in RETIRED_REVIEW_KEYS.items():
            if isinstance(data, Mapping) and key in data:
                raise ConfigError(f"review.{key}: {reason}")
        return data


DEFAULT_FORM_TITLE = "{unit_name}政府门户网站及政务新媒体政务信息发布保密审查表"


class ExportSettings(_Frozen):
    """The 保密审查表's title line; {unit_name} stands for the unit (湛江 2021 附件's wording)."""

    form_title: str = Field(default=DEFAULT_FORM_TITLE, min_length=1, max_length=200)

    def form_heading(self, unit_name: str) -> str:
        return self.form_title.replace("{unit_name}", unit_name)


INCIDENT_KINDS = {"网络安全": "cyber", "舆情": "opinion", "内容差错": "content", "其他": "other"}
INCIDENT_KIND_LABELS = {code: word for word, code in INCIDENT_KINDS.items()}
INCIDENT_STATUS_LABELS = {"open": "待收到", "acked": "已收到，处置中", "resolved": "已处置"}
# 错情 kinds (纠错, 撤稿), as the people recording them say them
ERROR_KINDS = {
    "错别字": "typo",
    "表述": "wording",
    "政治性": "political",
    "泄密": "secret",
    "链接": "link",
    "其他": "other",
}
ERROR_KIND_LABELS = {code: word for word, code in ERROR_KINDS.items()}


class ReportTarget(_Frozen):
    """Whom an incident is reported to (湛江 第十二条、第十五条: 主要负责人, 上级主管部门, 宣传、网信、
    公安): someone in WeCom (userid, told at once) or outside it (recorded as reported by hand)."""

    name: str = Field(min_length=1, max_length=50)  # as the record shows it: 主要负责人, 市委网信办 …
    userid: str = ""  # "" = outside WeCom
    kinds: tuple[Literal["cyber", "opinion", "content", "other"], ...] = ()  # () = every kind


class DutySettings(_Frozen):
    """值班值守: rotation rules, pings, daily inspection, incidents, gap warnings."""

    # Rotation: people in order, one shift each, handing over at handover_time local time.
    rotation: tuple[str, ...] = ()  # 主班
    deputy_rotation: tuple[str, ...] = ()  # 副班 (optional)
    leader_rotation: tuple[str, ...] = ()  # 带班领导 (optional)
    rotation_start: date | None = None  # YYYY-MM-DD: the day rotation[0] takes the first shift
    shift_hours: int = Field(default=24, ge=1, le=168)  # storage.duty_repo.LONGEST_SHIFT
    handover_time: str = Field(default="08:30", pattern=HHMM)
    # On 法定节假日 (and weekends that are not 调休 workdays) use this order instead, if set.
    holiday_rotation: tuple[str, ...] = ()
    roster_file: str = ""  # CSV or xlsx imported at start-up (overrides the rotation per shift)
    handover_reminder_minutes: int = Field(default=60, ge=0)
    inspection_time: str = Field(default="09:50", pattern=HHMM)
    inspection_deadline_minutes: int = Field(default=120, ge=1)
    inspection_reminder_minutes: int = Field(default=30, ge=0)  # before the deadline
    incident_repeat_minutes: int = Field(default=5, ge=1)
    incident_escalate_minutes: int = Field(default=15, ge=1)
    report_to: tuple[ReportTarget, ...] = ()  # the 上报 chain of an incident, in order
    gap_check_time: str = Field(default="09:10", pattern=HHMM)
    gap_horizon_days: int = Field(default=7, ge=1, le=60)
    webhook_key: str = ""  # 值班群 group robot (消息推送) key, optional

    @field_validator("webhook_key")
    @classmethod
    def _key_not_url(cls, value: str) -> str:
        if "://" in value or "key=" in value:
            raise ValueError("只填写群机器人地址中 key= 后面的部分，不要粘贴整个 Webhook 地址")
        if value and not re.fullmatch(r"[A-Za-z0-9-]+", value):
            raise ValueError(
                "群机器人 key 只含字母、数字和连字符（群设置 → 消息推送 → Webhook 地址中 key= 之后）"
            )
        return value

    @model_validator(mode="after")
    def _times_fit(self) -> DutySettings:
        if 24 % self.shift_hours and self.shift_hours % 24:
            raise ValueError(
                f"duty.shift_hours: {self.shift_hours} 小时的班次排不进每天相同的交班时间，"
                "请用能整除 24 的时长（如 8、12、24）或 24 的整数倍"
            )
        if self.inspection_reminder_minutes >= self.inspection_deadline_minutes:
            raise ValueError(
                "duty.inspection_reminder_minutes: 须小于 inspection_deadline_minutes"
                f"（{self.inspection_deadline_minutes}），否则巡检卡一发出就提醒"
            )
        if self.handover_reminder_minutes >= self.shift_hours * 60:
            raise ValueError(
                f"duty.handover_reminder_minutes: 须短于一个班次（shift_hours = {self.shift_hours} 小时）"
            )
        if self.incident_escalate_minutes < self.incident_repeat_minutes:
            raise ValueError(
                "duty.incident_escalate_minutes: 不能小于 incident_repeat_minutes"
                f"（{self.incident_repeat_minutes}），升级应在重复提醒之后"
            )
        return self


class AccountSettings(_Frozen):
    """A 政务新媒体 account (or website column) under the update rule."""

    name: str = Field(min_length=1, max_length=100)
    platform: str = "微信公众号"
    unit: str = ""
    owners: tuple[str, ...] = ()
    period_hours: int | None = Field(default=None, ge=1)
    status: Literal["active", "paused", "closed"] = "active"


class FreshnessSettings(_Frozen):
    """The 14×24-hour update rule (per-account overrides of the period allowed)."""

    period_hours: int = Field(default=336, ge=1)
    warn_hours: tuple[int, ...] = (72, 24, 6)
    digest_time: str = Field(default="08:20", pattern=HHMM)
    accounts: tuple[AccountSettings, ...] = ()
    accounts_file: str = ""  # CSV import (name, platform, unit, owners, period_hours, last_post)
    # 临时下线 (钦州 第二十六条: 每年不得超过1次，下线时间不得超过30天): /accounts pause's limits
    pause_max_days: int = Field(default=30, ge=1, le=366)
    pauses_per_year: int = Field(default=1, ge=0, le=12)
    # 开设/变更/注销 (钦州 第二十五、二十六条): the roles that approve a request, in order (a step
    # nobody holds is skipped; [] = admins act directly), then filing within this many working days
    lifecycle_chain: tuple[str, ...] = ("leader", "principal")
    filing_working_days: int = Field(default=5, ge=1, le=30)

    @model_validator(mode="after")
    def _warnings_before_deadline(self) -> FreshnessSettings:
        warn = self.warn_hours
        if any(hours <= 0 for hours in warn):
            raise ValueError("freshness.warn_hours: 每一项都须是截止前的正小时数，如 [72, 24, 6]")
        if list(warn) != sorted(set(warn), reverse=True):
            raise ValueError("freshness.warn_hours: 须从大到小排列且不重复，如 [72, 24, 6]")
        if warn and warn[0] >= self.period_hours:
            raise ValueError(
                f"freshness.warn_hours: {warn[0]} 小时不短于更新周期 period_hours（{self.period_hours}），"
                "一发布就会提醒"
            )
        unknown = [r for r in self.lifecycle_chain if r not in ROLES]
        if unknown:
            raise ValueError(f"freshness.lifecycle_chain: 未知角色 {unknown}，可用：{', '.join(ROLES)}")
        return self


class ReminderSettings(_Frozen):
    """催办: reminders for stages pending too long; never a silent auto-approve."""

    remind_after_hours: float = Field(default=24, gt=0)
    escalate_after_hours: float = Field(default=48, gt=0)
    repeat_every_hours: float = Field(default=24, gt=0)
    hard_limit_hours: float = Field(default=0, ge=0)  # 0: no hard limit
    hard_limit_outcome: Literal["notify_admins", "return_to_submitter"] = "notify_admins"
    quiet_start: str = Field(default="22:00", pattern=HHMM)
    quiet_end: str = Field(default="07:30", pattern=HHMM)
    workdays_only: bool = True  # pending time counts working days only (法定节假日/调休 aware)

    @model_validator(mode="after")
    def _ordered_hours(self) -> ReminderSettings:
        if self.escalate_after_hours <= self.remind_after_hours:
            raise ValueError(
                f"reminders.escalate_after_hours: 须大于 remind_after_hours（{self.remind_after_hours:g}），"
                "先催办、再上报"
            )
        return self


class SchedulerSettings(_Frozen):
    sweep_seconds: int = Field(default=60, ge=5, le=3600)


class OutboxSettings(_Frozen):
    """Delivery of queued WeCom messages: retried until delivered or their content's lifetime ends."""

    text_lifetime_hours: int = Field(default=24, ge=1, le=24 * 30)  # texts, files, robot; cards: 72 h
    # message/send's duplicate check (WeCom max 4 h): a repeat of a send whose answer was lost is
    # not delivered twice within this window
    duplicate_check_seconds: int = Field(default=4 * 3600, ge=0, le=4 * 3600)
    probe_minutes: int = Field(default=5, ge=1, le=60)  # retry while paused on an admin-only error


class ReadingSettings(_Frozen):
    """全员读网 (钦州 第十四条; 三审三校 五(二)3): the staff take turns reading the unit's site
    sections and accounts, each turn confirmed or with what was found."""

    people: tuple[str, ...] = ()  # the rota, in order; empty = no 读网 assignments
    sections: tuple[str, ...] = ()  # what is read, in turn (栏目, 账号); empty = the whole site
    every: Literal["daily", "weekly"] = "weekly"  # weekly: assigned on Mondays, due by Sunday
    time: str = Field(default="09:40", pattern=HHMM)


class FindingsSettings(_Frozen):
    """智能识错: the unit's own word lists beside the shipped ones (formats: README, 智能识错)."""

    # a folder with any of wording.tsv, ads.tsv (added entries), allow.txt (never flagged),
    # domains.txt (link hosts that are fine); "" = the shipped lists only
    lists_dir: str = ""
    # the daily 巡检 reads the pages given to /published: a page slower than this is 访问超时
    fetch_seconds: float = Field(default=15, gt=0, le=120)
    # the 巡检 reads only pages on public addresses; true lets it read a site on the unit's
    # intranet (private, loopback, link-local addresses), which also lets any link reach them
    fetch_private: bool = False


def default_chains() -> tuple[ChainSettings, ...]:
    """The Qinzhou model: 一审 the editor's own check, 二审 科室负责人, 三审 单位领导."""
    stages = (
        StageSettings(name="一审", assignees=(SUBMITTER, "role:collector")),
        StageSettings(name="二审", assignees=("role:reviewer",)),
        StageSettings(name="三审", assignees=("role:leader",)),
    )
    return tuple(ChainSettings(category=c, stages=stages) for c in CATEGORIES)


def _calendar_days(entries: tuple[str, ...]) -> frozenset[date]:
    """'YYYY-MM-DD' or 'YYYY-MM-DD..YYYY-MM-DD' (both ends included) → the days."""
    days: set[date] = set()
    for entry in entries:
        first, _, last = entry.strip().partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise ValueError(f"“{entry}”应写成 YYYY-MM-DD 或 YYYY-MM-DD..YYYY-MM-DD") from None
        if end < start or (end - start).days > 31:
            raise ValueError(f"“{entry}”的起止日期有误（结束早于开始，或跨度超过31天）")
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(days)


class CalendarSettings(_Frozen):
    """法定节假日 and 调休 the unit keeps itself: for a year the installed holiday data does not know
    yet (国务院办公厅 announces the next year's each November), or to correct it. They take
    precedence; a year with any day listed here counts as known."""

    holidays: tuple[str, ...] = ()  # days off: "2027-01-01", "2027-02-15..2027-02-21"
    workdays: tuple[str, ...] = ()  # 调休: weekend days that are worked
    file: str = ""  # a TOML file with the same two lists, read with the config (its own path)

    @field_validator("holidays", "workdays")
    @classmethod
    def _days_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _calendar_days(value)
        return value

    @model_validator(mode="after")
    def _not_both(self) -> CalendarSettings:
        both = self.holiday_days & self.workday_days
        if both:
            raise ValueError(f"{min(both)} 同时列为节假日和调休上班日")
        return self

    @cached_property
    def holiday_days(self) -> frozenset[date]:
        return _calendar_days(self.holidays)

    @cached_property
    def workday_days(self) -> frozenset[date]:
        return _calendar_days(self.workdays)

    @cached_property
    def years(self) -> frozenset[int]:
        return frozenset(d.year for d in self.holiday_days | self.workday_days)


class Settings(_Frozen):
    wecom: WeComSettings
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    storage: StorageSettings = StorageSettings()
    timezone: str = "Asia/Shanghai"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log collectors
    unit_name: str = "本单位"
    review: ReviewSettings = ReviewSettings()
    export: ExportSettings = ExportSettings()
    staff: tuple[StaffMember, ...] = ()
    chains: tuple[ChainSettings, ...] = Field(default_factory=default_chains)
    duty: DutySettings = DutySettings()
    freshness: FreshnessSettings = FreshnessSettings()
    audit: AuditSettings = AuditSettings()
    reminders: ReminderSettings = ReminderSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    outbox: OutboxSettings = OutboxSettings()
    findings: FindingsSettings = FindingsSettings()
    reading: ReadingSettings = ReadingSettings()
    calendar: CalendarSettings = CalendarSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("未知时区") from exc
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        seen: set[str] = set()
        for member in self.staff:
            if member.userid in seen:
                raise ValueError(f"staff: userid {member.userid} 重复")
            seen.add(member.userid)
        categories = [c.category for c in self.chains]
        if len(set(categories)) != len(categories):
            raise ValueError("chains: 同一类别只能配置一条审核链")
        missing = [c for c in CATEGORIES if c not in categories]
        if missing:
            raise ValueError(f"chains: 缺少类别 {missing}")
        shortest = min(len(c.stages) for c in self.chains)
        if self.review.typo_correction_stages and self.review.typo_correction_stages[-1] > shortest:
            raise ValueError(
                f"review.typo_correction_stages: 第{self.review.typo_correction_stages[-1]}审不存在"
                f"（最短的审核链共 {shortest} 个环节）"
            )
        for chain in self.chains:
            for stage in chain.stages:
                for entry in stage.assignees:
                    if entry == SUBMITTER:
                        continue
                    if entry.startswith("role:"):
                        if entry[5:] not in ROLES:
                            raise ValueError(f"chains.{chain.category}: 未知角色 {entry}")
                    elif entry not in seen:
                        raise ValueError(f"chains.{chain.category}: 审核人 {entry} 不在 staff 中")
        if self.staff:
            self._check_who_may_sign()
            if self.review.important_keywords and not self.has_principal:
                raise ValueError(
                    "review.important_keywords: 配置了重要稿件关键词，但人员名单中没有主要领导（角色 principal）"
                )
        for key, people, role in (
            ("duty.rotation", self.duty.rotation, "duty"),
            ("duty.deputy_rotation", self.duty.deputy_rotation, "duty"),
            ("duty.leader_rotation", self.duty.leader_rotation, "leader"),
            ("duty.holiday_rotation", self.duty.holiday_rotation, "duty"),
        ):
            for userid in people:
                listed = self.staff_by_id.get(userid)
                if listed is not None and role not in listed.roles:
                    raise ValueError(f"{key}: {listed.name}（{userid}）没有 {role} 角色，不能排入此轮值")
        for key, people in (
            ("duty.rotation", self.duty.rotation),
            ("duty.deputy_rotation", self.duty.deputy_rotation),
            ("duty.leader_rotation", self.duty.leader_rotation),
            ("duty.holiday_rotation", self.duty.holiday_rotation),
            ("review.cc_on_submit", self.review.cc_on_submit),
            ("review.cc_on_approval", self.review.cc_on_approval),
            *((f"freshness.accounts.{a.name}.owners", a.owners) for a in self.freshness.accounts),
            *((f"duty.report_to.{t.name}.userid", (t.userid,)) for t in self.duty.report_to if t.userid),
            ("reading.people", self.reading.people),
        ):
            for userid in people:
                if userid not in seen:
                    raise ValueError(f"{key}: {userid} 不在 staff 中")
        if self.duty.rotation and self.duty.rotation_start is None:
            raise ValueError("duty.rotation_start: 配置了轮值名单时必须填写起始日期")
        names = [a.name for a in self.freshness.accounts]
        if len(set(names)) != len(names):
            raise ValueError("freshness.accounts: 账号名称重复")
        return self

    def _check_who_may_sign(self) -> None:
        """Every stage can be signed by someone eligible, and nobody ineligible is named."""
        holders = {role for member in self.staff for role in member.roles}
        for chain in self.chains:
            for index, stage in enumerate(chain.stages, start=1):
                roles = chain.eligible_roles(index)
                key = f"chains.{chain.category}.stages.{index - 1}"
                missing = [r for r in roles if r not in holders]
                if len(missing) == len(roles):
                    raise ValueError(
                        f"{key}: 没有人员具有{stage.name}可签署的角色 {list(roles)}，{stage.name}无人能签"
                    )
                for entry in stage.assignees:
                    if entry.startswith("role:") and entry[5:] not in holders:
                        raise ValueError(f"{key}: 没有人员具有角色 {entry[5:]}")
                    member = self.staff_by_id.get(entry)
                    if member is not None and set(member.roles).isdisjoint(roles):
                        raise ValueError(
                            f"{key}: {member.name}（{entry}）没有{stage.name}所需的角色 {list(roles)}，不能签署"
                        )
                if not self.stage_candidates(chain, index):
                    raise ValueError(f"{key}: {stage.name}的审核人中没有人具有可签署的角色 {list(roles)}")
            self._check_distinct_signers(chain, f"chains.{chain.category}")
            if self.has_principal:
                self._check_distinct_signers(chain.with_principal(), f"chains.{chain.category}（重要稿件）")
            for index, proof in enumerate(chain.proofs if chain.proofreading else ()):
                for entry in proof.assignees:
                    named = entry[5:] if entry.startswith("role:") else entry
                    if (entry.startswith("role:") and named not in ROLES) or (
                        not entry.startswith("role:") and entry not in self.staff_by_id
                    ):
                        raise ValueError(
                            f"chains.{chain.category}.proofs.{index}: 校对人 {entry} 不在 staff 中或角色未知"
                        )
                able = [
                    m
                    for m in self.staff
                    if not set(m.roles).isdisjoint(proof.eligible_roles)
                    and any(
                        e == m.userid or (e.startswith("role:") and e[5:] in m.roles) for e in proof.assignees
                    )
                ]
                if len(able) < proof.needed:
                    raise ValueError(
                        f"chains.{chain.category}.proofs.{index}: {proof.name}（{proof.method}）须 {proof.needed} 人签署，"
                        f"符合条件的校对人只有 {len(able)} 人"
                    )

    def stage_candidates(self, chain: ChainSettings, index: int) -> set[str]:
        """Everyone who could ever decide stage `index` of `chain` (as the submitter's own check
        too, where the chain says "@submitter": any eligible member may submit)."""
        stage, roles = chain.stages[index - 1], chain.eligible_roles(index)
        return {
            m.userid
            for m in self.staff
            if not set(m.roles).isdisjoint(roles)
            and any(
                e == SUBMITTER or e == m.userid or (e.startswith("role:") and e[5:] in m.roles)
                for e in stage.assignees
            )
        }

    def signers_of(self, chain: ChainSettings) -> SignerMatching:
        """A version passes only when each stage is decided by someone who decided no other
        stage of it: the stages need that many different people (a matching of stages to people)."""
        return match_signers({i: self.stage_candidates(chain, i) for i in range(1, len(chain.stages) + 1)})

    def _check_distinct_signers(self, chain: ChainSettings, key: str) -> None:
        """Names the stages that cannot all have different signers, and who could sign them."""
        matching = self.signers_of(chain)
        if not matching.blocked:
            return
        stages = "、".join(chain.stages[i - 1].name for i in sorted(matching.blocked))
        names = "、".join(f"{self.name_of(u)}（{u}）" for u in sorted(matching.people))
        raise ValueError(
            f"{key}: {stages}须由 {len(matching.blocked)} 位不同的人签署（同一人不能签署同一稿件的两个环节），"
            f"可签署这些环节的只有 {names} 共 {len(matching.people)} 人，稿件永远无法通过"
        )

    def production_problems(self) -> list[str]:
        """What stops a deployment against the real WeCom, as "key: reason" lines."""
        if not self.wecom.is_real:
            return []
        problems = self._credential_problems()
        if not self.server.public_url:
            problems.append(
                "server.public_url: 未填写。卡片里的“阅读全文”链接和网页登录都需要它，"
                "填写成员手机能访问的 https 地址，例如 https://shenhe.example.gov.cn"
            )
        elif not self.server.public_url.startswith("https://"):
            problems.append(
                "server.public_url: 生产环境必须使用 https:// 地址（企业微信网页授权要求可信域名）"
            )
        elif PLACEHOLDER.search(urlsplit(self.server.public_url).hostname or ""):
            problems.append("server.public_url: 仍是示例地址，请填写本单位审校助手的 https 域名")
        if not self.web.session_secret:
            problems.append(
                "web.session_secret: 未填写。请设置 SANSHEN_WEB_SESSION_SECRET（至少 32 个字符），"
                "否则重启后所有人需重新登录，多实例之间也无法共享登录"
            )
        elif PLACEHOLDER.search(self.web.session_secret):
            problems.append("web.session_secret: 仍是示例值，请用 openssl rand -hex 32 生成")
        if not self.staff:
            problems.append("staff: 人员名单为空，没有人能投稿、审核或值班")
        elif not any("admin" in m.roles for m in self.staff):
            problems.append("staff: 没有管理员（角色 admin），发送失败、配置问题等告警无人接收")
        return problems

    def _credential_problems(self) -> list[str]:
        """The 接收消息 and app credentials: still the example's, or not shaped like WeCom's."""
        wecom, problems = self.wecom, []
        where = {
            "corp_id": "我的企业 → 企业信息 → 企业ID",
            "secret": "应用管理 → 本应用 → Secret（查看后发送到企业微信）",
            "token": "应用管理 → 本应用 → 接收消息 → 设置API接收 → Token",
            "encoding_aes_key": "应用管理 → 本应用 → 接收消息 → 设置API接收 → EncodingAESKey",
        }
        for key, value in (
            ("corp_id", wecom.corp_id),
            ("secret", wecom.secret),
            ("token", wecom.token),
            ("encoding_aes_key", wecom.encoding_aes_key),
        ):
            if PLACEHOLDER.search(value):
                problems.append(f"wecom.{key}: 仍是示例值，请填写{where[key]}")
            elif key == "corp_id" and not CORP_ID.fullmatch(value):
                problems.append(
                    f"wecom.corp_id: 格式不对，企业ID 形如 ww 加 16 位十六进制字符（{where[key]}）"
                )
            elif key == "secret" and not APP_SECRET.fullmatch(value):
                problems.append(
                    f"wecom.secret: 格式不对，应用 Secret 是 43 位字母、数字、- 或 _（{where[key]}），"
                    "请检查是否多复制了空格或少复制了字符"
                )
        return problems

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _per_staff(self, name: str, build: Callable[[], _Index]) -> _Index:
        """An index of the staff list, built once per list: every callback looks people up,
        and a unit's list has hundreds of them. A copy with another list
        (`model_copy(update={"staff": …})`) builds its own (the cache remembers its list)."""
        cached = self.__dict__.get(name)
        if cached is None or cached[0] is not self.staff:
            cached = self.__dict__[name] = (self.staff, build())
        return cast(_Index, cached[1])

    @property
    def staff_by_id(self) -> StaffDirectory:
        """userid → member (the same dict on every call: callers only read it)."""
        return self._per_staff("_staff_by_id", lambda: StaffDirectory(self.staff))

    @property
    def staff_names(self) -> dict[str, str]:
        """userid → name of everyone on the staff list (the same dict on every call: read only)."""
        return self._per_staff("_staff_names", lambda: {m.userid: m.name for m in self.staff})

    def userid_for(self, given: str) -> str | None:
        """The userid a file names by userid or by a name only one member has; None if nobody."""
        if given in self.staff_by_id:
            return given
        named = [m.userid for m in self.staff if m.name == given]
        return named[0] if len(named) == 1 else None

    def name_of(self, userid: str) -> str:
        """The person's name from [[staff]], or the userid itself for someone unknown."""
        return self.staff_names.get(userid, userid)

    def chain_for(self, category: str, important: bool = False) -> ChainSettings:
        """The chain configured for an information category; a 重要稿件 adds the 主要领导's 审签."""
        for chain in self.chains:
            if chain.category == category:
                return chain.with_principal() if important else chain
        raise KeyError(category)

    @property
    def has_principal(self) -> bool:
        return any("principal" in m.roles for m in self.staff)


@dataclass(frozen=True)
class SignerMatching:
    """Stages matched to different people: `signer` for every stage when that is possible; else
    the `blocked` stages, which only the fewer `people` could sign (Hall's condition fails)."""

    signer: dict[int, str]
    blocked: frozenset[int] = frozenset()
    people: frozenset[str] = frozenset()


def match_signers(candidates: Mapping[int, set[str]]) -> SignerMatching:
    """Match each stage to a different person among its candidates (augmenting paths; a free
    candidate first, in name order, so the plan is what one would pick by hand). When a stage is
    left over, the stages reachable from it by alternating paths and their people show why (König)."""
    holder: dict[str, int] = {}  # person → the stage matched to them

    def augment(stage: int, seen: set[str]) -> bool:
        free = [p for p in sorted(candidates[stage]) if p not in holder]
        if free:
            holder[free[0]] = stage
            return True
        for person in sorted(candidates[stage]):
            if person in seen:
                continue
            seen.add(person)
            if augment(holder[person], seen):
                holder[person] = stage
                return True
        return False

    for stage in sorted(candidates):
        if not augment(stage, set()):
            blocked, people, frontier = {stage}, set(), [stage]
            while frontier:
                for person in candidates[frontier.pop()]:
                    if person not in people:
                        people.add(person)
                        if holder[person] not in blocked:
                            blocked.add(holder[person])
                            frontier.append(holder[person])
            return SignerMatching({}, frozenset(blocked), frozenset(people))
    return SignerMatching({stage: person for person, stage in holder.items()})


def _expected(ctx: Mapping[str, Any]) -> str:
    """pydantic's "'any' or 'all'" as 「any、all」."""
    return "、".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))


# pydantic's error types in the words of the people editing the file (its own texts are English).
VALIDATION_MESSAGES: dict[str, Any] = {
    "missing": "必须填写",
    "extra_forbidden": "不是可用的配置项（拼写有误，或放错了小节？）",
    "literal_error": lambda ctx: f"只能是 {_expected(ctx)} 之一",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数，不能带小数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为带引号的文字",
    "greater_than": lambda ctx: f"必须大于 {ctx['gt']}",
    "greater_than_equal": lambda ctx: f"不能小于 {ctx['ge']}",
    "less_than": lambda ctx: f"必须小于 {ctx['lt']}",
    "less_than_equal": lambda ctx: f"不能大于 {ctx['le']}",
    "string_too_short": lambda ctx: (
        "不能为空" if ctx["min_length"] == 1 else f"至少 {ctx['min_length']} 个字符"
    ),
    "string_too_long": lambda ctx: f"最多 {ctx['max_length']} 个字符",
    "too_short": lambda ctx: f"至少需要 {ctx['min_length']} 项",
    "too_long": lambda ctx: f"最多 {ctx['max_length']} 项",
    "tuple_type": '应为列表，如 ["a", "b"]',
    "list_type": '应为列表，如 ["a", "b"]',
    "model_type": "应为一个小节（[名称] 或 { 键 = 值 }）",
    "dict_type": "应为一个小节（[名称] 或 { 键 = 值 }）",
    "date_parsing": "应写成 YYYY-MM-DD",
    "date_from_datetime_parsing": "应写成 YYYY-MM-DD",
    "date_type": "应写成 YYYY-MM-DD",
    "string_pattern_mismatch": lambda ctx: (
        "应写成 HH:MM（24 小时制，如 08:30）"
        if ctx["pattern"] == HHMM
        else f"格式不符（应匹配 {ctx['pattern']}）"
    ),
}


def validation_message(error: Mapping[str, Any]) -> str:
    """One pydantic error in Chinese: our own validators' texts as they are, pydantic's by type."""
    if error["type"] == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    known = VALIDATION_MESSAGES.get(error["type"])
    if known is None:
        return f"取值无效（{error['msg']}）"
    return known(error.get("ctx") or {}) if callable(known) else known


def _format_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    message = validation_message(first)
    key = ".".join(str(p) for p in first["loc"])
    # a check across keys (of one section, or of several) starts its message with the key it names
    if not key or message.startswith(f"{key}."):
        return message
    return f"{key}: {message}"


def settings_from_mapping(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from parsed TOML data and environment overrides; raise ConfigError."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = (env or {}).get(var)
        if value:
            merged.setdefault(section, {})[key] = value
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a TOML file and the environment into Settings; raise ConfigError naming the key."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: 配置文件不存在") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: TOML 格式错误：{exc}") from None
    calendar = data.get("calendar")
    if isinstance(calendar, dict) and calendar.get("file"):
        data = {**data, "calendar": _with_calendar_file(calendar, file.parent)}
    return settings_from_mapping(data, os.environ if env is None else env)


def _with_calendar_file(calendar: dict[str, Any], folder: Path) -> dict[str, Any]:
    """[calendar] with the lists of its `file` (relative to the config's folder) added."""
    path = folder / str(calendar["file"])
    try:
        extra = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"calendar.file: {path} 不存在") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"calendar.file: {path} TOML 格式错误：{exc}") from None
    unknown = sorted(set(extra) - {"holidays", "workdays"})
    if unknown:
        raise ConfigError(f"calendar.file: {path} 只能有 holidays 和 workdays，不认识 {'、'.join(unknown)}")
    merged = dict(calendar)
    for key in ("holidays", "workdays"):
        values = extra.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"calendar.file: {path} 的 {key} 应为日期字符串列表")
        merged[key] = [*calendar.get(key, []), *values]
    return merged

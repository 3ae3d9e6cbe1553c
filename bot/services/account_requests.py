"""Account lifecycle (钦州 第二十五、二十六条): 开设, 变更 and 注销 asked for by an admin, approved step by
step by the configured roles on cards, applied on the last approval, then filed within five
working days (reminded before the deadline and daily after it until /accounts filed)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot import views
from bot.core.config import AccountSettings
from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import add_working_time, fmt_local, people_with_role
from bot.services.accounts import (
    MAX_REASON,
    account_or_error,
    close_account,
    require_admin,
    same_platform_accounts,
)
from bot.services.review import staff_names
from bot.services.scope import Scope, is_admin
from storage.account_models import CHANGE_FIELD_LABELS, REQUEST_KIND_LABELS, AccountRequest
from storage.accounts_repo import find_account, upsert_account
from storage.audit_repo import append_audit

CHANGE_FIELDS = {word: code for code, word in CHANGE_FIELD_LABELS.items()}
MAX_OPINION = 200


@dataclass(frozen=True)
class RequestDone:
    request: AccountRequest
    message: str


def request_subject(request: AccountRequest) -> str:
    return f"account-request:{request.id}"


def approval_steps(scope: Scope, requester: str) -> list[tuple[str, list[str]]]:
    """The configured roles in order with the people holding each (the requester excluded); a
    role nobody else holds is skipped."""
    steps = []
    for role in scope.settings.freshness.lifecycle_chain:
        people = [u for u in people_with_role(scope.settings, role) if u != requester]
        if people:
            steps.append((role, people))
    return steps


def describe(request: AccountRequest, names: Mapping[str, str]) -> str:
    """What is asked, in one phrase: 开设“X”（微博，负责人：王小明） / 变更“X”的负责人为… / 注销“X”."""
    d = request.details
    if request.kind == "open":
        owners = "、".join(names.get(u, u) for u in d.get("owners", []))
        return f"开设“{request.account}”（{d.get('platform', '')}，负责人：{owners}）"
    if request.kind == "change":
        value = d.get("value")
        shown = "、".join(names.get(u, u) for u in value) if isinstance(value, list) else str(value)
        return f"变更“{request.account}”的{CHANGE_FIELD_LABELS.get(d.get('field', ''), '')}为“{shown}”"
    return f"注销“{request.account}”"


async def ask(scope: Scope, kind: str, name: str, reason: str, details: dict[str, Any]) -> RequestDone:
    """An admin asks to open, change or close an account; with no approval step configured (or
    nobody else to approve) the request is refused rather than applied unseen."""
    require_admin(scope)
    reason = reason.strip()
    if not reason:
        raise UserFacingError(f"{REQUEST_KIND_LABELS[kind]}账号须写明理由（“理由：”后写明）。")
    refuse_if_longer(reason, MAX_REASON, "理由")
    if kind == "open":
        if await find_account(scope.session, name) is not None:
            raise UserFacingError(f"账号“{name}”已存在。")
        unknown = [u for u in details["owners"] if u not in scope.staff]
        if unknown:
            raise UserFacingError(f"负责人 {'、'.join(unknown)} 不在人员名单中。")
        details["same_platform"] = await same_platform_accounts(scope, details["platform"])
    else:
        account = await account_or_error(scope, name)
        if account.status == "closed":
            raise UserFacingError(f"账号“{account.name}”已注销，不能再{REQUEST_KIND_LABELS[kind]}。")
        if kind == "change":
            await _check_change(scope, account.name, details)
    pending = (
        await scope.session.exec(
            select(AccountRequest.id).where(
                AccountRequest.account == name, AccountRequest.status == "pending"
            )
        )
    ).first()
    if pending is not None:
        raise UserFacingError(f"账号“{name}”已有待审批的申请{pending}号，请等审批完成。")
    steps = approval_steps(scope, scope.user)
    if not steps:
        raise UserFacingError(
            "没有可以审批的人：请在配置 [freshness] lifecycle_chain 中设置审批角色（如 leader、principal）并为其配置人员。"
        )
    now = scope.now()
    request = AccountRequest(
        kind=kind, account=name, details=details, reason=reason, requested_by=scope.user, requested_at=now
    )
    scope.session.add(request)
    await scope.session.flush()
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_request",
        details={"request": request.id, "kind": kind, "name": name, "reason": reason, **details},
    )
    _send_cards(scope, request, steps[0][1])
    names = staff_names(scope)
    warn = ""
    if details.get("same_platform"):
        warn = (
            f"注意：本单位在{details['platform']}已有账号“{'、'.join(details['same_platform'])}”，"
            "同一平台原则上只开设1个（钦州 第二十四条（三）），审批人会看到此提示。"
        )
    return RequestDone(
        request,
        (
            f"已提交申请{request.id}号：{describe(request, names)}。理由：{reason}。{warn}"
            f"审批：{' → '.join(views.names(p, names) for _, p in steps)}。"
        ),
    )


async def _check_change(scope: Scope, name: str, details: dict[str, Any]) -> None:
    field, value = details["field"], details["value"]
    if field == "owners":
        unknown = [u for u in value if u not in scope.staff]
        if unknown:
            raise UserFacingError(f"负责人 {'、'.join(unknown)} 不在人员名单中。")
    elif field == "name" and await find_account(scope.session, value) is not None:
        raise UserFacingError(f"账号“{value}”已存在。")
    elif field == "platform":
        details["same_platform"] = [n for n in await same_platform_accounts(scope, value) if n != name]


def _send_cards(scope: Scope, request: AccountRequest, people: list[str]) -> None:
    names = staff_names(scope)
    for person in people:
        task_id = f"sanshen-ar-{request.id}-{request.step}-{secrets.token_hex(4)}"
        card = views.account_request_card(
            request, describe(request, names), names.get(request.requested_by, ""), task_id
        )
        scope.outbox.send_card([person], card, subject=request_subject(request))


async def _load(scope: Scope, number: int) -> AccountRequest:
    request = await scope.session.get(AccountRequest, number, with_for_update=True)
    if request is None:
        raise UserFacingError(f"没有{number}号账号申请。")
    return request


async def decide(
    scope: Scope, number: int, decision: str, opinion: str = "", *, response_code: str = ""
) -> RequestDone:
    """One approval step: its people (not the requester) 同意 or 不同意 (with a reason); the last
    同意 applies the request and starts the filing deadline."""
    request = await _load(scope, number)
    if request.status != "pending":
        raise UserFacingError(
            f"申请{request.id}号已{'通过' if request.status == 'approved' else '退回'}，本次操作未生效。"
        )
    # the steps as configured now (a role emptied since is skipped; with none left, the admins)
    steps = approval_steps(scope, request.requested_by) or [
        ("admin", [a for a in people_with_role(scope.settings, "admin") if a != request.requested_by])
    ]
    request.step = min(request.step, len(steps) - 1)
    role, people = steps[request.step]
    if scope.user not in people:
        scope.log.info("account request %s: %s may not decide step %s", request.id, scope.user, request.step)
        raise UserFacingError(
            f"申请{request.id}号当前由{views.names(people, staff_names(scope))}审批，本次操作未生效。"
        )
    opinion = opinion.strip()
    if decision == "reject" and not opinion:
        raise UserFacingError(f"不同意须写明理由：/accounts reject {request.id} 理由")
    refuse_if_longer(opinion, MAX_OPINION, "意见")
    now = scope.now()
    request.decisions = [
        *request.decisions,
        {
            "step": request.step,
            "role": role,
            "userid": scope.user,
            "decision": decision,
            "opinion": opinion,
            "at": now.isoformat(),
        },
    ]
    label = f"{'已同意' if decision == 'approve' else '不同意'}·{scope.name_of(scope.user)}"[:20]
    await scope.outbox.close_cards(request_subject(request), replace_name=label)
    if response_code:
        scope.outbox.update_card(response_code, replace_name=label)
    names = staff_names(scope)
    what = describe(request, names)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_decide",
        details={
            "request": request.id,
            "step": request.step,
            "role": role,
            "decision": decision,
            "opinion": opinion,
        },
    )
    if decision == "reject":
        request.status, request.decided_at = "rejected", now
        scope.session.add(request)
        scope.outbox.send_text(
            [request.requested_by],
            f"【账号申请】申请{request.id}号（{what}）{scope.name_of(scope.user)}不同意：{opinion}。",
        )
        return RequestDone(request, f"已记录：不同意申请{request.id}号（{what}），已告知申请人。")
    request.step += 1
    if request.step < len(steps):
        scope.session.add(request)
        await scope.session.flush()
        _send_cards(scope, request, steps[request.step][1])
        return RequestDone(
            request,
            f"已同意申请{request.id}号（{what}），已送{views.names(steps[request.step][1], names)}审批。",
        )
    await _apply(scope, request)
    request.status, request.decided_at = "approved", now
    request.filing_due_at = add_working_time(
        now,
        timedelta(days=scope.settings.freshness.filing_working_days),
        scope.settings.tz,
        scope.settings.calendar,
    )
    scope.session.add(request)
    due = fmt_local(request.filing_due_at, scope.settings.tz, "%Y-%m-%d %H:%M")
    scope.outbox.send_text(
        [request.requested_by],
        f"【账号申请】申请{request.id}号（{what}）已审批通过并生效。请于 {due} 前（{scope.settings.freshness.filing_working_days}"
        f"个工作日内）报批审批表、报备基本信息表，完成后发送 /accounts filed {request.id} 报送情况。",
    )
    listed = any(a.name == request.account for a in scope.settings.freshness.accounts)
    note = (
        "该账号列在配置文件 [freshness] accounts 中，请管理员同步修改配置，否则重启后以配置为准。"
        if listed and request.kind == "change"
        else ""
    )
    return RequestDone(
        request, f"已同意申请{request.id}号（{what}），审批完成，已生效；备案期限 {due}。{note}"
    )


async def _apply(scope: Scope, request: AccountRequest) -> None:
    now, d = scope.now(), request.details
    if request.kind == "open":
        if await find_account(scope.session, request.account) is not None:
            raise UserFacingError(f"账号“{request.account}”已存在，申请{request.id}号不能生效。")
        await upsert_account(
            session=scope.session,
            settings=scope.settings,
            at=now,
            data=AccountSettings(name=request.account, platform=d["platform"], owners=tuple(d["owners"])),
        )
    else:
        account = await account_or_error(scope, request.account)
        if account.status == "closed":
            raise UserFacingError(f"账号“{account.name}”已注销，申请{request.id}号不能生效。")
        if request.kind == "close":
            await close_account(scope.session, account, scope.settings, now)
        elif d["field"] == "owners":
            account.owners = "|".join(d["value"])
        elif d["field"] == "name":
            if await find_account(scope.session, d["value"]) is not None:
                raise UserFacingError(f"账号“{d['value']}”已存在，申请{request.id}号不能生效。")
            account.name = d["value"]
        else:
            account.platform = d["value"]
        scope.session.add(account)
    await append_audit(
        session=scope.session,
        at=now,
        actor="system",
        action="account_applied",
        details={"request": request.id, "kind": request.kind, "name": request.account, **d},
    )


async def record_filing(scope: Scope, number: int, note: str) -> RequestDone:
    """The approved request was filed (审批表报批、基本信息表报备): by its requester or an admin."""
    request = await _load(scope, number)
    if request.status != "approved":
        raise UserFacingError(f"申请{request.id}号尚未审批通过，无需备案。")
    if request.filed_at is not None:
        raise UserFacingError(
            f"申请{request.id}号已由{scope.name_of(request.filed_by)}登记备案，本次操作未生效。"
        )
    if scope.user != request.requested_by and not is_admin(scope):
        raise UserFacingError("只有申请人或管理员可以登记备案。")
    note = note.strip()
    if not note:
        raise UserFacingError(
            f"请写明报送情况：/accounts filed {request.id} 报送情况（如：已报市行政审批局）"
        )
    refuse_if_longer(note, MAX_REASON, "报送情况")
    now = scope.now()
    request.filed_at, request.filed_by, request.filing_note = now, scope.user, note
    scope.session.add(request)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_filed",
        details={"request": request.id, "note": note},
    )
    late = "（已超期）" if request.filing_due_at is not None and now > request.filing_due_at else ""
    return RequestDone(request, f"已记录：申请{request.id}号备案完成{late}（{note}）。")


async def open_requests(scope: Scope) -> list[AccountRequest]:
    """Requests still waiting for approval or for filing, oldest first."""
    rows = await scope.session.exec(
        select(AccountRequest)
        .where(
            (col(AccountRequest.status) == "pending")
            | ((col(AccountRequest.status) == "approved") & col(AccountRequest.filed_at).is_(None))
        )
        .order_by(col(AccountRequest.id))
    )
    return list(rows.all())

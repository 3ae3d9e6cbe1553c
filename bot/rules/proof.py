"""The 三校 rules as pure functions: who may sign a 校 step, and when it is complete.

Sources: Qinzhou 附件 三(二) and 四(二): 一校 by 采编人员 (读校: one reads the original aloud, one
checks the proof), 二校 by 科室负责人 (默读), 三校 after the leader's 签发, before publishing (读校);
校对人 sign with 校次 and time. A 校 never replaces a 审: it follows the 审 stage it is configured after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from bot.core.config import ProofSettings, StaffMember, members_with_role
from bot.rules.review import is_eligible


class ProofRefusal(Enum):
    NOT_IN_PROOF = "not_in_proof"
    NOT_PROOFREADER = "not_proofreader"
    ALREADY_SIGNED = "already_signed"


def proofreaders(proof: ProofSettings, staff: Mapping[str, StaffMember]) -> tuple[str, ...]:
    """The people who may sign this 校 step, in config order: named or by role, and eligible."""
    result: dict[str, None] = {}  # ordered, and a quick "already in"
    for entry in proof.assignees:
        candidates = members_with_role(staff, entry[5:]) if entry.startswith("role:") else [entry]
        for userid in candidates:
            if userid not in result and is_eligible(staff.get(userid), proof.eligible_roles):
                result[userid] = None
    return tuple(result)


def check_may_proof(
    proof: ProofSettings | None,
    *,
    proofreader: str,
    staff: Mapping[str, StaffMember],
    signed_by: Iterable[str],
    people: Iterable[str] | None = None,
) -> ProofRefusal | None:
    """Why `proofreader` may not sign the open 校 step now, or None. `proof` is None when no
    校 step is open; `signed_by` are those who signed it already (this version and round)."""
    if proof is None:
        return ProofRefusal.NOT_IN_PROOF
    if proofreader in set(signed_by):
        return ProofRefusal.ALREADY_SIGNED
    allowed = tuple(people) if people is not None else proofreaders(proof, staff)
    if proofreader not in allowed or not is_eligible(staff.get(proofreader), proof.eligible_roles):
        return ProofRefusal.NOT_PROOFREADER
    return None


def proof_complete(proof: ProofSettings, signed_by: Iterable[str]) -> bool:
    """读校 is done when two different people signed, 默读 when one did (or as configured)."""
    return len(set(signed_by)) >= proof.needed

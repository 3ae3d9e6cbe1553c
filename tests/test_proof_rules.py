"""The pure 三校 rules: who may sign a 校 step, who is refused and why, and when it is complete."""

from __future__ import annotations

from bot.core.config import ProofSettings, StaffMember
from bot.rules.proof import ProofRefusal, check_may_proof, proof_complete, proofreaders

STAFF = {
    m.userid: m
    for m in (
        StaffMember(userid="editor", name="编辑", roles=("collector",)),
        StaffMember(userid="editor2", name="编辑二", roles=("collector",)),
        StaffMember(userid="chief", name="科长", roles=("reviewer", "collector")),
        StaffMember(userid="boss", name="领导", roles=("leader",)),
    )
}
FIRST = ProofSettings(
    name="一校", after_stage=1, assignees=("role:collector", "boss"), eligible_roles=("collector",)
)


def test_proofreaders_are_the_eligible_named_people_once_each_in_config_order() -> None:
    assert proofreaders(FIRST, STAFF) == ("editor", "editor2", "chief"), (
        "the leader named in 一校 lacks the 采编 role; nobody is listed twice"
    )
    twice = FIRST.model_copy(update={"assignees": ("chief", "role:collector")})
    assert proofreaders(twice, STAFF) == ("chief", "editor", "editor2")
    reviewers_only = FIRST.model_copy(update={"assignees": ("role:leader",)})
    assert proofreaders(reviewers_only, STAFF) == ()


def test_who_may_sign_and_why_not() -> None:
    def may(
        who: str, signed: tuple[str, ...] = (), people: tuple[str, ...] | None = None
    ) -> ProofRefusal | None:
        return check_may_proof(FIRST, proofreader=who, staff=STAFF, signed_by=signed, people=people)

    assert may("editor") is None
    assert check_may_proof(None, proofreader="editor", staff=STAFF, signed_by=()) is ProofRefusal.NOT_IN_PROOF
    assert may("editor", signed=("editor",)) is ProofRefusal.ALREADY_SIGNED
    assert may("boss") is ProofRefusal.NOT_PROOFREADER, "named, but without the step's role"
    assert may("editor2", people=("editor",)) is ProofRefusal.NOT_PROOFREADER, (
        "eligible, but not among the step's people (after a 转校)"
    )
    assert may("boss", people=("boss",)) is ProofRefusal.NOT_PROOFREADER, "listed, still not eligible"


def test_a_step_is_complete_when_enough_different_people_signed() -> None:
    two = FIRST.model_copy(update={"proofreaders": 2})
    assert not proof_complete(two, ["editor", "editor"])
    assert proof_complete(two, ["editor", "chief"])

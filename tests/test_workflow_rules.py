"""The pure 三审 rules: assignees, separation of duties, any-of and all-of outcomes."""

from __future__ import annotations

from bot.core.config import ChainSettings, StaffMember, StageSettings
from bot.rules.review import (
    PastDecision,
    Refusal,
    check_may_decide,
    expand_assignees,
    outcome_after,
)

STAFF = {
    m.userid: m
    for m in (
        StaffMember(userid="editor", name="编辑", roles=("collector",)),
        StaffMember(userid="editor2", name="编辑二", roles=("collector",)),
        StaffMember(userid="chief", name="科长", roles=("reviewer", "leader")),
        StaffMember(userid="boss", name="领导", roles=("leader",)),
    )
}
CHAIN = ChainSettings(
    category="issued",
    stages=(
        StageSettings(name="一审", assignees=("@submitter",)),
        StageSettings(name="二审", assignees=("role:reviewer",)),
        StageSettings(name="三审", assignees=("role:leader",)),
    ),
)


def may(
    reviewer: str,
    stage: int,
    decisions: list[PastDecision],
    *,
    acted: int | None = None,
    status: str = "in_review",
    chain: ChainSettings = CHAIN,
) -> Refusal | None:
    return check_may_decide(
        chain,
        status=status,
        current_stage=stage,
        acted_stage=acted,
        reviewer=reviewer,
        submitter="editor",
        staff=STAFF,
        decisions=decisions,
    )


def test_workflow_submitter_decides_first_stage_only_where_chain_says_so() -> None:
    assert may("editor", 1, []) is None
    assert may("editor2", 1, []) is Refusal.NOT_ASSIGNEE
    no_self_check = ChainSettings(
        category="issued",
        stages=(StageSettings(name="一审", assignees=("role:collector",)), *CHAIN.stages[1:]),
    )
    assert may("editor", 1, [], chain=no_self_check) is Refusal.NOT_ASSIGNEE
    assert may("editor2", 1, [], chain=no_self_check) is None


def test_workflow_submitter_never_decides_later_stages() -> None:
    chain = ChainSettings(
        category="issued",
        stages=(CHAIN.stages[0], StageSettings(name="二审", assignees=("role:collector",)), CHAIN.stages[2]),
    )
    assert (
        may("editor", 2, [PastDecision(1, "editor", "approve")], chain=chain) is Refusal.SUBMITTER_LATER_STAGE
    )  # the more specific reason wins
    assert (
        may("editor", 2, [PastDecision(1, "editor2", "approve")], chain=chain)
        is Refusal.SUBMITTER_LATER_STAGE
    )


def test_workflow_person_who_decided_one_stage_is_excluded_from_the_next() -> None:
    done = [PastDecision(1, "editor", "approve"), PastDecision(2, "chief", "approve")]
    assert may("chief", 3, done) is Refusal.DECIDED_OTHER_STAGE
    assert may("boss", 3, done) is None
    assignees = expand_assignees(
        CHAIN.stages[2], stage=3, submitter="editor", staff=STAFF, decided_elsewhere={"chief"}
    )
    assert assignees == ("boss",)


def test_workflow_stale_or_closed_drafts_refuse() -> None:
    assert may("chief", 2, [PastDecision(1, "editor", "approve")], acted=1) is Refusal.STALE
    assert may("chief", 2, [], status="approved") is Refusal.NOT_IN_REVIEW
    assert may("chief", 2, [PastDecision(2, "chief", "approve")]) is Refusal.ALREADY_DECIDED


def test_workflow_any_of_advances_all_of_waits_for_everyone() -> None:
    any_of = outcome_after(
        CHAIN,
        stage=2,
        decision="approve",
        stage_decisions=[PastDecision(2, "chief", "approve")],
        assignees=("chief",),
    )
    assert (any_of.kind, any_of.next_stage) == ("advance", 3)
    cosign = ChainSettings(
        category="issued",
        stages=(
            CHAIN.stages[0],
            StageSettings(name="二审", assignees=("chief", "boss"), mode="all"),
            StageSettings(name="三审", assignees=("editor2",)),
        ),
    )
    first = outcome_after(
        cosign,
        stage=2,
        decision="approve",
        stage_decisions=[PastDecision(2, "chief", "approve")],
        assignees=("chief", "boss"),
    )
    assert first.kind == "wait"
    both = [PastDecision(2, "chief", "approve"), PastDecision(2, "boss", "approve")]
    assert (
        outcome_after(
            cosign, stage=2, decision="approve", stage_decisions=both, assignees=("chief", "boss")
        ).kind
        == "advance"
    )


def test_workflow_last_stage_approves_and_any_reject_returns() -> None:
    assert (
        outcome_after(CHAIN, stage=3, decision="approve", stage_decisions=[], assignees=("boss",)).kind
        == "approved"
    )
    assert (
        outcome_after(CHAIN, stage=1, decision="reject", stage_decisions=[], assignees=("editor",)).kind
        == "rejected"
    )


def test_eligibility_no_assignee_delegate_or_transfer_without_the_stage_role() -> None:
    from bot.rules.review import apply_delegations, eligible_roles, signing_roles

    mixed = StageSettings(name="三审", assignees=("role:leader", "editor2"))
    assert expand_assignees(mixed, stage=3, submitter="editor", staff=STAFF) == ("chief", "boss"), (
        "a collector named in 三审 is never an assignee"
    )
    assert eligible_roles(CHAIN, 2) == ("reviewer",)
    # A transfer from before the rule named a collector for 二审: still refused.
    refusal = check_may_decide(
        CHAIN,
        status="in_review",
        current_stage=2,
        acted_stage=None,
        reviewer="editor2",
        submitter="editor",
        staff=STAFF,
        decisions=[PastDecision(1, "editor", "approve")],
        assignees=("editor2",),
    )
    assert refusal is Refusal.NOT_ELIGIBLE
    kept = apply_delegations(
        ("boss",),
        {"boss": "editor2"},
        submitter="editor",
        stage=3,
        eligible=lambda u: "leader" in STAFF[u].roles,
    )
    assert kept == ("boss",), "an ineligible delegate does not stand in"
    assert signing_roles(STAFF["chief"], [CHAIN]) == ["reviewer", "leader"]


def test_signing_roles_are_the_roles_a_member_signs_some_stage_by() -> None:
    from bot.rules.review import signing_roles

    assert signing_roles(None, [CHAIN]) == [], "someone not on the staff list signs nothing"
    assert signing_roles(STAFF["editor"], [CHAIN]) == ["collector"], "一审's role counts too"


def test_a_submitter_stands_in_as_delegate_at_stage_one_only() -> None:
    from bot.rules.review import apply_delegations

    def stand_in(stage: int) -> tuple[str, ...]:
        return apply_delegations(
            ("chief",), {"chief": "editor"}, submitter="editor", stage=stage, eligible=lambda userid: True
        )

    assert stand_in(1) == ("editor",), "at 一审 the submitter may stand in for an away reviewer"
    assert stand_in(2) == ("chief",), "at 二审 the submitter may not: the away reviewer stays"
    assert stand_in(3) == ("chief",)


def test_role_assignees_come_in_staff_order_once_each_from_a_directory_as_from_a_dict() -> None:
    from bot.core.config import StaffDirectory

    directory = StaffDirectory(STAFF.values())
    assert directory.with_role("leader") == ("chief", "boss")
    assert directory.with_role("publisher") == ()
    both = StageSettings(name="三审", assignees=("role:leader", "boss", "role:reviewer", "role:leader"))
    for staff in (STAFF, directory):
        assert expand_assignees(both, stage=3, submitter="editor", staff=staff) == ("chief", "boss"), (
            "each person once, in the order the chain first names them"
        )

"""SQLModel tables: staff, drafts and versions, decisions, cards, conversations, dedupe, outbox, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.columns import json_column, utc_column


class Staff(SQLModel, table=True):
    """A person known to the bot (synchronised from config at start-up)."""

    userid: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    roles: str = Field(default="", max_length=200)  # comma-separated role codes
    active: bool = True


class Draft(SQLModel, table=True):
    """A 稿件 under review; its text lives in DraftVersion rows."""

    # The 催办 sweep reads only drafts in review for longer than the reminder threshold.
    __table_args__ = (Index("ix_draft_pending", "status", "stage_entered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    category: str = Field(max_length=16)  # issued | reprint | reported
    source_kind: str = Field(max_length=16)  # own | reprint | external
    source_note: str = Field(default="", max_length=200)
    disclosure: str = Field(max_length=16)  # active | on_request
    platforms: str = Field(max_length=64)  # comma-separated: website,newmedia,other
    submitter_userid: str = Field(max_length=64, index=True)
    submitter_name: str = Field(max_length=64)
    # collecting | in_review | rejected | approved | withdrawn | classified (涉密不得公开: final)
    status: str = Field(max_length=16)  # indexed first in ix_draft_pending
    version: int = 1
    stage: int = 1  # current stage (1-based) while in_review
    # 重要稿件 / 重大信息: the 主要领导 signs after 三审 (审签)
    important: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # review: the stage's 审 is open; proof: its 审 is done and the 校 step after it is open
    step: str = Field(default="review", max_length=8, sa_column_kwargs={"server_default": "review"})
    round: int = 1  # +1 on every 退回 to an earlier stage (decisions of a round stay on record)
    # 智能识错 of the current version (its findings are in DraftVersion.findings): what every card shows
    findings: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    severe_findings: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    stage_entered_at: datetime = utc_column()
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    approved_at: datetime | None = utc_column(nullable=True)
    # a 错别字 纠错's short chain: the 审 stages its versions pass ("1,3"); "" = the whole chain
    correction_stages: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})


class DraftVersion(SQLModel, table=True):
    """One version of a draft's text; a revision adds a row, nothing is overwritten."""

    __table_args__ = (UniqueConstraint("draft_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))  # plain text: previews, diffs, search
    # The body as it will be published: sanitised HTML (a converted .docx, or the typed text).
    body_html: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    source: str = Field(
        default="text", max_length=8, sa_column_kwargs={"server_default": "text"}
    )  # text | docx
    # sha256 over the body, its HTML and every file's hash: what the audit chain records as reviewed.
    content_sha256: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # 智能识错 of this body when it was submitted, as its reviewers saw it (bot.proofread Findings)
    findings: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=64)


class VersionFile(SQLModel, table=True):
    """A file of one draft version: its .docx original, a picture in its body, or an attachment.

    The bytes live in the content-addressed file store under `sha256`; a version never changes.
    """

    __table_args__ = (UniqueConstraint("draft_id", "version", "role", "sha256", name="uq_version_file"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    role: str = Field(max_length=16)  # original | image | attachment
    sha256: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int


class DraftRead(SQLModel, table=True):
    """The newest version of a draft each person has opened on its page (for "changed since")."""

    draft_id: int = Field(foreign_key="draft.id", primary_key=True)
    userid: str = Field(max_length=64, primary_key=True)
    version: int
    at: datetime = utc_column()


class Upload(SQLModel, table=True):
    """A file someone uploaded on the 投稿 page, before (or without) submitting it.

    A submission may only use files its submitter uploaded: the preview carries hashes, and
    this table is what makes a guessed hash worthless.
    """

    __table_args__ = (UniqueConstraint("userid", "sha256", name="uq_upload"),)

    id: int | None = Field(default=None, primary_key=True)
    userid: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    kind: str = Field(max_length=8)  # docx | pdf | xlsx | png | jpeg
    name: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    created_at: datetime = utc_column()


class StageDecision(SQLModel, table=True):
    """A reviewer's 同意/不同意 at one stage of one version (the record inspectors read).

    `slot` is "*" for an any-of (或签) stage and the reviewer for an all-of (会签) stage, so the
    database itself guarantees one decision per any-of stage, and that nobody decides twice.
    """

    __table_args__ = (
        UniqueConstraint("draft_id", "version", "round", "stage", "slot", name="uq_decision_slot"),
        UniqueConstraint("draft_id", "version", "round", "reviewer_userid", name="uq_decision_reviewer"),
    )

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id")  # indexed first in uq_decision_slot
    version: int
    round: int = 1
    stage: int
    stage_name: str = Field(max_length=32)
    slot: str = Field(max_length=64)
    reviewer_userid: str = Field(max_length=64)
    reviewer_name: str = Field(max_length=64)
    decision: str = Field(max_length=8)  # approve | reject
    opinion: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decided_at: datetime = utc_column(index=True)
    via: str = Field(max_length=16)  # card | command | page
    # At the 保密审查 stage: clear (不涉密, with 同意) or classified (涉密不得公开, a 不同意 that ends it).
    secrecy: str = Field(default="", max_length=12, sa_column_kwargs={"server_default": ""})
    # The audit entry that records this decision (its details carry this row's digest).
    audit_id: int | None = Field(default=None)
    # The stage's checklist items the reviewer ticked on the page, in the checklist's words.
    checklist: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    on_behalf_of: str = Field(default="", max_length=64)  # the away reviewer a delegate stood in for
    # 智能识错: the reviewer's mark on each severe finding of the version when approving ("n" → mark)
    finding_marks: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )


class FindingMark(SQLModel, table=True):
    """A person's mark on one 智能识错 finding of a version: verified (已核实), fixed (已修改) or
    false_alarm (误报); a later mark by the same person replaces theirs."""

    __table_args__ = (UniqueConstraint("draft_id", "version", "number", "userid", name="uq_finding_mark"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    number: int  # the finding's number in DraftVersion.findings (from 1)
    userid: str = Field(max_length=64)
    mark: str = Field(max_length=12)  # verified | fixed | false_alarm
    at: datetime = utc_column()


class LearnedAllow(SQLModel, table=True):
    """A term a reviewer marked 误报: never flagged again in this unit (the learned allow-list)."""

    term: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=12)
    draft_id: int
    userid: str = Field(max_length=64)
    at: datetime = utc_column()


class ProofRecord(SQLModel, table=True):
    """One proofreader's signature on a 校 step (校次, name, time, result): the 校对人 signs the
    proof "并注明校次、时间" (Qinzhou 附件 四(二)); 读校 needs two of these, 默读 one."""

    __table_args__ = (
        UniqueConstraint(
            "draft_id", "version", "round", "after_stage", "proofreader_userid", name="uq_proof_reader"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    round: int = 1
    after_stage: int  # the 审 stage this 校 follows
    proof_name: str = Field(max_length=16)  # 一校 | 二校 | 三校
    method: str = Field(max_length=8)  # 读校 | 默读
    proofreader_userid: str = Field(max_length=64)
    proofreader_name: str = Field(max_length=64)
    result: str = Field(max_length=8)  # passed | changed
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # the corrections
    via: str = Field(max_length=16)  # card | command | page
    at: datetime = utc_column(index=True)
    audit_id: int | None = Field(default=None)  # the audit entry that records this signature


class ApprovalCard(SQLModel, table=True):
    """A button_interaction card sent for one stage (or the 校 step after it) of one version."""

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(max_length=128, unique=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    round: int = 1
    stage: int
    step: str = Field(default="review", max_length=8, sa_column_kwargs={"server_default": "review"})
    recipients: str = Field(max_length=1000)  # "a|b"
    response_code: str | None = Field(default=None, max_length=200)  # from message/send
    closed: bool = False
    created_at: datetime = utc_column()


class CardHandle(SQLModel, table=True):
    """Any other sent button card, kept so it can be greyed for its holders later.

    `subject` names what the card is about ("incident:7"); the sender stores the response_code
    that message/send returned (single use, 72 h), and `closed` marks a card greyed (or to be greyed as soon as it is sent).
    """

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(max_length=128, unique=True)
    subject: str = Field(max_length=64, index=True)
    response_code: str | None = Field(default=None, max_length=200)
    closed: bool = False
    closed_label: str = Field(default="", max_length=64)  # the replace_name it was greyed with
    created_at: datetime = utc_column()


class StageAssignment(SQLModel, table=True):
    """A 转审 or 加签 (联审): the current stage of one version and round assigned to named people;
    `mode` "all" makes it a 会签 that every one of them must approve."""

    __table_args__ = (Index("ix_assignment_stage", "draft_id", "version", "round", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id")
    version: int
    round: int
    stage: int
    assignees: str = Field(max_length=1000)  # "a|b"
    mode: str = Field(default="", max_length=8, sa_column_kwargs={"server_default": ""})  # "": the chain's
    reason: str = Field(default="", max_length=500)
    by: str = Field(max_length=64)
    at: datetime = utc_column()


class Delegation(SQLModel, table=True):
    """A reviewer away until a date; their stage work goes to the delegate meanwhile."""

    userid: str = Field(primary_key=True, max_length=64)
    delegate: str = Field(max_length=64)
    until: datetime = utc_column()  # exclusive end, UTC
    created_at: datetime = utc_column()


class DraftWatcher(SQLModel, table=True):
    """A person copied (抄送) on a draft: told now and again when it is approved."""

    draft_id: int = Field(foreign_key="draft.id", primary_key=True)
    userid: str = Field(primary_key=True, max_length=64)
    added_by: str = Field(max_length=64)
    at: datetime = utc_column()


class Conversation(SQLModel, table=True):
    """What the bot expects next from a person (a draft body being collected, a reject reason)."""

    userid: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)  # collect_body | reject_reason
    data: dict[str, Any] = json_column()
    created_at: datetime = utc_column()


class ProcessedCallback(SQLModel, table=True):
    """Dedupe key of every callback applied; a re-sent callback finds its key and does nothing."""

    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = utc_column(index=True)


class OutboxMessage(SQLModel, table=True):
    """A WeCom API call queued in the transaction that caused it; the sender delivers it later."""

    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = utc_column()
    not_before: datetime = utc_column()
    # send | update_card | webhook | export
    op: str = Field(max_length=16)
    recipients: str = Field(default="", max_length=1000)  # "a|b"; paced per member
    payload: dict[str, Any] = json_column()
    card_id: int | None = Field(default=None, index=True)
    # pending | sent | failed (a code no retry can cure) | expired (lifetime over) | discarded
    status: str = Field(default="pending", max_length=12)
    attempts: int = 0
    claimed_until: datetime | None = utc_column(nullable=True)
    # fencing token of the current claim: only its holder may send, renew or mark the row
    claim_token: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    last_error: str = Field(default="", max_length=500)
    sent_at: datetime | None = utc_column(nullable=True)
    # first API attempt; message/send's duplicate check is decided then and kept for every retry
    first_try_at: datetime | None = utc_column(nullable=True)
    dup_check: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    body_hash: str = Field(default="", max_length=64, index=True, sa_column_kwargs={"server_default": ""})
    msgid: str = Field(default="", max_length=128, sa_column_kwargs={"server_default": ""})  # for recall
    retried_at: datetime | None = utc_column(nullable=True)  # `sanshen outbox --retry`: lifetime restarts


class DeliveryLog(SQLModel, table=True):
    """When a message reached a member; the sender paces by it (WeCom drops past 30/min)."""

    __table_args__ = (Index("ix_delivery_user_time", "userid", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    userid: str = Field(max_length=64)
    sent_at: datetime = utc_column()


class AuditEntry(SQLModel, table=True):
    """Append-only audit log; each entry is chained to the previous one by SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    draft_id: int | None = Field(default=None, index=True)
    details: dict[str, Any] = json_column()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """The single row that serialises audit appends (locked FOR UPDATE on PostgreSQL)."""

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A witness of the chain's head at a moment (daily): also written to a file and sent to the
    admins, and signed with SANSHEN_AUDIT_KEY when set, so cutting the tail is noticed."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column()
    entry_id: int
    entry_hash: str = Field(max_length=64)
    mac: str = Field(default="", max_length=64)


class Occasion(SQLModel, table=True):
    """One reminder/warning/ping occasion, claimed once across restarts and instances.

    A sweep inserts (kind, subject, occasion) in the same transaction as the messages it
    queues; the unique key makes a second instance's (or a re-run's) insert a no-op.
    """

    __table_args__ = (UniqueConstraint("kind", "subject", "occasion", name="uq_occasion"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=100)
    occasion: str = Field(max_length=64)
    claimed_at: datetime = utc_column()
    claimed_by: str = Field(default="", max_length=64)


class ErrorCase(SQLModel, table=True):
    """错情: an error found in a published version (钦州 五(三) 错情评估; 湛江 第十七条 补救措施),
    recorded with its kind, what was done (纠错 or 撤稿) and everyone who signed that version, so
    that 责任倒查 is one query."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int  # the version that went out with the error
    kind: str = Field(max_length=16)  # typo | wording | political | secret | link | other
    description: str = Field(max_length=500)
    action: str = Field(max_length=16)  # correct | retract
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = utc_column(index=True)
    # who passed the version: [{"stage": "二审", "userid": "…", "name": "…", "at": "…"}], 审 and 校
    signers: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

"""Every user-facing Chinese text and card payload; pure builders, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.config import CATEGORY_LABELS, Settings
from bot.core.roles import role_names
from bot.rules.calendar import fmt_local, last_day_of
from bot.rules.finding_marks import MARK_LABELS, marks_text, numbers_text
from bot.rules.review import Refusal
from bot.wecom.dispatcher import CommandSpec, command_of_menu_key, pack_action
from storage.account_models import REQUEST_KIND_LABELS, Account, AccountPost, AccountRequest, Recheck
from storage.duty_models import Incident, ReadingTask
from storage.models import AuditEntry, Draft, ErrorCase

NOT_STAFF = "您不在本单位审校助手的人员名单中，暂时无法使用。如需开通，请联系管理员。"
APOLOGY = "抱歉，处理您的消息时出现内部错误，已记录日志。请稍后重试，或联系管理员。"
TEXT_HINT = "没有识别到命令。发送 /help（帮助）查看可用命令。"
UNKNOWN_CARD = "这张卡片已无法识别（可能来自旧版本），请发送 /help 查看命令。"
UNSUPPORTED_MESSAGE = "暂不支持这类消息。投稿请发送文字：/submit 标题，正文写在下一行。"

SOURCE_LABELS = {"own": "本机关制发", "reprint": "转载", "external": "非本机关"}
DISCLOSURE_LABELS = {"active": "主动公开", "on_request": "依申请公开"}
PLATFORM_LABELS = {"website": "政府网站", "newmedia": "政务新媒体", "other": "其他"}
STATUS_LABELS = {
    "in_review": "审核中",
    "rejected": "已退回",
    "approved": "已通过（可发布）",
    "withdrawn": "已撤回",
    "classified": "涉密，不得公开",
    "retracted": "已撤稿",
}
SECRECY_LABELS = {"clear": "不涉密", "classified": "涉密，不得公开"}

# What a reviewer must check at each stage, condensed from the regulations:
# 一审 Qinzhou 附件 四(一)1; 二审 Zhanjiang 第八条 (ten items) and Qinzhou 二审(4); 三审 Qinzhou 四(一)3.
CHECKLISTS: dict[int, tuple[str, ...]] = {
    1: (
        "文种、体例、格式规范，标题切题，附件齐全",
        "领导人姓名职务、国名地名、机构名称准确",
        "不含违法违规内容，不涉及国家秘密、工作秘密",
        "转载内容来源权威，无版权争议",
    ),
    2: (
        "不涉及国家秘密、工作秘密、商业秘密、个人隐私",
        "符合国家政策方针和法律法规，无政治性表述错误",
        "无错别字、表述不规范、语病；数据与术语准确",
        "不危害他人，不属敏感问题，不会引发负面舆情",
        "信息真实准确，有利于本地本部门宣传和发展",
    ),
    3: (
        "标题、版式、文字再审核；前后提法一致",
        "专业术语、数据、涉政敏感表述规范准确",
        "符合路线方针政策；需会签的意见一致",
        "重要稿件报单位主要领导审签",
    ),
    # 审签 of a 重要稿件 by the 主要领导 (Zhanjiang 第六条(一), Qinzhou 附件 四(一) 末段).
    4: (
        "政治方向、重大政策表述和口径准确",
        "涉及重大决策部署、重大突发事件的信息已按程序报批",
        "发布时机和影响已评估，可以公开",
    ),
}


def local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%m-%d %H:%M")


def names(userids: Iterable[str], staff_names: dict[str, str]) -> str:
    return "、".join(staff_names.get(u, u) for u in userids) or "（无）"


def draft_label(draft: Draft) -> str:
    return f"稿件{draft.id}号《{draft.title}》"


def platforms_label(platforms: str) -> str:
    return "，".join(PLATFORM_LABELS.get(p, p) for p in platforms.split(",") if p)


def source_label(draft: Draft) -> str:
    label = SOURCE_LABELS.get(draft.source_kind, draft.source_kind)
    return f"{label}（{draft.source_note}）" if draft.source_note else label


def unknown_command(word: str, suggestions: Sequence[str]) -> str:
    hint = ""
    if suggestions:
        hint = "您是不是要找：" + "、".join(f"/{s}" for s in suggestions) + "？"
    return f"没有 /{word} 这个命令。{hint}发送 /help 查看全部命令。"


def not_permitted(spec: CommandSpec) -> str:
    return f"您没有使用 /{spec.name} 的权限（需要：{role_names(spec.roles)}）。"


def usage(spec_usage: str) -> str:
    return f"格式不对。用法：{spec_usage}"


# (id of a command table, roles) → (that table, its /help text for those roles).
_HELP_TEXTS: dict[tuple[int, tuple[str, ...]], tuple[Sequence[CommandSpec], str]] = {}


def help_text(specs: Sequence[CommandSpec], roles: Sequence[str]) -> str:
    """One short line per command this person may use; `/help 命令` gives the full usage.

    Made once per command table (a tuple, never changed) and set of roles, then looked up: a
    /help costs a dict lookup, not 25 µs of string work."""
    key = (id(specs), tuple(roles))
    kept = _HELP_TEXTS.get(key)
    if kept is not None and kept[0] is specs:
        return kept[1]
    text = _help_lines(specs, roles)
    if len(_HELP_TEXTS) >= 256:  # tables of apps long gone (tests build many)
        _HELP_TEXTS.clear()
    _HELP_TEXTS[key] = (specs, text)
    return text


def _help_lines(specs: Sequence[CommandSpec], roles: Sequence[str]) -> str:
    lines = ["审校助手可用命令（发送“/help 命令”查看用法）："]
    for spec in specs:
        if spec.roles and not (set(spec.roles) & set(roles) or "admin" in roles):
            continue
        alias = f"（{spec.aliases[0]}）" if spec.aliases else ""
        lines.append(f"/{spec.name}{alias} {spec.summary.split('（')[0].split('；')[0]}")
    lines.append("审核卡片上的按钮同样有效；卡片过期时可用 /approve、/reject。")
    return "\n".join(lines)


def command_help(spec: CommandSpec) -> str:
    alias = f"\n别名：{'、'.join(spec.aliases)}" if spec.aliases else ""
    return f"/{spec.name}：{spec.summary}\n用法：{spec.usage or '/' + spec.name}{alias}"


def submit_received(draft: Draft, stage_name: str, assignee_names: str) -> str:
    return (
        f"已收到投稿：{draft_label(draft)}\n"
        f"类别：{CATEGORY_LABELS[draft.category]}；来源：{source_label(draft)}；"
        f"公开：{DISCLOSURE_LABELS[draft.disclosure]}；平台：{platforms_label(draft.platforms)}\n"
        f"下一步：{stage_name}（{assignee_names}）"
    )


def collecting_started(title: str) -> str:
    return (
        f"已开始投稿《{title}》。请继续发送正文（可分多条），"
        "全部发完后发送 /done（完成）提交，发送 /cancel（取消）放弃。"
    )


def collecting_appended(parts: int, size: int) -> str:
    return f"已收到第{parts}段，共{size}字。继续发送，或发送 /done 提交。"


def full_text(draft: Draft, body: str, stage_name: str) -> str:
    return f"【{stage_name}·待审正文】{draft_label(draft)} 第{draft.version}版\n\n{body}"


IMPORTANT_MARK = "\n【重要稿件】三审后须主要领导审签"


def no_principal() -> str:
    return "本单位人员名单中没有主要领导（角色 principal），重要稿件无法送审签。请联系管理员在配置中指定。"


def checklist_for(stage: int) -> tuple[str, ...]:
    """The items a reviewer checks at this stage (stages past 三审 use the 三审 list)."""
    return CHECKLISTS.get(stage, CHECKLISTS[min(stage, 4)])


PREVIEW_CHARS = 300


def _opening(body: str) -> tuple[int, str]:
    """The body's length and its first PREVIEW_CHARS characters, whitespace folded."""
    text = " ".join(body.split())
    return len(text), text[:PREVIEW_CHARS] + ("……" if len(text) > PREVIEW_CHARS else "")


def stage_preview(draft: Draft, body: str, stage_name: str) -> str:
    """The short text that goes with a card when the draft has a page: the opening lines."""
    length, cut = _opening(body)
    return (
        f"【{stage_name}·待审】{draft_label(draft)} 第{draft.version}版（全文 {length} 字）\n"
        f"{cut}\n点卡片“阅读全文”查看正文、图片和附件，并可在页面上审核。"
    )


def page_stale(draft: Draft) -> str:
    return f"{draft_label(draft)}在您打开页面后已有变化（新版本或已进入下一环节），请刷新页面后再审核。"


FINDING_KINDS = {
    "typo": "错别字",
    "wording": "规范表述",
    "leader": "领导人姓名职务",
    "privacy": "隐私",
    "format": "标点与格式",
    "link": "链接与广告",
}
FINDING_SEVERITIES = {"severe": "严重", "warn": "疑似", "info": "提示"}
FINDINGS_SHOWN = 30  # in one /check answer; the draft page shows every one


def finding_tag(severity: str, kind: str) -> str:
    """How bad and what kind, as every list of findings says it: 「严重·隐私」."""
    return f"{FINDING_SEVERITIES.get(severity, severity)}·{FINDING_KINDS.get(kind, kind)}"


def findings_summary(draft: Draft) -> str:
    """The card's line: 「智能识错：3 处疑似问题（1 处严重）」."""
    if not draft.findings:
        return "智能识错：未发现疑似问题"
    severe = f"（{draft.severe_findings} 处严重）" if draft.severe_findings else ""
    return f"智能识错：{draft.findings} 处疑似问题{severe}"


def findings_list(
    draft: Draft, records: Sequence[dict[str, Any]], marks: dict[int, str] | None = None
) -> str:
    """/check 编号: each finding numbered, where it is (the n-th character), what and why, and
    the reader's own mark on it."""
    head = f"{draft_label(draft)} 第{draft.version}版 {findings_summary(draft)}"
    if not records:
        return head + "。\n识错只是辅助，仍须人工逐字审校。"
    marks = marks or {}
    lines = [head + "（识错只是辅助，不代替人工审校）："]
    for record in records[:FINDINGS_SHOWN]:
        tag = finding_tag(record["severity"], record["kind"])
        fix = f" → 「{record['suggestion']}」" if record["suggestion"] else ""
        mine = f" 【您已标记：{MARK_LABELS[marks[record['n']]]}】" if record["n"] in marks else ""
        lines.append(
            f"{record['n']}. [{tag}] 第{record['start'] + 1}字「{record['text']}」{fix}（{record['rule']}）{mine}"
        )
    if len(records) > FINDINGS_SHOWN:
        lines.append(f"另有 {len(records) - FINDINGS_SHOWN} 处，请在稿件页面查看。")
    if draft.severe_findings and draft.status == "in_review":
        lines.append(
            f"同意前须逐项标记严重问题：/check {draft.id} 已核实 1（或 已修改、误报；可写多个序号）。"
        )
    return "\n".join(lines)


FINDING_CONTEXT = 12  # characters shown on either side of a finding on the draft page


def finding_view(record: dict[str, Any], body: str, mark: str) -> dict[str, Any]:
    """One finding as the draft page shows it: its words highlighted in their sentence, what
    it is, the correct form, the rule, and the reader's mark."""
    start, end = record["start"], record["end"]
    return {
        "n": record["n"],
        "severe": record["severity"] == "severe",
        "tag": finding_tag(record["severity"], record["kind"]),
        "before": ("…" if start > FINDING_CONTEXT else "") + body[max(0, start - FINDING_CONTEXT) : start],
        "text": body[start:end] or record["text"],
        "after": body[end : end + FINDING_CONTEXT] + ("…" if end + FINDING_CONTEXT < len(body) else ""),
        "suggestion": record["suggestion"],
        "rule": record["rule"],
        "mark": mark,
    }


PAGE_FINDINGS_SHOWN = 5  # per page in the 巡检 report; the page itself has them all


def page_check_report(day: str, results: Sequence[Any]) -> str:
    """The 巡检's 智能识错 of the pages published since the previous 巡检 (page_check.PageResult)."""
    flagged = sum(1 for r in results if r.findings)
    unreachable = sum(1 for r in results if r.error)
    lines = [
        f"【巡检·网页识错】{day}：自上次巡检以来登记发布的网页 {len(results)} 个，"
        f"{flagged} 个有疑似问题，{unreachable} 个无法访问。请逐一核实，需要纠错的及时处理。"
    ]
    for number, result in enumerate(results, start=1):
        where = f"{number}. 《{result.page.title}》（{result.page.account}）{result.page.url}"
        if result.error:
            lines.append(f"{where}\n   无法访问：{result.error}")
        elif not result.findings:
            lines.append(f"{where}\n   未发现疑似问题")
        else:
            severe = sum(1 for f in result.findings if f.severity == "severe")
            head = f"{len(result.findings)} 处疑似问题" + (f"（{severe} 处严重）" if severe else "")
            shown = [
                f"「{f.text}」"
                + (f"→「{f.suggestion}」" if f.suggestion else "")
                + f"（{finding_tag(f.severity, f.kind)}）"
                for f in result.findings[:PAGE_FINDINGS_SHOWN]
            ]
            more = f"等 {len(result.findings)} 处" if len(result.findings) > PAGE_FINDINGS_SHOWN else ""
            lines.append(f"{where}\n   {head}：" + "；".join(shown) + more)
    return "\n".join(lines)


def finding_title(record: dict[str, Any]) -> str:
    """What a finding highlighted in the body says when pointed at: 「第2处 严重·规范表述：→ 台湾地区领导人（…）」."""
    fix = f"→ {record['suggestion']}" if record["suggestion"] else ""
    return f"第{record['n']}处 {finding_tag(record['severity'], record['kind'])}：{fix}（{record['rule']}）"


def findings_unmarked(draft: Draft, numbers: Sequence[int]) -> str:
    return (
        f"{draft_label(draft)}有 {len(numbers)} 处严重疑似问题您尚未核对（第{numbers_text(numbers)}处），暂不能同意。"
        f"请先发送 /check {draft.id} 查看，再逐项标记：/check {draft.id} 已核实 {numbers[0]}（或 已修改、误报；可写多个序号）。"
    )


def findings_not_in_review(draft: Draft) -> str:
    return f"{draft_label(draft)}不在审核中，不能再标记识错结果。"


def no_such_findings(draft: Draft, numbers: Sequence[int], total: int) -> str:
    return f"{draft_label(draft)}第{draft.version}版没有第{numbers_text(numbers)}处识错结果（共 {total} 处），请发送 /check {draft.id} 查看。"


def findings_marked(draft: Draft, mark: str, numbers: Sequence[int], learned: Sequence[str]) -> str:
    text = f"已将{draft_label(draft)}第{draft.version}版第{numbers_text(numbers)}处识错结果标记为“{MARK_LABELS[mark]}”。"
    if learned:
        text += "“" + "”“".join(learned) + "”已加入本单位识错白名单，以后的稿件不再提示。"
    return text


def card_subtitle(draft: Draft) -> str:
    """《title》 and the 智能识错 line, with where to read the findings."""
    where = f"（/check {draft.id} 查看）" if draft.findings else ""
    return f"《{draft.title}》\n{findings_summary(draft)}{where}"


def approval_card(
    draft: Draft,
    *,
    stage: int,
    stage_name: str,
    stage_count: int,
    mode: str,
    task_id: str,
    card_id: int,
    tz: ZoneInfo,
    page_url: str | None = None,
    proofread: bool = True,
    important: bool = False,
    secrecy: bool = False,
) -> dict[str, Any]:
    """A button_interaction card for one stage (docs/wecom.md §4.4: ≤6 fields, ≤6 buttons); with a page,
    tapping the card opens it (card_action) and 「阅读全文」 links to it (jump_list). A chain with
    三校 switched off claims only 三审."""
    checklist = checklist_for(stage)
    mode_note = "（会签：须全部同意）" if mode == "all" else ""
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·三审三校" if proofread else "审校助手·三审", "desc_color": 0},
        "main_title": {
            "title": f"【{stage_name}】待审稿件{mode_note}",
            "desc": f"第{stage}/{stage_count}审 · 第{draft.version}版 · {local(draft.updated_at, tz)}",
        },
        "sub_title_text": card_subtitle(draft) + (IMPORTANT_MARK if important else ""),
        "horizontal_content_list": [
            {"keyname": "编号", "value": str(draft.id)},
            {"keyname": "投稿人", "value": draft.submitter_name},
            {"keyname": "类别", "value": CATEGORY_LABELS[draft.category]},
            {"keyname": "来源", "value": source_label(draft)},
            {"keyname": "公开", "value": DISCLOSURE_LABELS[draft.disclosure]},
            {"keyname": "平台", "value": platforms_label(draft.platforms)},
        ],
        "quote_area": {
            "type": 0,
            "title": "审核要点",
            "quote_text": "\n".join(f"{i}. {item}" for i, item in enumerate(checklist, start=1)),
        },
        "task_id": task_id,
        "button_list": [
            {
                "text": "同意（不涉密）" if secrecy else "同意",
                "style": 1,
                "key": pack_action("rv", "approve", card_id),
            },
            {"text": "不同意", "style": 2, "key": pack_action("rv", "reject", card_id)},
            *(
                [{"text": "涉密不得公开", "style": 2, "key": pack_action("rv", "classified", card_id)}]
                if secrecy
                else []
            ),
        ],
    }
    if secrecy:
        card["main_title"]["title"] += "·保密审查"
    if page_url:
        card["card_action"] = {"type": 1, "url": page_url}
        card["jump_list"] = [{"type": 1, "title": "阅读全文", "url": page_url}]
    return card


def classified_notice(draft: Draft, stage_name: str, reviewer: str, reason: str) -> str:
    return (
        f"{draft_label(draft)}经{stage_name}保密审查（{reviewer}）认定：涉密，不得公开。\n理由：{reason}\n"
        "该稿件已终止，不能修改后重新送审。"
    )


def not_secrecy_stage(draft: Draft, stage_name: str) -> str:
    return f"“涉密不得公开”的结论由{stage_name}的保密审查作出，{draft_label(draft)}当前不在该环节。如有涉密疑虑，请选择不同意并说明。"


def ask_classified_reason(draft: Draft, stage_name: str) -> str:
    return (
        f"您认定{draft_label(draft)}（{stage_name}）涉密、不得公开。请直接回复认定理由（下一条消息即作为审核意见），"
        f"或发送 /secret {draft.id} 理由。该结论将终止稿件。"
    )


def card_done_label(stage_name: str, decision: str, reviewer_name: str) -> str:
    verdict = {"approve": "已同意", "reject": "不同意", "classified": "涉密"}[decision]
    return f"{stage_name}{verdict}·{reviewer_name}"[:20]


CARD_STALE_LABEL = "已失效"


def ask_reject_reason(draft: Draft, stage_name: str) -> str:
    return (
        f"您对{draft_label(draft)}（{stage_name}）选择了“不同意”。"
        f"请直接回复不同意的理由（下一条消息即作为审核意见），或发送 /reject {draft.id} 理由。"
    )


def stage_passed(
    draft: Draft, stage_name: str, reviewer: str, next_name: str, nxt: str, verb: str = "已同意"
) -> str:
    return f"{draft_label(draft)}{stage_name}{verb}（{reviewer}），已转{next_name}（{nxt}）。"


def waiting_cosign(draft: Draft, stage_name: str, missing: str) -> str:
    return f"已记录您对{draft_label(draft)}{stage_name}的同意。会签尚待：{missing}。"


def decision_recorded(draft: Draft, stage_name: str, decision: str, secrecy: str = "") -> str:
    verdict = {"approve": "同意", "reject": "不同意", "classified": "涉密不得公开"}[decision]
    conclusion = f"（保密审查：{SECRECY_LABELS[secrecy]}）" if secrecy == "clear" else ""
    return f"已记录：{draft_label(draft)}{stage_name}{verdict}{conclusion}。"


def approved_notice(draft: Draft, proofread: bool = False) -> str:
    return f"{draft_label(draft)}已通过{'三审三校' if proofread else '三审'}，可以发布。"


# ---------------------------------------------------------------- 三校 (proofreading)

PROOF_DUTIES: dict[str, tuple[str, ...]] = {
    # Qinzhou 附件 四(二): what each 校次 checks.
    "一校": (
        "逐字逐句校对标题、正文、图片说明，改正错别字、漏字、多字、错词、病句和标点",
        "语言文字、标点符号符合国家规定和标准规范",
    ),
    "二校": ("与原稿对照，逐一比对一校清样", "数据准确，专业术语、涉政敏感语句表述规范准确"),
    "三校": (
        "核校单位领导的修改意见已准确体现",
        "领导人姓名职务、国名地名、机构名称准确",
        "数据、专业术语、涉政敏感表述再核校",
    ),
}
PROOF_RESULTS = {"passed": "校对无误", "changed": "有修改"}


def proof_preview(draft: Draft, body: str, proof_name: str, method: str) -> str:
    length, cut = _opening(body)
    return (
        f"【{proof_name}·{method}·待校对】{draft_label(draft)} 第{draft.version}版（全文 {length} 字）\n"
        f"{cut}\n点卡片“阅读全文”对照原稿校对，校对后在卡片或页面上签署。"
    )


def proof_card(
    draft: Draft,
    *,
    proof_name: str,
    method: str,
    needed: int,
    task_id: str,
    card_id: int,
    tz: ZoneInfo,
    page_url: str | None = None,
) -> dict[str, Any]:
    """The 校 step's card: which 校次, the method (读校 needs two people), its duties, 校对无误 / 有修改."""
    how = f"{method}：{'两人合作，一人朗读原稿、一人核对校样，两人均须签署' if needed > 1 else '不发声逐字逐句通读全文'}"
    duties = PROOF_DUTIES.get(proof_name, PROOF_DUTIES["一校"])
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·三审三校", "desc_color": 0},
        "main_title": {
            "title": f"【{proof_name}】待校对稿件",
            "desc": f"{how} · 第{draft.version}版 · {local(draft.updated_at, tz)}",
        },
        "sub_title_text": card_subtitle(draft),
        "horizontal_content_list": [
            {"keyname": "编号", "value": str(draft.id)},
            {"keyname": "投稿人", "value": draft.submitter_name},
            {"keyname": "校次", "value": f"{proof_name}（{method}）"},
        ],
        "quote_area": {
            "type": 0,
            "title": "校对要点",
            "quote_text": "\n".join(f"{i}. {item}" for i, item in enumerate(duties, start=1)),
        },
        "task_id": task_id,
        "button_list": [
            {"text": "校对无误", "style": 1, "key": pack_action("pf", "passed", card_id)},
            {"text": "有修改", "style": 2, "key": pack_action("pf", "changed", card_id)},
        ],
    }
    if page_url:
        card["card_action"] = {"type": 1, "url": page_url}
        card["jump_list"] = [{"type": 1, "title": "阅读全文", "url": page_url}]
    return card


def proof_done_label(proof_name: str, result: str, name: str) -> str:
    return f"{proof_name}{PROOF_RESULTS[result]}·{name}"[:20]


def ask_proof_note(draft: Draft, proof_name: str) -> str:
    return (
        f"您在{draft_label(draft)}{proof_name}中选择了“有修改”。请直接回复改正了哪些内容"
        f"（例如：第二段“防讯”改为“防汛”），下一条消息即作为校对记录；或发送 /proof {draft.id} 有修改 说明。"
    )


def proof_waiting(draft: Draft, proof_name: str, method: str, missing: str) -> str:
    return f"已记录您对{draft_label(draft)}{proof_name}的签署。{method}须两人完成，尚待：{missing}。"


def proof_recorded(draft: Draft, proof_name: str, result: str) -> str:
    return f"已记录：{draft_label(draft)}{proof_name}{PROOF_RESULTS[result]}。"


def in_proof(draft: Draft, proof_name: str) -> str:
    return f"{draft_label(draft)}正在{proof_name}，审核要等校对完成后进行，本次操作未生效。"


def proof_refusal(draft: Draft, proof_name: str | None, reason: str) -> str:
    label = draft_label(draft)
    return {
        "not_in_proof": f"{label}当前没有待签署的校次，本次操作未生效。",
        "not_proofreader": f"您不是{label}{proof_name or ''}的校对人，本次操作未生效。",
        "already_signed": f"您已签署过{label}{proof_name or ''}，本次操作未生效。",
    }[reason]


def rejected_notice(
    draft: Draft, stage_name: str, reviewer: str, opinion: str, revise_url: str | None = None
) -> str:
    how = (
        f"请修改后发送 /revise {draft.id}，并在下一行起写新的正文，重新送审。"
        if revise_url is None
        else f"请修改后重新送审：在页面上修改（可上传新的文稿）{revise_url}，或发送 /revise {draft.id} 并在下一行起写新的正文。"
    )
    return f"{draft_label(draft)}{stage_name}不同意（{reviewer}）。\n意见：{opinion}\n{how}"


def revised_notice(draft: Draft, stage_name: str, assignee_names: str) -> str:
    return f"已收到{draft_label(draft)}第{draft.version}版，重新从{stage_name}开始审核（{assignee_names}）。"


def no_assignees(stage_name: str) -> str:
    return f"{stage_name}没有可用的审核人（须与其他各审不同人）。请联系管理员检查审核链配置，稿件暂未送审。"


def refusal_text(refusal: Refusal, draft: Draft | None, stage_name: str) -> str:
    label = draft_label(draft) if draft else "该稿件"
    status = STATUS_LABELS.get(draft.status, draft.status) if draft else ""
    return {
        Refusal.NOT_IN_REVIEW: f"{label}当前状态为“{status}”，不在审核中，本次操作未生效。",
        Refusal.STALE: f"这张卡片已过期：{label}已进入下一环节或已修改，本次操作未生效。",
        Refusal.NOT_ASSIGNEE: f"您不是{label}{stage_name}的审核人，本次操作未生效。",
        Refusal.SUBMITTER_LATER_STAGE: f"投稿人不能审核自己稿件的{stage_name}，本次操作未生效。",
        Refusal.DECIDED_OTHER_STAGE: (
            f"您已审核过{label}的其他环节，同一稿件的各审须由不同的人完成，本次操作未生效。"
        ),
        Refusal.ALREADY_DECIDED: f"{label}{stage_name}已有审核结果，本次操作未生效。",
        Refusal.NOT_ELIGIBLE: f"您没有{stage_name}的签署资格（按三审三校制度须由相应岗位人员审核），本次操作未生效。",
    }[refusal]


def not_eligible_target(name: str, stage_name: str, roles: Sequence[str], action: str = "转审") -> str:
    return f"{name}没有{stage_name}的签署资格（需要：{role_names(roles)}），不能{action}给他/她。"


def not_eligible_delegate(name: str, lacking: Sequence[str]) -> str:
    return f"{name}不能代理您的审核工作：代理人须具有与您相同的审核岗位（缺少：{role_names(lacking)}）。"


def already_decided_by_other(draft: Draft, stage_name: str) -> str:
    return f"{draft_label(draft)}{stage_name}刚刚已由他人处理，您的操作未生效。"


def draft_not_found(number: str) -> str:
    return f"没有找到编号为 {number} 的稿件。"


def copied_notice(draft: Draft, by_name: str) -> str:
    return (
        f"【抄送】{by_name}将{draft_label(draft)}抄送给您（{STATUS_LABELS.get(draft.status, draft.status)}）。"
        f"发送 /draft {draft.id} 查看详情；稿件通过三审时会再通知您。"
    )


# ---------------------------------------------------------------- 14-day rule


def remaining_text(left: timedelta) -> str:
    hours = int(left.total_seconds() // 3600)
    if left.total_seconds() <= 0:  # at the deadline itself the time is up (the overdue alarm fires)
        over = -left
        return f"已超期 {over.days} 天 {over.seconds // 3600} 小时"
    return f"剩余 {hours // 24} 天 {hours % 24} 小时" if hours >= 24 else f"剩余 {hours} 小时"


def account_line(account: Account, settings: Settings, now: datetime) -> str:
    head = f"{account.name}（{account.platform}）："
    if account.status == "paused" and account.paused_until is not None:
        return f"{head}暂停考核至 {last_day_of(account.paused_until, settings.tz):%m-%d}（{account.pause_reason}）"
    if account.deadline_at is None:
        return f"{head}无更新记录"
    left = account.deadline_at - now
    line = f"{head}{remaining_text(left)}，期限 {fmt_local(account.deadline_at, settings.tz)}"
    if account.last_post_at is None:
        return f"{line}（无更新记录，自登记起算）"
    if not account.last_post_reviewed:
        return f"{line}（最近一次更新未经本系统审核）"
    return line


# ---------------------------------------------------------------- duty watch


def inspection_card(
    task_id: str, inspection_id: int, day: str, published: Sequence[str] = (), near: Sequence[str] = ()
) -> dict[str, object]:
    """The 日常巡检 card: what to check, what was published since the last 巡检 (read those first)
    and the accounts close to their 14×24-hour deadline."""
    shown = 5
    lines = [
        f"新发布 {len(published)} 条（自上次巡检）" + ("：" if published else ""),
        *(f"· {line}" for line in published[:shown]),
        *([f"· 另有 {len(published) - shown} 条，见 /accounts"] if len(published) > shown else []),
    ]
    if near:
        lines += [f"临近更新期限 {len(near)} 个账号：", *(f"· {line}" for line in near[:shown])]
    lines += [
        "请检查：网站各栏目链接、错别字和过期信息；各账号最新内容和留言。",
        "发现问题请登记：/inspect 问题 说明 [负责人 期限]",
    ]
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·值班值守", "desc_color": 0},
        "main_title": {"title": "【日常巡检】请完成今日巡检", "desc": day},
        "quote_area": {"type": 0, "title": "巡检内容", "quote_text": "\n".join(lines)},
        "task_id": task_id,
        "button_list": [
            {"text": "已完成", "style": 1, "key": pack_action("dy", "done", inspection_id)},
            {"text": "发现问题", "style": 2, "key": pack_action("dy", "problem", inspection_id)},
        ],
    }


def reading_card(task: ReadingTask, tz: ZoneInfo) -> dict[str, object]:
    """A 读网 turn: what to read, by when; 已读无误 or 发现问题."""
    last_day = f"{last_day_of(task.due_at, tz):%m-%d}"
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·读网", "desc_color": 0},
        "main_title": {"title": f"【读网】{task.section}"[:36], "desc": f"{last_day} 前完成"},
        "sub_title_text": "请逐条阅读，查找错误表述、错别字、断链和过期信息；发现问题请写明。",
        "task_id": task.task_id,
        "button_list": [
            {"text": "已读无误", "style": 1, "key": pack_action("rd", "ok", task.id)},
            {"text": "发现问题", "style": 2, "key": pack_action("rd", "problem", task.id)},
        ],
    }


def incident_card(incident: Incident, raiser_name: str, tz: ZoneInfo, task_id: str) -> dict[str, object]:
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·突发事件", "desc_color": 2},
        "main_title": {
            "title": f"【突发】事件{incident.id}号，请立即处置",
            "desc": f"{raiser_name} 报告 · {fmt_local(incident.raised_at, tz)}",
        },
        "sub_title_text": incident.content[:300],
        "task_id": task_id,
        "button_list": [
            {"text": "收到", "style": 1, "key": pack_action("in", "ack", incident.id)},
            {"text": "已处置", "style": 2, "key": pack_action("in", "done", incident.id)},
        ],
    }


def incident_report_text(incident: Incident, raiser_name: str, kind_label: str) -> str:
    """To someone of the 上报 chain in WeCom, as the incident is raised."""
    return (
        f"【突发上报】事件{incident.id}号（{kind_label}），{raiser_name}报告：{incident.content[:500]}。"
        f"值班人员已收到通知；处置情况见 /incidents {incident.id}。"
    )


def incident_handling_card(
    incident: Incident, raiser_name: str, tz: ZoneInfo, task_id: str, acker_name: str
) -> dict[str, object]:
    """What a page card becomes after 收到: still in hand, with only 已处置 left to press."""
    card = incident_card(incident, raiser_name, tz, task_id)
    card["main_title"] = {
        "title": f"【突发】事件{incident.id}号，处置中",
        "desc": f"{acker_name} 已收到 · {fmt_local(incident.acked_at or incident.raised_at, tz)}",
    }
    card["button_list"] = [{"text": "已处置", "style": 1, "key": pack_action("in", "done", incident.id)}]
    return card


# ---------------------------------------------------------------- 发布后复核

RECHECK_OUTCOMES = {"ok": "复核无误", "problem": "发现问题", "": "待复核"}


def recheck_card(recheck: Recheck, draft: Draft, tz: ZoneInfo, task_id: str) -> dict[str, object]:
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·发布后复核", "desc_color": 0},
        "main_title": {
            "title": f"【发布后复核】{draft.title}"[:36],
            "desc": f"稿件{draft.id}号 · 已在“{recheck.account}”发布",
        },
        "sub_title_text": (
            f"请到发布处再读一遍，于 {fmt_local(recheck.due_at, tz)} 前确认。"
            + ("" if recheck.url else "发布时未登记链接。")
        ),
        "horizontal_content_list": [
            {"keyname": "发布账号", "value": recheck.account[:30]},
            {"keyname": "截止", "value": fmt_local(recheck.due_at, tz)},
        ],
        **({"card_action": {"type": 1, "url": recheck.url}} if recheck.url else {}),
        "task_id": task_id,
        "button_list": [
            {"text": "确认无误", "style": 1, "key": pack_action("rc", "ok", recheck.id)},
            {"text": "发现问题", "style": 2, "key": pack_action("rc", "problem", recheck.id)},
        ],
    }


def takedown_card(
    draft: Draft, case: ErrorCase, post: AccountPost, account: str, task_id: str
) -> dict[str, object]:
    """To the publisher of a retracted draft's post: take it down, then confirm."""
    url = post.url
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·撤稿", "desc_color": 2},
        "main_title": {"title": f"【撤稿】{draft.title}"[:36], "desc": f"稿件{draft.id}号 · “{account}”"},
        "sub_title_text": f"原因：{case.description}"[:300] + "。请立即撤下，撤下后点“已撤下”。",
        **({"card_action": {"type": 1, "url": url}} if url else {}),
        "task_id": task_id,
        "button_list": [{"text": "已撤下", "style": 1, "key": pack_action("rt", "down", post.id)}],
    }


def account_request_card(
    request: AccountRequest, what: str, requester: str, task_id: str
) -> dict[str, object]:
    """To the people of an account request's current approval step: 同意 or 不同意."""
    same = request.details.get("same_platform") or []
    kind = REQUEST_KIND_LABELS.get(request.kind, "")
    return {
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·账号审批", "desc_color": 0},
        "main_title": {
            "title": f"【账号{kind}审批】{request.account}"[:36],
            "desc": f"申请{request.id}号 · {requester}",
        },
        "sub_title_text": (
            f"{what}。理由：{request.reason}"
            + (f"。注意：同一平台已有“{'、'.join(same)}”（钦州 第二十四条（三））" if same else "")
        )[:300],
        "task_id": task_id,
        "button_list": [
            {"text": "同意", "style": 1, "key": pack_action("ar", "approve", request.id)},
            {"text": "不同意", "style": 2, "key": pack_action("ar", "reject", request.id)},
        ],
    }


def recheck_problem_text(recheck: Recheck, draft: Draft, by: str) -> str:
    where = f"（{recheck.url}）" if recheck.url else ""
    return (
        f"【发布后复核·发现问题】{draft_label(draft)}在“{recheck.account}”{where}发布后复核，"
        f"{by}发现问题：{recheck.note}。请立即核实，需要时纠错（/correct {draft.id} 种类 说明）"
        f"或撤稿（/retract {draft.id} 种类 理由）。"
    )


# ---------------------------------------------------------------- draft timeline


ACTION_LABELS = {
    "submit": "投稿",
    "approve": "同意",
    "reject": "不同意",
    "revise": "修改后重新送审",
    "approved": "通过三审，可以发布",
    "withdraw": "撤回",
    "transfer": "转审",
    "return": "退回",
    "cc": "抄送",
    "remind": "催办",
    "published": "已发布",
    "review_reminder": "系统催办",
    "review_escalation": "超时上报",
    "proof": "校对",
    "cosign": "加签",
    "classified": "认定涉密，不得公开",
    "finding_mark": "标记识错结果",
    "recheck_open": "发布后复核交办",
    "recheck_ok": "发布后复核无误",
    "recheck_problem": "发布后复核发现问题",
    "correct": "登记错情并退回纠错",
    "retract": "登记错情并撤稿",
    "takedown": "确认已撤下",
}


def describe(entry: AuditEntry, name_of: Callable[[str], str], tz: ZoneInfo) -> str:
    """One timeline line of a draft: who did what when, with the opinion or reason."""
    details = entry.details or {}

    def people(key: str) -> str:
        return "、".join(map(name_of, details.get(key, []))) or "（无）"

    label = ACTION_LABELS.get(entry.action, entry.action)
    who = name_of(entry.actor) if entry.actor != "system" else "系统"
    text = f"{who} {label}"
    if entry.action in ("approve", "reject", "classified"):
        text = f"{who} {details.get('stage_name', '')}{label}（第{details.get('version', '?')}版）"
        if details.get("on_behalf_of"):
            text += f"，代理{name_of(details['on_behalf_of'])}"
        if details.get("opinion"):
            text += f"：{details['opinion']}"
        if details.get("finding_marks"):
            text += f"（识错核对：{marks_text(details['finding_marks'])}）"
    elif entry.action == "revise":
        text += f"（第{details.get('version')}版）"
    elif entry.action == "finding_mark":
        numbers = numbers_text(details.get("numbers", []))
        text += (
            f"（第{details.get('version')}版第{numbers}处）：{MARK_LABELS.get(details.get('mark', ''), '')}"
        )
    elif entry.action == "transfer":
        text += f" {details.get('stage_name', '')}给{people('to')}：{details.get('reason', '')}"
    elif entry.action == "return":
        chain_names = {1: "一审", 2: "二审", 3: "三审"}
        to_stage = details.get("to_stage")
        to_name = chain_names.get(to_stage, to_stage) if isinstance(to_stage, int) else to_stage
        text += f"至{to_name}：{details.get('reason', '')}"
    elif entry.action in ("cc",):
        text += f"给{people('to')}"
    elif entry.action == "withdraw" and details.get("reason"):
        text += f"：{details['reason']}"
    elif entry.action == "published":
        text += f"到 {details.get('account', '')}"
    elif entry.action in ("correct", "retract"):
        text += f"（第{details.get('version')}版，错情{details.get('case')}号）：{details.get('description') or details.get('reason', '')}"
    elif entry.action == "recheck_open":
        text += f"给{people('assignees')}（{details.get('account', '')}）"
    elif entry.action in ("recheck_ok", "recheck_problem"):
        text += f"（{details.get('account', '')}）" + (f"：{details['note']}" if details.get("note") else "")
    elif entry.action == "cosign":
        text += f" {details.get('stage_name', '')}：{people('to')}（{details.get('reason', '')}）"
    elif entry.action == "proof":
        text = f"{who} {details.get('stage_name', '')}（{details.get('method', '')}）{PROOF_RESULTS.get(details.get('result', ''), '')}"
        if details.get("note"):
            text += f"：{details['note']}"
    return f"{local(entry.at, tz)} {text}"


# ---- The app menu (sanshen menu sync) and the welcome on opening the app -------------------------

UNKNOWN_MENU_KEY = "这个菜单按钮已无法识别（菜单可能已更新），请发送 /help 查看可用命令。"


def menu_leaf_line(button: dict[str, Any]) -> str:
    """One pressable menu button and what it does."""
    name = button.get("name", "")
    if button.get("type") == "view":
        return f"{name} → 打开 {button.get('url', '')}"
    command = command_of_menu_key(str(button.get("key", "")))
    return f"{name} → /{command}" if command else f"{name} → 按键 {button.get('key', '')}"


def menu_synced(menu: dict[str, Any], left_out: Sequence[str]) -> str:
    """What `sanshen menu sync` prints: the menu as WeCom now holds it (menu/get)."""
    lines = ["应用菜单已设置。企业微信中的菜单现为："]
    for button in menu.get("button", []):
        subs = button.get("sub_button") or []
        if subs:
            lines.append(f"{button.get('name', '')}：")
            lines.extend(f"  {menu_leaf_line(sub)}" for sub in subs)
        else:
            lines.append(menu_leaf_line(button))
    if left_out:
        lines.append(f"未配置 [server] public_url，网页按钮未加入菜单：{'、'.join(left_out)}")
    return "\n".join(lines)


def menu_sync_failed(errcode: int, errmsg: str) -> str:
    return f"设置应用菜单失败：企业微信返回 errcode {errcode}（{errmsg}）。"


def menu_sync_unreachable(reason: str) -> str:
    return f"设置应用菜单失败：无法连接企业微信接口（{reason}）。"


def welcome(
    name: str, pending: Sequence[tuple[Draft, str]], shown: int, tz: ZoneInfo, home_url: str | None
) -> str:
    """The day's first greeting on opening the app: what waits on them, most urgent first."""
    lines = [f"{name}，您好！"]
    if pending:
        more = len(pending) > shown
        lines.append(f"待您审核 {len(pending)} 件" + ("，最早的几件：" if more else "："))
        for draft, stage_name in pending[:shown]:
            since = local(draft.stage_entered_at, tz)
            lines.append(f"{draft.id}号《{draft.title}》{stage_name}，{since} 起等待")
        lines.append("发送 /pending（待办）查看全部。")
    else:
        lines.append("您目前没有待审核的稿件。")
    if home_url:
        lines.append(f"工作台：{home_url}")
    lines.append("菜单按钮与命令相同；发送 /help 查看全部命令。")
    return "\n".join(lines)


# ---------------------------------------------------------------- submission follow-up questions

META_QUESTIONS = {
    "source": (
        "请回复信息来源：\n1 本机关制发\n2 转载（请注明来源，如“转载：人民网”或“2 人民网”）\n3 非本机关"
    ),
    "disclosure": "请回复公开属性：\n1 主动公开\n2 依申请公开",
    "platforms": "请回复发布平台（可多选，如“1、2”）：\n1 政府网站\n2 政务新媒体\n3 其他",
}
META_FIELD_LABELS = {"source": "信息来源", "disclosure": "公开属性", "platforms": "发布平台"}


def meta_missing(title: str, missing: Sequence[str]) -> str:
    """The first follow-up question of a /submit that left out 来源, 公开 or 平台 (保密审查表 注3)."""
    what = "、".join(META_FIELD_LABELS[f] for f in missing)
    return (
        f"投稿《{title}》还缺少：{what}。按保密审查表注3，这几项须由投稿人自行选择，请逐项回复"
        f"（发送 /cancel 放弃投稿）。\n{META_QUESTIONS[missing[0]]}"
    )


def meta_next(missing: Sequence[str]) -> str:
    return f"已记下。{META_QUESTIONS[missing[0]]}"


def meta_answer_refused(reason: str, field: str) -> str:
    return f"{reason}\n{META_QUESTIONS[field]}"


# ---------------------------------------------------------------- audit checkpoints


def audit_checkpoint(day: object, entry_id: int, entry_hash: str) -> str:
    """The daily witness of the audit chain's head, for the admins to keep."""
    return (
        f"【审计检查点】{day}：审计日志共 {entry_id} 条，末条哈希 {entry_hash}。\n"
        f"请保留本消息；核验：sanshen verify-audit --checkpoint {entry_id}:{entry_hash}"
    )


# ---------------------------------------------------------------- `sanshen outbox`

OUTBOX_STATUS = {
    "pending": "待重试",
    "failed": "失败",
    "expired": "已过期",
    "discarded": "已作废",
    "sent": "已发送",
}
OUTBOX_OPS = {"send": "消息", "update_card": "卡片更新", "export": "文件", "webhook": "群机器人"}


def outbox_line(row: Any) -> str:
    """One stuck/failed/expired message for the admin's terminal."""
    what = row.payload.get("msgtype") or row.op
    if what == "text":
        what = "文本：" + str(row.payload.get("text", {}).get("content", ""))[:30].replace("\n", " ")
    elif what == "template_card":
        what = "卡片：" + str(row.payload.get("template_card", {}).get("task_id", ""))
    return (
        f"#{row.id} {OUTBOX_STATUS.get(row.status, row.status)} {OUTBOX_OPS.get(row.op, row.op)}"
        f" → {row.recipients or '-'}"
        f" 尝试 {row.attempts} 次 创建 {row.created_at:%Y-%m-%d %H:%M} 下次 {row.not_before:%Y-%m-%d %H:%M}"
        f"\n    {what}\n    原因：{row.last_error or '（无）'}"
    )


def outbox_none() -> str:
    return "没有滞留、失败或过期的消息。"


def outbox_retried(message_id: int) -> str:
    return f"第 {message_id} 条消息已重新排队，将立即重试（有效期重新计算）。"


def outbox_discarded(message_id: int, by: str, reason: str) -> str:
    return f"第 {message_id} 条消息已作废（{by}：{reason}），已记入审计日志。"


# ---------------------------------------------------------------- the dashboard page (概况)

DRAFT_AGE_LABELS = ("不足1天", "1至3天", "3天以上")  # bot.services.dashboard.AGE_LIMITS
CASE_ACTION_LABELS = {"correct": "纠错", "retract": "撤稿"}


def dashboard_refused(roles: Sequence[str]) -> str:
    return f"概况页面仅供{role_names(roles)}查看。如需查看，请联系管理员。"


def duration_text(amount: timedelta) -> str:
    """A span as people say it: 2 天 3 小时, 5 小时 20 分, 45 分钟."""
    minutes = max(int(amount.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分"
    return f"{minutes} 分钟"

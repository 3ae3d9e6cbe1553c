"""The report's picture for chat: each account's updates and days overdue, and each review stage's
time (median, P90), drawn server-side with matplotlib (Agg: no display, no browser)."""

from __future__ import annotations

import functools
import io
import logging

from bot.exports.report import Figures

log = logging.getLogger(__name__)

# Fonts that hold Chinese, as fontconfig and the usual systems name them (first found wins).
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Noto Serif CJK SC",
)
MAX_ACCOUNTS = 30  # bars; more would be unreadable on a phone: the most overdue are shown


@functools.cache
def cjk_family() -> str | None:
    """A font family on this machine that can draw Chinese, or None."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def render_chart(figures: Figures, *, font: str | None = None) -> bytes:
    """A PNG (well under WeCom's 10 MB for images). Without a Chinese font the accounts are drawn
    by their row number in the xlsx's 账号 sheet, and the words are left out, rather than boxes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    family = font or cjk_family()
    if family is None:
        log.warning("no font with Chinese glyphs found: the report chart numbers its accounts instead")
    chinese = family is not None
    rows = sorted(enumerate(figures.accounts, start=1), key=lambda r: (-r[1].overdue_days, -r[1].posts, r[0]))
    shown = sorted(rows[:MAX_ACCOUNTS], key=lambda r: r[0])
    height = 2.2 + 0.32 * max(len(shown), 3) + (2.6 if figures.stages else 0)
    fig = Figure(figsize=(8, height), dpi=120)
    FigureCanvasAgg(fig)
    text = {"fontfamily": family} if chinese else {}
    ratios = [max(len(shown), 3), 6] if figures.stages else [1]
    axes = fig.subplots(len(ratios), 1, gridspec_kw={"height_ratios": ratios}, squeeze=False)[:, 0]
    top = axes[0]
    labels = [a.name if chinese else str(n) for n, a in shown]
    places = list(range(len(shown)))
    top.barh(
        [p - 0.2 for p in places],
        [a.posts for _, a in shown],
        height=0.4,
        color="#3b7dd8",
        label="更新次数" if chinese else "posts",
    )
    top.barh(
        [p + 0.2 for p in places],
        [a.overdue_days for _, a in shown],
        height=0.4,
        color="#d9534f",
        label="超期天数" if chinese else "days overdue",
    )
    top.set_yticks(places, labels, **text)
    top.invert_yaxis()
    top.legend(prop={"family": family} if chinese else None, loc="lower right", fontsize=8)
    top.grid(axis="x", alpha=0.3)
    if chinese:
        more = f"（超期最多的 {len(shown)} 个）" if len(rows) > len(shown) else ""
        top.set_title(f"{figures.unit}{figures.period.label}：账号更新{more}", **text)
    if figures.stages:
        bottom = axes[1]
        names = [s.name if chinese else str(n) for n, s in enumerate(figures.stages, start=1)]
        spots = list(range(len(figures.stages)))
        bottom.bar(
            [p - 0.2 for p in spots],
            [s.median_hours for s in figures.stages],
            width=0.4,
            color="#5cb85c",
            label="中位数（小时）" if chinese else "median h",
        )
        bottom.bar(
            [p + 0.2 for p in spots],
            [s.p90_hours for s in figures.stages],
            width=0.4,
            color="#f0ad4e",
            label="P90（小时）" if chinese else "p90 h",
        )
        bottom.set_xticks(spots, names, **text)
        bottom.legend(prop={"family": family} if chinese else None, fontsize=8)
        bottom.grid(axis="y", alpha=0.3)
        if chinese:
            bottom.set_title("各环节审核用时", **text)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()

"""The plots of the models and report pages (matplotlib, Agg backend) as inline SVG text: no CDN, no JavaScript."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # no timestamp in the page
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def metrics_over_runs(history: list[dict[str, Any]]) -> str:
    """Per kind, the candidate's gate metric (solid) and popularity's (dashed) for each version, in
    time order; every version is a dot (a kind with one version is one point, not a line) and a
    version that went live a larger one."""
    from recommender.abstract_models import ModelKind
    from recommender.templatetags.recommender_dashboard_tags import metric_words

    series: dict[str, list[tuple[Any, float, float, bool]]] = defaultdict(list)
    key = "hr@20"
    for row in history:
        m = row["metrics"] or {}
        key = m.get("gate_metric", key)
        cand, pop = (m.get("candidate") or {}).get(key), (m.get("popularity") or {}).get(key)
        if cand is not None and pop is not None:
            series[row["kind"]].append((row["created"], 100 * cand, 100 * pop, row["status"] in ("live", "retired")))
    if not series:
        return _no_data("No evaluated version yet")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    labels = dict(ModelKind.choices)
    for i, (kind, points) in enumerate(sorted(series.items())):
        colour = f"C{i}"
        x = list(range(1, len(points) + 1))
        ax.plot(x, [p[1] for p in points], "-", marker=".", color=colour, label=str(labels.get(kind, kind)))
        ax.plot(x, [p[2] for p in points], "--", marker=".", color=colour, alpha=0.6)
        live = [(xi, p[1]) for xi, p in zip(x, points, strict=True) if p[3]]
        if live:
            ax.plot([a for a, _ in live], [b for _, b in live], "o", markersize=7, color=colour)
    longest = max(len(points) for points in series.values())
    ax.set_xlim(0.5, longest + 0.5)  # one version: a point in the middle
    ax.set_xticks(range(1, longest + 1, max(1, math.ceil(longest / 10))))  # whole versions only
    top = max(max(p[1], p[2]) for points in series.values() for p in points)
    ax.set_ylim(0, min(100.0, max(1.0, 1.2 * top)))
    ax.set_xlabel("version of the kind (1 = oldest shown)")
    ax.set_ylabel(f"{metric_words(key)} (%)", fontsize=8)
    ax.legend(fontsize=8, ncol=2, loc="upper left", bbox_to_anchor=(0, -0.25))
    ax.grid(alpha=0.3)
    return _svg(fig)


# -- the report page (recommender.measurement.report) -----------------------------------------

ARM_STYLES = {"treatment": "-", "control": "--", "": ":"}
ARM_SHORT = {"treatment": "personalised", "control": "best sellers", "": "no experiment"}


def _no_data(message: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 1.4))
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666")
    ax.set_axis_off()
    return _svg(fig)


def ctr_per_day(days: list[dict[str, Any]], titles: dict[str, str] | None = None) -> str:
    """Per placement (one colour) and arm (solid personalised, dashed best sellers, dotted outside an
    experiment), the share of blocks shown that were clicked, day by day; a dot on every day, so a
    single day is a visible point."""
    import matplotlib.dates as mdates

    series: dict[tuple[str, str], list[tuple[Any, float]]] = defaultdict(list)
    for row in days:
        if row["impressions"]:
            series[(row["placement"], row["arm"])].append((row["day"], 100 * row["clicks"] / row["impressions"]))
    if not series:
        return _no_data("No block was shown in this period")
    titles = titles or {}
    colours = {p: f"C{i}" for i, p in enumerate(sorted({p for p, _ in series}))}
    arms = {a for _, a in series}
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for (placement, arm), points in sorted(series.items()):
        points.sort()
        label = str(titles.get(placement, placement))  # a placement's title may be a lazy translation
        if len(arms) > 1:
            label += f" ({ARM_SHORT.get(arm, arm)})"
        ax.plot(
            [d for d, _ in points],
            [v for _, v in points],
            ARM_STYLES.get(arm, "-"),
            marker="o",
            markersize=4,
            color=colours[placement],
            label=label,
        )
    first = min(d for points in series.values() for d, _ in points)
    last = max(d for points in series.values() for d, _ in points)
    span = (last - first).days
    ax.set_xlim(mdates.date2num(first) - 0.5, mdates.date2num(last) + 0.5)  # one day: a point in the middle
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, math.ceil((span + 1) / 10))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.set_xlabel("day")
    ax.set_ylabel("clicks per 100 blocks shown")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, ncol=2, loc="upper left", bbox_to_anchor=(0, -0.22))
    ax.grid(alpha=0.3)
    return _svg(fig)


def revenue_per_visitor(arms: list[dict[str, Any]], comparison: dict[str, Any] | None, currency: str = "") -> str:
    """Left: revenue per visitor in each group with its 95 % interval (a point and a bar, no line).
    Right: how much more (or less) a personalised visitor spends, with its interval, against "no
    change"."""
    shown = [a for a in arms if a["visitors"]]
    if not shown:
        return _no_data("Nobody has been shown a block in this experiment yet")
    unit = f" ({currency})" if currency else ""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [3, 2]})
    for i, arm in enumerate(shown):
        mean, low, high = arm["revenue_per_visitor"], arm["revenue_per_visitor_low"], arm["revenue_per_visitor_high"]
        err = [[mean - low], [high - mean]] if low is not None and high is not None else None
        left.errorbar([i], [mean], yerr=err, fmt="o", capsize=6, color=f"C{i}", markersize=7)
    left.set_xticks(range(len(shown)), [ARM_SHORT.get(a["arm"], a["arm"]) for a in shown])
    left.set_xlim(-0.6, len(shown) - 0.4)
    left.axhline(0, color="#999", lw=0.8)
    left.set_xlabel("group of shoppers")
    left.set_ylabel(f"revenue per visitor{unit}")
    left.grid(alpha=0.3, axis="y")
    right.axvline(0, color="#666", lw=1)
    uplift = (comparison or {}).get("uplift")
    if uplift is None:
        right.text(0.5, 0.5, "not measurable yet", ha="center", va="center", color="#666", transform=right.transAxes)
    else:
        point = 100 * uplift
        low, high = (None if v is None else 100 * v for v in (comparison["uplift_low"], comparison["uplift_high"]))  # type: ignore[index]
        known = [v for v in (point, low, high, 0.0) if v is not None]
        pad = max(10.0, 0.3 * (max(known) - min(known)))
        start = low if low is not None else min(known) - pad
        end = high if high is not None else max(known) + pad
        right.plot([start, end], [0, 0], "-", color="C0", lw=3, solid_capstyle="butt")
        for bound, at, marker in ((low, start, "<"), (high, end, ">")):
            if bound is None:  # open-ended: the arrow goes on
                right.plot([at], [0], marker=marker, color="C0", markersize=9)
        right.plot([point], [0], "o", color="C0", markersize=8)
        if low is None or high is None:
            right.text(
                0.5,
                0.12,
                "arrow: no bound yet",
                ha="center",
                fontsize=8,
                color="#666",
                transform=right.transAxes,
            )
    right.set_yticks([])
    right.set_ylim(-1, 1)
    right.set_xlabel("change with personalised blocks (%)")
    right.set_title("the change, with its 95 % interval", fontsize=9)
    right.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _svg(fig)

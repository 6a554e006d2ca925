"""Server-side charts (matplotlib, Agg backend) returned as inline SVG text: no CDN, no JS."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from django.utils.translation import gettext
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # no timestamp in the page
    plt.close(fig)
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _empty(message: str) -> str:
    fig = plt.figure(figsize=(5, 1))
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#666")
    return _svg(fig)


def segment_sizes(segments: Sequence[dict[str, Any]]) -> str:
    if not segments:
        return _empty("No segments yet")
    names = [s["segment"] for s in segments][::-1]
    sizes = [s["customers"] for s in segments][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1))
    ax.barh(names, sizes, color=PALETTE[0])
    for y, v in enumerate(sizes):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("customers")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def text_colour(value: float, top: float) -> str:
    """Readable text on a cell of the "Blues" map: white where the cell is darker than its middle."""
    return "white" if top > 0 and value > 0.5 * top else "black"


def rf_heatmap(heat: Sequence[Sequence[int]]) -> str:
    if not heat or not any(any(row) for row in heat):
        return _empty("No customers yet")
    fig, ax = plt.subplots(figsize=(4.6, 4))
    img = ax.imshow(heat, origin="lower", cmap="Blues")
    top = max(max(row) for row in heat)
    for r, row in enumerate(heat):
        for f, v in enumerate(row):
            # white on the dark half of the colour scale, black on the light half
            ax.text(f, r, f"{v:,}", ha="center", va="center", fontsize=7, color=text_colour(v, top))
    ax.set_xticks(range(5), [str(i) for i in range(1, 6)])
    ax.set_yticks(range(5), [str(i) for i in range(1, 6)])
    ax.set_xlabel("F score (orders)")
    ax.set_ylabel("R score (recency)")
    fig.colorbar(img, ax=ax, shrink=0.8, label="customers")
    return _svg(fig)


def _plain_numbers(axis: Any) -> None:
    """Tick labels as plain numbers with thousands separators (a log axis would write 10^2)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def cluster_scatter(points: Sequence[dict[str, Any]], clusters: Sequence[dict[str, Any]], currency: str = "") -> str:
    """Customers (``recency_days``, ``frequency``, ``monetary``, ``cluster``) in the shop's own
    terms: how recently against how often (left) and how much (right); a cross marks each
    cluster's mean customer. Orders and spend are on log scales, and the axes say so."""
    points = [p for p in points if p.get("cluster") is not None]
    if not points:
        return _empty("No clusters yet")
    fig, (often, much) = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    names = {c["cluster"]: c.get("description", "") for c in clusters}
    for c in sorted({p["cluster"] for p in points}):
        mine = [p for p in points if p["cluster"] == c]
        colour = PALETTE[c % len(PALETTE)]
        days = [p["recency_days"] for p in mine]
        often.scatter(days, [p["frequency"] for p in mine], s=6, alpha=0.5, color=colour)
        much.scatter(days, [float(p["monetary"]) for p in mine], s=6, alpha=0.5, color=colour)
        often.scatter([], [], s=24, color=colour, label=f"{c}: {names.get(c, '')}"[:50])  # the legend's dot
    for c in clusters:
        colour = PALETTE[c["cluster"] % len(PALETTE)]
        x = c.get("mean_recency_days")
        for ax, key in ((often, "mean_frequency"), (much, "mean_monetary")):
            if x is not None and c.get(key) is not None:
                ax.scatter([x], [c[key]], marker="X", s=80, color=colour, edgecolor="black")
    unit = f" ({currency})" if currency else ""
    often.set_yscale("log")
    much.set_yscale("symlog", linthresh=10)  # net refunds are negative
    for ax, label in ((often, "how often: orders (log scale)"), (much, f"how much: net spend{unit} (log scale)")):
        ax.set_xlabel("how recently: days since the last order", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        _plain_numbers(ax.yaxis)
        ax.spines[["top", "right"]].set_visible(False)
    often.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _svg(fig)


def churn_over_runs(points: Sequence[tuple[str, float]]) -> str:
    points = [(d, v) for d, v in points if v is not None]
    if not points:
        return _empty("No runs yet")
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.plot([d for d, _ in points], [100 * v for _, v in points], marker="o", color=PALETTE[3])
    ax.set_ylabel("% at churn risk")
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def backtest_deciles(backtest: dict[str, Any]) -> str:
    """Mean predicted against mean actual value per decile of prediction, one line per candidate."""
    candidates = (backtest or {}).get("candidates") or {}
    if not candidates:
        return _empty("No backtest yet")
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for i, (name, metrics) in enumerate(sorted(candidates.items())):
        deciles = metrics.get("deciles") or []
        xs = [d["decile"] for d in deciles]
        ratio = [d["ratio"] if d.get("ratio") is not None else float("nan") for d in deciles]
        width = 3 if name == backtest.get("winner") else 1.2
        ax.plot(xs, ratio, marker="o", lw=width, color=PALETTE[i % len(PALETTE)], label=name)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.axhspan(0.75, 1.25, color="#2ca02c", alpha=0.08)
    ax.set_yscale("log")
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("decile of predicted value (1 = lowest)")
    ax.set_ylabel("predicted / actual (log scale)")
    ax.legend(fontsize=7, loc="best")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def activity_heatmaps(grids: dict[str, Sequence[Sequence[int]]]) -> str:
    """One weekday x hour heat map per kind (views, basket additions, orders)."""
    if not any(any(any(row) for row in g) for g in grids.values()):
        return _empty("No activity yet")
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 2.6), squeeze=False)
    for ax, (label, grid) in zip(axes[0], grids.items(), strict=True):
        ax.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest")
        ax.set_title(f"{label} ({sum(map(sum, grid)):,})", fontsize=9)
        ax.set_yticks(range(7), WEEKDAYS, fontsize=7)
        ax.set_xticks(range(0, 24, 3), [str(h) for h in range(0, 24, 3)], fontsize=7)
        ax.set_xlabel("hour", fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def weekly_year_on_year(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return _empty("No orders yet")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 2.8))
    x = range(len(rows))
    for ax, key, label in ((a1, "orders", "orders"), (a2, "revenue", "revenue")):
        ax.plot(x, [r[key] for r in rows], color=PALETTE[0], label="last 52 weeks")
        ax.plot(x, [r[f"{key}_last_year"] for r in rows], color=PALETTE[7], ls="--", label="the 52 weeks before")
        ax.set_ylabel(f"{label} per week", fontsize=8)
        ticks = list(range(0, len(rows), 8))
        ax.set_xticks(ticks, [rows[i]["week"] for i in ticks], fontsize=6, rotation=45)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _svg(fig)


def funnel_bars(rows: Sequence[dict[str, Any]], label_key: str, limit: int = 12) -> str:
    rows = list(rows)[:limit]
    if not rows:
        return _empty("No funnel yet")
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1))
    names = [str(r[label_key])[:40] for r in rows][::-1]
    y = np.arange(len(rows))
    steps = (("view", "views"), ("basket", "basket additions"), ("purchases", "purchases (order lines)"))
    for i, (key, label) in enumerate(steps):
        ax.barh(y + (i - 1) * 0.27, [r[key] for r in rows][::-1], height=0.27, color=PALETTE[i], label=label)
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xscale("symlog", linthresh=1)  # imported orders bring purchases in thousands, views in tens
    _plain_numbers(ax.xaxis)
    ax.set_xlabel("number (log scale: each step is ten times the one before)", fontsize=8)
    ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def cohort_heatmap(cohorts: dict[str, Any]) -> str:
    rows = cohorts.get("rows") or []
    if not rows:
        return _empty("No cohorts yet")
    data = np.array([[np.nan if s is None else 100 * s for s in r["retention"][1:]] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    img = ax.imshow(data, aspect="auto", cmap="Greens", vmin=0, interpolation="nearest")
    top = np.nanmax(data) if np.isfinite(data).any() else 0
    for r in range(data.shape[0]):
        for c in range(data.shape[1]):
            if np.isfinite(data[r, c]):
                ax.text(
                    c, r, f"{data[r, c]:.0f}", ha="center", va="center", fontsize=6, color=text_colour(data[r, c], top)
                )
    ax.set_yticks(range(len(rows)), [f"{r['cohort']} ({r['customers']:,})" for r in rows], fontsize=7)
    ax.set_xticks(range(data.shape[1]), [str(k) for k in range(1, data.shape[1] + 1)], fontsize=7)
    ax.set_xlabel("months after the first order", fontsize=8)
    fig.colorbar(img, ax=ax, shrink=0.8, label="% ordering again")
    return _svg(fig)


def new_vs_returning(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return _empty("No customers yet")
    fig, ax = plt.subplots(figsize=(7, 2.6))
    x = np.arange(len(rows))
    new = [r["new"] for r in rows]
    ax.bar(x, new, color=PALETTE[1], label="new")
    ax.bar(x, [r["returning"] for r in rows], bottom=new, color=PALETTE[0], label="returning")
    step = max(1, len(rows) // 12)
    ax.set_xticks(x[::step], [r["month"] for r in rows][::step], fontsize=7, rotation=45)
    ax.set_ylabel("customers ordering", fontsize=8)
    ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


#: a white background behind a label that may cross a line
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}


def intent_distribution(distribution: dict[str, Any], bands: dict[str, float]) -> str:
    """The held-out intents over their bins (``edges``, ``counts``), the bands' two cut points
    drawn as dashed lines, each band named where it starts."""
    edges, counts = list(distribution.get("edges") or []), list(distribution.get("counts") or [])
    if not counts or len(edges) != len(counts) + 1:
        return _empty(gettext("No purchase intents yet"))
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE[0], edgecolor="white")
    medium, high = bands.get("medium"), bands.get("high")
    ax.set_ylim(0, 1.4 * max(max(counts), 1))  # room above the bars for the bands' names
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    if medium is not None:
        ax.text(medium, 0.97, gettext("low") + " ", transform=top, ha="right", va="top", fontsize=8)
    for cut, name, y in ((medium, gettext("medium"), 0.97), (high, gettext("high"), 0.86)):
        if cut is not None:
            ax.axvline(cut, color="black", ls="--", lw=1)
            label = f" {name} \u2265 {100 * cut:.1f}%"
            ax.text(cut, y, label, transform=top, ha="left", va="top", fontsize=8, bbox=LABEL_BOX)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(gettext("probability that the next action is a basket addition or a purchase"), fontsize=8)
    ax.set_ylabel(gettext("held-out actions"), fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def intent_reliability(calibration: dict[str, Any]) -> str:
    """Predicted against observed share of basket additions and purchases per bin of intent (the
    diagonal is a perfect forecast), each point as large as its bin and labelled with its count;
    the title gives the Brier score beside the one of always guessing the average."""
    rows = [r for r in calibration.get("reliability") or [] if r.get("n")]
    if not rows:
        return _empty(gettext("No held-out actions yet"))
    xs, ys, ns = ([r[k] for r in rows] for k in ("predicted", "observed", "n"))
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot([0, 1], [0, 1], color=PALETTE[7], ls="--", lw=1, label=gettext("a perfect forecast"))
    ax.plot(xs, ys, color=PALETTE[0], lw=1)
    sizes = [20 + 280 * n / max(ns) for n in ns]
    ax.scatter(
        xs, ys, s=sizes, color=PALETTE[0], alpha=0.7, edgecolor="black", label=gettext("actions (area: how many)")
    )
    for x, y, n in zip(xs, ys, ns, strict=True):
        ax.annotate(f"{n:,}", (x, y), textcoords="offset points", xytext=(7, -9), fontsize=7)
    brier, base = calibration.get("brier"), calibration.get("brier_base_rate")
    if brier is not None and base is not None:
        title = gettext("Brier score %(brier).3f (lower is better);\nalways guessing the average scores %(base).3f")
        ax.set_title(title % {"brier": brier, "base": base}, fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(gettext("predicted probability of a basket addition or a purchase"), fontsize=8)
    ax.set_ylabel(gettext("observed share of basket additions and purchases"), fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)

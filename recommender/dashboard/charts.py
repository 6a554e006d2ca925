"""The models page's plot (matplotlib, Agg backend) as inline SVG text: no CDN, no JavaScript."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def metrics_over_runs(history: list[dict[str, Any]]) -> str:
    """Per kind, the candidate's gate metric (solid) and popularity's (dashed) for each version, in time order."""
    series: dict[str, list[tuple[Any, float, float, bool]]] = defaultdict(list)
    key = "hr@20"
    for row in history:
        m = row["metrics"] or {}
        key = m.get("gate_metric", key)
        cand, pop = (m.get("candidate") or {}).get(key), (m.get("popularity") or {}).get(key)
        if cand is not None and pop is not None:
            series[row["kind"]].append((row["created"], 100 * cand, 100 * pop, row["status"] in ("live", "retired")))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if not series:
        ax.text(0.5, 0.5, "No evaluated version yet", ha="center", va="center", color="#666")
        ax.set_axis_off()
        return _svg(fig)
    for i, (kind, points) in enumerate(sorted(series.items())):
        colour = f"C{i}"
        x = list(range(len(points)))
        ax.plot(x, [p[1] for p in points], "-", color=colour, label=kind)
        ax.plot(x, [p[2] for p in points], "--", color=colour, alpha=0.6)
        live = [(xi, p[1]) for xi, p in zip(x, points, strict=True) if p[3]]
        if live:
            ax.plot([a for a, _ in live], [b for _, b in live], "o", color=colour)
    ax.set_xlabel("version of the kind (oldest left)")
    ax.set_ylabel(f"{key.upper()} on held-out days (%)")
    ax.legend(fontsize=8, ncol=3, loc="upper left", bbox_to_anchor=(0, -0.25))
    ax.grid(alpha=0.3)
    return _svg(fig)

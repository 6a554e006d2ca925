"""``python manage.py replay_orders [--days 14] [--k 20] [--kind KIND ...] [--as-of ISO] [--json PATH]
[--no-progress]``: the last days' purchases replayed against the live models (what they would have
recommended before each purchase, and how often the bought product was in the top K), beside
popularity; :mod:`recommender.services.replay`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from recommender.services.replay import DEFAULT_KINDS, REPLAY_KINDS, Replay, replay_orders


class Command(BaseCommand):
    help = (
        "Replay the last days' orders against the live models: how often the bought product was in their "
        "top K before each purchase, beside popularity (a cheap estimate before an experiment)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=14, help="replay the purchases of the last N days (14)")
        parser.add_argument("--k", type=int, default=20, help="a hit is the bought product in the top K (20)")
        parser.add_argument(
            "--kind",
            nargs="+",
            choices=[str(k) for k in REPLAY_KINDS],
            metavar="KIND",
            help=f"kinds to ask (default {', '.join(DEFAULT_KINDS)}): {', '.join(REPLAY_KINDS)}",
        )
        parser.add_argument(
            "--as-of",
            type=datetime.fromisoformat,
            help="the window ends here (ISO date or date-time; default now)",
        )
        parser.add_argument(
            "--keep-run-up",
            action="store_true",
            help="histories run up to the order itself, the buyer's views and basket additions of the bought "
            "product included (the serving then leaves it out); default: they stop where that run-up began",
        )
        parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["days"] <= 0 or opts["k"] < 1:
            raise CommandError("--days must be positive and --k at least 1")
        bars: dict[str, tqdm] = {}

        def progress(kind: str, done: int, total: int) -> None:
            if kind not in bars:
                bars[kind] = tqdm(
                    total=total, desc=f"replay {kind}", unit="purchase", disable=opts["no_progress"], file=self.stderr
                )
            bars[kind].update(done - bars[kind].n)
            if done >= total:
                bars[kind].close()  # the kinds run one after the other: one bar at a time

        try:
            replay = replay_orders(
                opts["days"], opts["k"], opts["kind"], opts["as_of"], progress=progress, keep_run_up=opts["keep_run_up"]
            )
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(render(replay))
        if opts["json"]:
            opts["json"].write_text(json.dumps(replay.as_dict(), indent=2) + "\n")
            self.stdout.write(f"Wrote {opts['json']}\n")


def render(replay: Replay) -> str:
    """The replay as a table, with what the figures rest on."""
    window = f"{replay.start:%Y-%m-%d %H:%M} to {replay.as_of:%Y-%m-%d %H:%M}"
    if replay.message:
        return f"Replay of {window}: {replay.message}\n"
    k = replay.k
    if replay.keep_run_up:
        before = "everything the buyer did before the order"
    else:
        before = (
            f"what the buyer did before their run-up to it (for {replay.run_up_cut:,} purchases the history stops "
            "at their first view or basket addition of the product since their previous order)"
        )
    lines = [
        f"Replay of {window}: {replay.purchases:,} purchases in {replay.orders:,} orders by {replay.buyers:,} "
        f"buyers; the history of each: {before}; a hit: the bought product in the top {k}",
        "",
    ]
    header = ("kind", "version", "scored", "no history", "unknown product", "from history")
    header += (f"hr@{k}", f"mrr@{k}", f"pop hr@{k}", f"pop mrr@{k}", f"hr@{k} all")
    pop = replay.popularity
    rows = [header]
    for kind, s in replay.kinds.items():
        m, p = s["metrics"], s["popularity"]
        rows.append(
            (
                kind,
                f"{s['version']} ({s['model']})",
                f"{s['scored']:,}",
                f"{s['unscorable']['no_history']:,}",
                f"{s['unscorable']['unknown_product']:,}",
                f"{s['bought_from_history']:,}",
                _pct(m.get(f"hr@{k}")),
                _pct(m.get(f"mrr@{k}")),
                _pct(p.get(f"hr@{k}")),
                _pct(p.get(f"mrr@{k}")),
                _pct(s["metrics_all_purchases"].get(f"hr@{k}")),
            )
        )
    best = (_pct(pop.get(f"hr@{k}")), _pct(pop.get(f"mrr@{k}")), "-", "-", _pct(pop.get(f"hr@{k}")))
    rows.append(("popularity", "best sellers", f"{replay.purchases:,}", "0", "0", "-", *best))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    lines += [fmt.format(*rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt.format(*r) for r in rows[1:]]
    lines += [
        "",
        "hr/mrr: over the scored purchases; pop: popularity (the best sellers before the window) on the same "
        f"purchases, leaving out the same products; hr@{k} all: over every purchase, an unscorable one a miss.",
        "from history: scored purchases of a product already in the history or bought before, which the "
        "serving leaves out (a miss for both).",
    ]
    for kind, s in replay.kinds.items():
        after = s["after_training"]
        if not s["seen_in_training"]:
            continue
        learnt = (
            f"{kind}: version {s['version']} learnt from data up to {s['trained_until'][:16]}, which holds "
            f"{s['seen_in_training']:,} of its {s['scored']:,} scored purchases"
        )
        if after["scored"]:
            hit, pop_hit = after["metrics"].get(f"hr@{k}"), after["popularity"].get(f"hr@{k}")
            lines.append(
                f"{learnt}; on the {after['scored']:,} after: hr@{k} {_pct(hit)} vs popularity {_pct(pop_hit)}"
            )
        else:
            lines.append(f"{learnt} (all: an optimistic estimate; replay a window after its data)")
    for kind, reason in replay.skipped.items():
        lines.append(f"{kind}: skipped, {reason}")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"

"""``python manage.py train_recommenders [--as-of DATE] [--models KIND ...]``: one training run, with
a progress bar (the next-item networks' epochs and the time left of their budget) and a table of what
each candidate measured against popularity and the live version's configuration, with the gate's
p-value."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from recommender.abstract_models import ModelKind, TrainingStatus
from recommender.locks import LockHeld, LockUnavailable, task_lock
from recommender.services.training import KIND_ORDER, train_recommenders

FINAL = ("promoted", "rejected", "skipped", "failed")


class Command(BaseCommand):
    help = "Train the recommendation models on the shop's orders and events; promote those that are better."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=date.fromisoformat, help="use data before this day (YYYY-MM-DD)")
        parser.add_argument(
            "--models",
            nargs="+",
            choices=[str(k) for k in ModelKind],
            metavar="KIND",
            help=f"kinds to train (default all): {', '.join(str(k) for k in KIND_ORDER)}",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, as_of: date | None, models: list[str] | None, no_progress: bool, **opts: Any) -> None:
        kinds = models or [str(k) for k in KIND_ORDER]
        bar = tqdm(total=len(kinds) + 1, desc="training", unit="step", disable=no_progress, file=self.stderr)

        def progress(step: str, info: dict[str, Any]) -> None:
            bar.set_postfix_str(f"{step}: {', '.join(f'{k}={v}' for k, v in info.items())}"[:70])
            if step == "export" or any(k in info for k in ("promoted", "rejected", "skipped", "failed")):
                bar.update(1)

        try:
            with task_lock("recommender.train_recommenders"):
                run = train_recommenders(as_of, kinds, trigger="command", progress=progress)
        except LockUnavailable as exc:
            raise CommandError("the cache that holds the training lock does not answer (is Redis up?)") from exc
        except LockHeld as exc:
            raise CommandError("another training run is in progress (the nightly task?); try again later") from exc
        finally:
            bar.close()
        self.stdout.write(self.render(run))
        if run.status == TrainingStatus.FAILED:
            raise CommandError(f"training run {run.pk} failed:\n{run.error}")

    def render(self, run: Any) -> str:
        lines = [
            f"Training run {run.pk}: {run.get_status_display()} (data before {run.as_of:%Y-%m-%d %H:%M}, "
            f"{run.timings.get('total', 0):.1f} s, peak memory {run.peak_rss_mb or 0:.0f} MB)"
        ]
        log = (run.counts or {}).get("log") or {}
        if log:
            lines.append(
                f"Read {log.get('purchases', 0):,} purchases, {log.get('views', 0):,} views, "
                f"{log.get('basket_additions', 0):,} basket additions of {log.get('products', 0):,} products "
                f"by {log.get('people', 0):,} people in {run.timings.get('export', 0):.1f} s"
            )
        if run.status == TrainingStatus.NOTHING_TO_LEARN:
            lines.append(run.error)
            return "\n".join(lines) + "\n"
        metric = run.parameters.get("GATE_METRIC", "hr@20")
        header = ("kind", "model", "status", "cases", metric, f"pop {metric}", f"live {metric}", "p", "mrr@20", "fit s")
        rows = [header]
        outcomes = (run.counts or {}).get("kinds") or {}
        by_kind = {v.kind: v for v in run.versions.all()}
        for kind, outcome in outcomes.items():
            version = by_kind.get(kind)
            m = version.metrics if version else {}
            cand, pop, live = m.get("candidate", {}), m.get("popularity", {}), m.get("live", {})
            rows.append(
                (
                    kind,
                    version.model_name if version else "-",
                    str(outcome.get("status", "")),
                    f"{m.get('n_cases', 0):,}" if m else "-",
                    _pct(cand.get(metric)),
                    _pct(pop.get(metric)),
                    _pct(live.get(metric)),
                    f"{m['gate']['p_value']:.3g}" if (m.get("gate") or {}).get("p_value") is not None else "-",
                    _pct(cand.get("mrr@20")),
                    f"{(version.timings or {}).get('fit', 0):.1f}" if version else "-",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
        table = [fmt.format(*rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        table += [fmt.format(*r) for r in rows[1:]]
        lines += ["", *table, ""]
        for kind, outcome in outcomes.items():
            lines.append(f"{kind}: {outcome.get('reason', '')}")
        return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"

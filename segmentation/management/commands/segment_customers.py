"""``python manage.py segment_customers [--as-of YYYY-MM-DD]``: the nightly task, by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segmentation import services


def summary_table(run: Any) -> str:
    """Segments, customers, revenue share and mean R/F/M of a run, as fixed-width text."""
    head = f"{'segment':<22}{'customers':>10}{'share':>8}{'revenue':>9}{'recency':>9}{'orders':>8}{'spend':>11}"
    predicted = f"pred. {run.summary.get('horizon_months', '?')}m"  # spend over the run's horizon
    head += f"{'R/F/M':>13}{predicted:>11}{'churn':>7}"
    lines = [head, "-" * len(head)]

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for s in run.summary.get("segments", []):
        lines.append(
            f"{s['segment'][:21]:<22}{s['customers']:>10}{pct(s.get('share')):>8}{pct(s.get('revenue_share')):>9}"
            f"{num(s.get('mean_recency'), '.0f'):>9}{num(s.get('mean_frequency'), '.2f'):>8}"
            f"{num(s.get('mean_monetary'), ',.2f'):>11}"
            f"{num(s.get('mean_r'), '.1f') + '/' + num(s.get('mean_f'), '.1f') + '/' + num(s.get('mean_m'), '.1f'):>13}"
            f"{num(s.get('mean_predicted_value'), ',.2f'):>11}"
            f"{pct(s.get('churn_risk')):>7}"
        )
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Segment all customers (RFM scores, segments, clusters, predicted value) and make the run current."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--as-of", dest="as_of", help="as-of date YYYY-MM-DD (default: today)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of must be YYYY-MM-DD: {exc}") from exc
        bar = tqdm(
            total=len(services.STAGES),
            desc="segmenting",
            unit="stage",
            disable=options["no_progress"],
            file=self.stderr._out,
        )

        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        try:
            run = services.run_segmentation(as_of, progress=progress)
        except services.NoCustomersError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"segmentation failed; the previous run stays current. {exc}") from exc
        finally:
            bar.close()
        clv = run.summary.get("clv", {})
        self.stdout.write(
            f"Run {run.pk} as of {run.as_of:%Y-%m-%d}: {run.n_customers} customers, "
            f"k={run.k} (silhouette {run.silhouette if run.silhouette is None else round(run.silhouette, 3)}), "
            f"{run.parameters.get('excluded_orders_currency', 0)} orders excluded for their currency."
        )
        if clv.get("status") != "fitted" or clv.get("message"):
            self.stdout.write(f"Predicted value: {clv.get('status')}. {clv.get('message', '')}".strip())
        if run.summary.get("cluster_note"):
            self.stdout.write(f"Clusters: {run.summary['cluster_note']}")
        self.stdout.write(summary_table(run))
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in run.timings.items())
        self.stdout.write(self.style.SUCCESS(f"Done: {timings}"))

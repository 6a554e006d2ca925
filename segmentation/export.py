"""CSV export of memberships (admin action and dashboard), streamed so big segments do not load at once."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

CSV_FIELDS = (
    ("run", "run_id"),
    ("as_of", "run__as_of"),
    ("user_id", "user_id"),
    ("email", "user__email"),
    ("guest_email", "guest_email"),
    ("segment", "segment"),
    ("cluster", "cluster"),
    ("recency_days", "recency_days"),
    ("frequency", "frequency"),
    ("monetary", "monetary"),
    ("r", "r_score"),
    ("f", "f_score"),
    ("m", "m_score"),
    ("p_alive", "p_alive"),
    ("expected_purchases_90d", "expected_purchases_90d"),
    ("predicted_value_12m", "predicted_value_12m"),
    ("overdue_gaps", "overdue_gaps"),
    ("churn_probability", "churn_probability"),
    ("churn_risk", "churn_risk"),
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(qs: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in CSV_FIELDS])
    for values in qs.values_list(*[path for _, path in CSV_FIELDS]).iterator(chunk_size=2000):
        yield writer.writerow(["" if v is None else v for v in values])


def memberships_csv_response(qs: QuerySet, filename: str) -> Any:
    response = StreamingHttpResponse(_rows(qs.order_by("pk")), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

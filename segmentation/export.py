"""CSV exports (memberships from the admin action and the dashboard, the behaviour tables).

Memberships are streamed so big segments do not load at once. Every text cell is neutralised
against spreadsheet formula injection (OWASP "CSV Injection"): a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so an e-mail such as
``=cmd|'/Ccalc'!A0@example.com`` opens as text, not as a formula. Numbers are written as they
are (a negative spend stays a number). The file name is sent through Django's
``content_disposition_header``, after replacing anything but letters, digits, ``.``, ``_`` and
``-``, so a quote or CRLF in a segment name cannot break the header.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

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
    ("predicted_value", "predicted_value"),
    ("overdue_gaps", "overdue_gaps"),
    ("churn_probability", "churn_probability"),
    ("churn_risk", "churn_risk"),
)


class _Echo:
    def write(self, value: str) -> str:
        return value


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_IN_FILENAME = re.compile(r"[^\w.\-]+")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell: ``None`` is empty; text a spreadsheet would run as a formula gets a ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_filename(filename: str) -> str:
    """``filename`` with every run of characters other than letters, digits, ``.``, ``_``, ``-`` as one ``-``."""
    return _UNSAFE_IN_FILENAME.sub("-", filename).strip("-.") or "export.csv"


def _attachment(response: HttpResponse | StreamingHttpResponse, filename: str) -> None:
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=safe_filename(filename))


def _rows(qs: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in CSV_FIELDS])
    for values in qs.values_list(*[path for _, path in CSV_FIELDS]).iterator(chunk_size=2000):
        yield writer.writerow([safe_cell(v) for v in values])


def memberships_csv_response(qs: QuerySet, filename: str) -> StreamingHttpResponse:
    """A streamed CSV attachment of the memberships in ``qs`` (in id order)."""
    response = StreamingHttpResponse(_rows(qs.order_by("pk")), content_type="text/csv")
    _attachment(response, filename)
    return response


def csv_response(rows: Iterable[Iterable[Any]], filename: str) -> HttpResponse:
    """A CSV attachment of ``rows`` (small tables), its cells neutralised like the memberships'."""
    response = HttpResponse(content_type="text/csv")
    csv.writer(response).writerows([safe_cell(v) for v in row] for row in rows)
    _attachment(response, filename)
    return response

"""PostgreSQL ``COPY`` between queries, tables and pandas frames (psycopg 3): fast for millions of rows.

* :func:`copy_query_to_frame` runs a queryset as ``COPY (SELECT ... FROM (<query>) s) TO STDOUT``
  and reads the CSV into a DataFrame (the segmentation run's grouped query, the training export);
* :func:`copy_frame_to_table` writes a DataFrame's columns into a table with ``COPY ... FROM STDIN``
  (a segmentation run's memberships).

Both are for PostgreSQL connections only; callers read and write through the ORM elsewhere.
psycopg's ``COPY`` bypasses Django's debug cursor, so a ``COPY`` out is added to
``connection.queries`` by hand when queries are logged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connections, transaction
from django.db.models import QuerySet

#: rows per CSV chunk sent by :func:`copy_frame_to_table`
WRITE_CHUNK_ROWS = 250_000


def copy_query_to_frame(
    qs: QuerySet,
    select: Sequence[str],
    names: Sequence[str],
    using: str,
    *,
    dtype: Mapping[str, str],
    na_values: Mapping[str, Sequence[str]],
    work_mem: str | None = None,
) -> pd.DataFrame:
    """``SELECT <select> FROM (<qs>) s`` as a DataFrame with columns ``names``.

    ``select`` are SQL expressions over the query's columns as ``s.<column>`` (e.g.
    ``extract(epoch from s.ts)::float8``); ``dtype`` and ``na_values`` go to :func:`pandas.read_csv`
    (which reads no other value as missing). With ``work_mem`` the query runs in its own
    transaction with ``SET LOCAL work_mem`` (room for a hash aggregate over millions of rows).
    No rows: an empty frame with the columns ``names``.
    """
    conn = connections[using]
    sql, params = qs.query.get_compiler(using).as_sql()
    scope = transaction.atomic(using=using) if work_mem else nullcontext()
    with scope, conn.cursor() as cursor:
        if work_mem:
            cursor.execute("SET LOCAL work_mem = %s", [work_mem])
        raw = cursor.cursor
        outer = f"COPY (SELECT {', '.join(select)} FROM ({raw.mogrify(sql, params)}) s) TO STDOUT WITH (FORMAT csv)"
        buf = io.BytesIO()
        started = time.perf_counter()
        with raw.copy(outer) as copy:
            for chunk in copy:
                buf.write(chunk)
        if conn.queries_logged:  # psycopg's COPY bypasses Django's debug cursor; log it the same way
            conn.queries_log.append({"sql": outer, "time": f"{time.perf_counter() - started:.3f}"})
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        return pd.DataFrame(columns=list(names))
    return pd.read_csv(
        buf,
        header=None,
        names=list(names),
        dtype=dict(dtype),
        keep_default_na=False,
        na_values={k: list(v) for k, v in na_values.items()},
    )


def copy_frame_to_table(rows: pd.DataFrame, table: str, columns: Sequence[str], using: str) -> int:
    """Append ``rows[columns]`` to the table ``table`` (unquoted name) and return the number of rows.

    CSV written by pyarrow: a null is an empty field, an empty string a quoted ``""``, so
    PostgreSQL reads them back as NULL and ``""``.
    """
    conn = connections[using]
    options = pa_csv.WriteOptions(include_header=False)  # null -> empty field, "" -> quoted ""
    cols = list(columns)
    with conn.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {conn.ops.quote_name(table)} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)") as copy:
            for start in range(0, len(rows), WRITE_CHUNK_ROWS):
                buf = io.BytesIO()
                chunk = pa.Table.from_pandas(rows.iloc[start : start + WRITE_CHUNK_ROWS][cols], preserve_index=False)
                pa_csv.write_csv(chunk, buf, options)
                copy.write(buf.getvalue())
    return len(rows)

"""What staff read of stored runs: movements between runs, what-if placement, why a customer is where.

Everything here reads runs as they were stored (their memberships, parameters and summary);
nothing recomputes a run. The dashboard imports this module in every web process, so the
``segmentation.ml`` functions (SciPy, scikit-learn) are imported inside :func:`what_if` and
:func:`explain`, when staff first ask, not with the module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Q
from django.db.models.functions import Mod
from oscar.core.loading import get_model

CustomerSegment = get_model("segmentation", "CustomerSegment")

#: customers drawn in the cluster plot at most
CLUSTER_POINTS = 2000


def cluster_points(run: Any, limit: int = CLUSTER_POINTS, using: str = "default") -> list[dict[str, Any]]:
    """Up to ``limit`` of the run's customers with their recency, orders, net spend and cluster,
    every n-th membership by id (spread over the whole run, no random sort): the cluster plot's."""
    qs = CustomerSegment._default_manager.using(using).filter(run=run, cluster__isnull=False)
    step = max(1, -(-int(run.n_customers or 0) // limit))
    if step > 1:
        qs = qs.annotate(slot=Mod("pk", step)).filter(slot=0)
    return list(qs.order_by("pk").values("recency_days", "frequency", "monetary", "cluster")[:limit])


def transitions(from_run: Any, to_run: Any, using: str = "default") -> list[tuple[str | None, str | None, int]]:
    """How many customers moved from each segment of ``from_run`` to each of ``to_run``.

    One grouped query joining the two runs' memberships on the customer
    (user, or guest email); ``None`` stands for "not a customer in that run"
    (new customers, or customers whose orders fell out of the window).
    """
    conn = connections[using]
    qn = conn.ops.quote_name
    table = qn(CustomerSegment._meta.db_table)
    sql = f"""
        SELECT a.segment, b.segment, COUNT(*)
        FROM (SELECT user_id, guest_email, segment FROM {table} WHERE run_id = %s) a
        FULL OUTER JOIN (SELECT user_id, guest_email, segment FROM {table} WHERE run_id = %s) b
          ON COALESCE(a.user_id, 0) = COALESCE(b.user_id, 0) AND a.guest_email = b.guest_email
        GROUP BY a.segment, b.segment
        ORDER BY 3 DESC
    """
    with conn.cursor() as cursor:
        cursor.execute(sql, [from_run.pk, to_run.pk])
        return [(a, b, int(c)) for a, b, c in cursor.fetchall()]


def transition_matrix(from_run: Any, to_run: Any) -> dict[str, Any]:
    """:func:`transitions` as a table: rows = previous segment, columns = new segment.

    Runs never change once written, so the table is cached for a day per pair of runs
    (the grouped join takes seconds for a million customers).
    """
    key = f"segmentation:transitions:{from_run.pk}:{to_run.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    cells = transitions(from_run, to_run)
    new_label, gone_label = "(new customer)", "(no longer active)"
    rows = sorted({a or new_label for a, _b, _c in cells}, key=lambda s: (s == new_label, s))
    cols = sorted({b or gone_label for _a, b, _c in cells}, key=lambda s: (s == gone_label, s))
    lookup = {(a or new_label, b or gone_label): c for a, b, c in cells}
    result = {
        "rows": rows,
        "columns": cols,
        "table": [[lookup.get((r, c), 0) for c in cols] for r in rows],
    }
    cache.set(key, result, 24 * 3600)
    return result


def what_if(run: Any, recency_days: int, frequency: int, monetary: Decimal) -> dict[str, Any]:
    """Scores, segment and cluster a customer with these figures would get in ``run``.

    Scored against the run's customers exactly as the run scored them (one
    aggregate query counting worse and equal values per dimension), segmented
    with the run's rule table and placed at the nearest of the run's cluster
    centres. ``cluster`` is None for runs stored before centres were kept.
    """
    from segmentation.ml.clustering import rfm_features  # not at module level: see the module's docstring
    from segmentation.ml.rfm import assign_segments, score_against

    m = Decimal(monetary)
    counts = CustomerSegment.objects.filter(run=run).aggregate(
        n=Count("pk"),
        r_worse=Count("pk", filter=Q(recency_days__gt=recency_days)),
        r_equal=Count("pk", filter=Q(recency_days=recency_days)),
        f_worse=Count("pk", filter=Q(frequency__lt=frequency)),
        f_equal=Count("pk", filter=Q(frequency=frequency)),
        m_worse=Count("pk", filter=Q(monetary__lt=m)),
        m_equal=Count("pk", filter=Q(monetary=m)),
    )
    n = counts["n"]
    r, f, m_score = (score_against(counts[f"{d}_worse"], counts[f"{d}_equal"], n) for d in ("r", "f", "m"))
    params = run.parameters.get("settings", {})
    seg = assign_segments(
        [r], [f], [m_score], params.get("rules"), fallback_segment=params.get("fallback_segment", "Unclassified")
    )
    cluster = None
    model = (run.summary or {}).get("cluster_model")
    if model:
        z = (rfm_features([recency_days], [frequency], [float(m)])[0] - np.array(model["mean"])) / np.array(
            model["scale"]
        )
        centers = np.array(model["centers"], dtype=float)
        cluster = int(((centers - z) ** 2).sum(axis=1).argmin())
    descriptions = {c.get("cluster"): c.get("description", "") for c in (run.summary or {}).get("clusters", [])}
    return {
        "r_score": r,
        "f_score": f,
        "m_score": m_score,
        "segment": str(seg["segment"].iloc[0]),
        "why": str(seg["why"].iloc[0]),
        "cluster": cluster,
        "cluster_description": descriptions.get(cluster, "") if cluster is not None else "",
        "customers": n,
    }


def explain(membership: Any) -> str:
    """Why a customer is in their segment (the rule table of the run that placed them)."""
    from segmentation.ml.rfm import assign_segments  # not at module level: see the module's docstring

    params = membership.run.parameters.get("settings", {})
    try:
        res = assign_segments(
            [membership.r_score],
            [membership.f_score],
            [membership.m_score],
            params.get("rules"),
            fallback_segment=params.get("fallback_segment", "Unclassified"),
        )
        return str(res["why"].iloc[0])
    except Exception:  # an old run with a rule table this version cannot read
        return f"{membership.segment}: R={membership.r_score}, F={membership.f_score}, M={membership.m_score}"

"""Segmentation runs and what is read from them, one module per responsibility.

* :mod:`~segmentation.services.aggregation`: orders -> one row of figures per customer, in SQL;
* :mod:`~segmentation.services.pipeline`: :class:`Segmenter` scores, segments, clusters and values them;
* :mod:`~segmentation.services.runs`: :func:`run_segmentation` and the stored history of runs;
* :mod:`~segmentation.services.lookups`: the current run, a customer's membership and segment (cached);
* :mod:`~segmentation.services.reports`: transitions between runs, what-if, why a customer is where.

Every public name is importable from ``segmentation.services`` as well (``from segmentation import
services; services.run_segmentation(...)``); the submodules depend on each other in that order only.
"""

from segmentation.services.aggregation import (
    COLUMNS,
    MONEY,
    aggregate_customers,
    as_of_bounds,
    counted_orders,
    customer_keys,
    customer_rfm_queryset,
    order_day_log,
)
from segmentation.services.lookups import (
    CURRENT_RUN_CACHE_KEY,
    current_membership,
    current_run,
    current_segment,
    forget_cached_segments,
)
from segmentation.services.pipeline import (
    SCATTER_POINTS,
    RunResult,
    Segmenter,
    current_parameters,
    forecast_disagreements,
    summarise,
)
from segmentation.services.reports import explain, transition_matrix, transitions, what_if
from segmentation.services.runs import (
    MEMBERSHIP_FIELDS,
    STAGES,
    NoCustomersError,
    ProgressCallback,
    delete_memberships,
    find_equivalent_run,
    prune_runs,
    run_segmentation,
    write_memberships,
)

__all__ = [
    "COLUMNS",
    "CURRENT_RUN_CACHE_KEY",
    "MEMBERSHIP_FIELDS",
    "MONEY",
    "SCATTER_POINTS",
    "STAGES",
    "NoCustomersError",
    "ProgressCallback",
    "RunResult",
    "Segmenter",
    "aggregate_customers",
    "as_of_bounds",
    "counted_orders",
    "current_membership",
    "current_parameters",
    "current_run",
    "current_segment",
    "customer_keys",
    "customer_rfm_queryset",
    "delete_memberships",
    "explain",
    "find_equivalent_run",
    "forecast_disagreements",
    "forget_cached_segments",
    "order_day_log",
    "prune_runs",
    "run_segmentation",
    "summarise",
    "transition_matrix",
    "transitions",
    "what_if",
    "write_memberships",
]

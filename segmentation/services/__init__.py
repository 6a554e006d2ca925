"""Segmentation runs and what is read from them, one module per responsibility.

* :mod:`~segmentation.services.aggregation`: orders -> one row of figures per customer, in SQL;
* :mod:`~segmentation.services.pipeline`: :class:`Segmenter` scores, segments, clusters and values them;
* :mod:`~segmentation.services.runs`: :func:`run_segmentation` and the stored history of runs;
* :mod:`~segmentation.services.lookups`: the current run, a customer's membership and segment (cached);
* :mod:`~segmentation.services.reports`: transitions between runs, what-if, why a customer is where.

Every public name is importable from ``segmentation.services`` as well (``from segmentation import
services; services.run_segmentation(...)``). Those names are loaded on first use (:func:`__getattr__`),
not when the package is imported: shoppers' pages import :mod:`~segmentation.services.lookups`
(``segmentation.models`` does, through :mod:`segmentation.offers`), and a web process should not
load SciPy and scikit-learn, which :mod:`~segmentation.services.pipeline` needs, to read a segment.
A new public name goes into its module and into :data:`EXPORTS`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: the public names of each submodule, importable from this package
EXPORTS: dict[str, tuple[str, ...]] = {
    "aggregation": (
        "COLUMNS",
        "MONEY",
        "aggregate_customers",
        "as_of_bounds",
        "counted_orders",
        "customer_keys",
        "customer_rfm_queryset",
        "order_day_log",
    ),
    "lookups": (
        "CURRENT_RUN_CACHE_KEY",
        "current_membership",
        "current_run",
        "current_segment",
        "forget_cached_segments",
    ),
    "pipeline": (
        "RunResult",
        "Segmenter",
        "current_parameters",
        "forecast_disagreements",
        "summarise",
    ),
    "reports": ("CLUSTER_POINTS", "cluster_points", "explain", "transition_matrix", "transitions", "what_if"),
    "runs": (
        "MEMBERSHIP_FIELDS",
        "STAGES",
        "NoCustomersError",
        "ProgressCallback",
        "delete_memberships",
        "find_equivalent_run",
        "prune_runs",
        "run_segmentation",
        "write_memberships",
    ),
}
_MODULE_OF = {name: module for module, names in EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """``services.<name>``: imported from its submodule on first use, then kept here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""RFM scores (1-5 per dimension) and named segments from an editable rule table.

Scores
------
Each dimension is scored by the *percentile of mid-ranks*::

    p     = (rank - 0.5) / n          # rank 1 = worst, ties share their average rank
    score = 1 + floor(5 * p)          # 1 .. 5

For large shops this is exactly quintiles. For tiny shops it spreads customers
symmetrically over the scale (1 customer -> 3; 2 -> 2, 4; 3 -> 1, 3, 5;
5 -> 1..5), identical customers always get the same score (all identical -> 3),
and nothing is ever NaN. Recency is scored on "days since last order", fewer
days = higher score; frequency and monetary: more = higher. Negative or zero
monetary values (net of refunds) are ranked like any other number.

Segments
--------
A rule table is a list of dicts evaluated in order, first match wins::

    {"name": "Champions", "r": [5, 5], "fm": [4, 5], "description": "..."}

Allowed keys: ``name`` (required), ``description``, and any of ``r``, ``f``,
``m``, ``fm`` as an inclusive ``[low, high]`` range of integer scores 1-5 (or a
single integer). A missing dimension matches anything. ``fm`` is the rounded
half-up average of F and M, ``(f + m + 1) // 2``. Customers matched by no rule
get the fallback segment name. Several rules may share a name, which is how a
non-rectangular region of the grid is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import rankdata

__all__ = [
    "DEFAULT_FALLBACK_SEGMENT",
    "DEFAULT_SEGMENT_RULES",
    "RuleTableError",
    "assign_segments",
    "coverage_report",
    "empty_score_reasons",
    "quintile_scores",
    "score_against",
    "score_rfm",
    "validate_rules",
]

Ties = Literal["average", "min", "max"]

DEFAULT_FALLBACK_SEGMENT = "Unclassified"

#: The widely used 5x5 "recency vs frequency" segment map of RFM tutorials
#: (10 segments), drawn on R against FM (the average of F and M), with "Lost"
#: split off the worst corner of "Hibernating" to give the usual 11 segments.
#: The cells of the grid (rows FM 5..1, columns R 1..5)::
#:
#:     FM 5  Can't lose  Can't lose  Loyal         Loyal         Champions
#:     FM 4  At risk     At risk     Loyal         Loyal         Champions
#:     FM 3  At risk     At risk     Need attn.    Pot. loyalist Pot. loyalist
#:     FM 2  Hibernating Hibernating About to sleep Pot. loyalist Pot. loyalist
#:     FM 1  Lost        Hibernating About to sleep Promising    New
#:           R 1         R 2         R 3           R 4           R 5
#:
#: Every one of the 125 (R, F, M) combinations is covered exactly once,
#: except the Lost cell, which Hibernating would also match (Lost comes first).
DEFAULT_SEGMENT_RULES: tuple[dict[str, Any], ...] = (
    {"name": "Champions", "r": [5, 5], "fm": [4, 5], "description": "Bought very recently, buy often, spend the most."},
    {"name": "Loyal", "r": [3, 4], "fm": [4, 5], "description": "Buy often and spend well; not the very latest."},
    {
        "name": "Potential loyalist",
        "r": [4, 5],
        "fm": [2, 3],
        "description": "Recent customers with average frequency and spend.",
    },
    {"name": "New", "r": [5, 5], "fm": [1, 1], "description": "Bought very recently, for the first time or little."},
    {"name": "Promising", "r": [4, 4], "fm": [1, 1], "description": "Recent shoppers who have not bought much yet."},
    {"name": "Need attention", "r": [3, 3], "fm": [3, 3], "description": "Average on every count; may slip away."},
    {"name": "About to sleep", "r": [3, 3], "fm": [1, 2], "description": "Below average and not seen for a while."},
    {"name": "At risk", "r": [1, 2], "fm": [3, 4], "description": "Bought often and well, but long ago."},
    {"name": "Can't lose them", "r": [1, 2], "fm": [5, 5], "description": "Used to be the best customers; long gone."},
    {"name": "Lost", "r": [1, 1], "fm": [1, 1], "description": "Lowest recency, frequency and spend."},
    {"name": "Hibernating", "r": [1, 2], "fm": [1, 2], "description": "Last order long ago, few orders, low spend."},
)

_DIMENSIONS = ("r", "f", "m", "fm")
_ALLOWED_KEYS = frozenset({"name", "description", *_DIMENSIONS})


class RuleTableError(ValueError):
    """A user-supplied segment rule table is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("invalid segment rule table: " + "; ".join(self.errors))


# --------------------------------------------------------------------------- scores


def quintile_scores(values: ArrayLike, *, higher_is_better: bool = True, ties: Ties = "average") -> np.ndarray:
    """Score ``values`` 1..5 by the percentile of their ranks (see module docstring).

    ``ties="average"`` (default) gives tied values the same, middle score;
    ``"min"`` pushes a tie group to the lowest score it spans, ``"max"`` to the
    highest. Returns an ``int8`` array; raises ``ValueError`` on NaN/inf or a
    non-1-D input.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"expected a 1-D array of per-customer values, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("RFM inputs must be finite numbers (no NaN / inf); pass 0 for customers without spend")
    if ties not in ("average", "min", "max"):
        raise ValueError(f"ties must be 'average', 'min' or 'max', not {ties!r}")
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    ranks = rankdata(v if higher_is_better else -v, method=ties)  # 1..n, multiples of 0.5
    # 1 + floor(5 * (rank - 0.5) / n) in exact integer arithmetic (2*rank is an integer)
    twice_rank = np.rint(2 * ranks).astype(np.int64)
    scores = 1 + (5 * (twice_rank - 1)) // (2 * n)
    return np.clip(scores, 1, 5).astype(np.int8)


def fm_score(f: ArrayLike, m: ArrayLike) -> np.ndarray:
    """Average of F and M scores, rounded half up: ``(f + m + 1) // 2``."""
    return ((np.asarray(f, dtype=np.int64) + np.asarray(m, dtype=np.int64) + 1) // 2).astype(np.int8)


# --------------------------------------------------------------------------- rules


def _parse_range(value: Any) -> tuple[int, int] | str:
    """Return ``(low, high)`` or an error message."""
    if isinstance(value, bool):
        return "must be an integer 1-5 or a [low, high] pair, not a boolean"
    if isinstance(value, int | np.integer):
        lo = hi = int(value)
    elif isinstance(value, list | tuple) and len(value) == 2:
        if not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in value):
            return f"range {list(value)!r} must hold two integers"
        lo, hi = int(value[0]), int(value[1])
    else:
        return f"must be an integer 1-5 or a [low, high] pair, got {value!r}"
    if not (1 <= lo <= 5 and 1 <= hi <= 5):
        return f"range [{lo}, {hi}] is outside the scores 1-5"
    if lo > hi:
        return f"range [{lo}, {hi}] has low > high"
    return lo, hi


def validate_rules(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check a rule table and return it normalised.

    Each returned rule has ``name``, ``description`` and, for every dimension
    ``r``, ``f``, ``m``, ``fm``, either a ``(low, high)`` tuple or ``None`` (any).
    Raises :class:`RuleTableError` listing *all* problems: not a list, empty,
    unknown keys, missing or blank names, ranges that are not integers within
    1-5 or have low > high.
    """
    if isinstance(rules, str | bytes | Mapping) or not isinstance(rules, Sequence):
        raise RuleTableError(["the rule table must be a list of rules (dicts)"])
    if len(rules) == 0:
        raise RuleTableError(["the rule table is empty"])
    errors: list[str] = []
    normalised: list[dict[str, Any]] = []
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, Mapping):
            errors.append(f"rule {i}: must be a dict, got {type(rule).__name__}")
            continue
        name = rule.get("name")
        label = f"rule {i} ({name!r})" if isinstance(name, str) and name.strip() else f"rule {i}"
        unknown = sorted(str(k) for k in rule if k not in _ALLOWED_KEYS)
        if unknown:
            errors.append(f"{label}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED_KEYS))}")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{label}: 'name' must be a non-blank string")
        description = rule.get("description", "")
        if not isinstance(description, str):
            errors.append(f"{label}: 'description' must be a string")
            description = ""
        out: dict[str, Any] = {"name": name.strip() if isinstance(name, str) else "", "description": description}
        for dim in _DIMENSIONS:
            if dim not in rule or rule[dim] is None:
                out[dim] = None
                continue
            parsed = _parse_range(rule[dim])
            if isinstance(parsed, str):
                errors.append(f"{label}: '{dim}' {parsed}")
                out[dim] = None
            else:
                out[dim] = parsed
        normalised.append(out)
    if errors:
        raise RuleTableError(errors)
    return normalised


def _all_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 125 (r, f, m) combinations, in the order of ``_cell_index``."""
    r, f, m = np.meshgrid(np.arange(1, 6), np.arange(1, 6), np.arange(1, 6), indexing="ij")
    return r.ravel().astype(np.int8), f.ravel().astype(np.int8), m.ravel().astype(np.int8)


def _cell_index(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (r.astype(np.int64) - 1) * 25 + (f.astype(np.int64) - 1) * 5 + (m.astype(np.int64) - 1)


def _describe_rule(rule: Mapping[str, Any]) -> str:
    parts = []
    for dim in _DIMENSIONS:
        rng = rule[dim]
        if rng is not None:
            lo, hi = rng
            parts.append(f"{dim.upper()} {lo}" if lo == hi else f"{dim.upper()} {lo}-{hi}")
    return ", ".join(parts) if parts else "any scores"


def _match_cells(rules: list[dict[str, Any]]) -> np.ndarray:
    """Index of the first matching rule for each of the 125 cells, -1 if none."""
    r, f, m = _all_cells()
    values = {"r": r, "f": f, "m": m, "fm": fm_score(f, m)}
    which = np.full(125, -1, dtype=np.int64)
    for i, rule in enumerate(rules):
        mask = which == -1
        for dim in _DIMENSIONS:
            if rule[dim] is not None:
                lo, hi = rule[dim]
                mask &= (values[dim] >= lo) & (values[dim] <= hi)
        which[mask] = i
    return which


def coverage_report(rules: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """How a rule table covers the 125 (R, F, M) score combinations.

    Returns ``{"uncovered": [(r, f, m), ...], "unreachable_rules": [(index, name), ...],
    "cells_per_rule": [int, ...]}``; ``unreachable_rules`` are rules whose every
    cell is already claimed by an earlier rule (0-based indices). Useful to warn
    a retailer editing the table; an uncovered cell is not an error (those
    customers get the fallback segment).
    """
    norm = validate_rules(DEFAULT_SEGMENT_RULES if rules is None else rules)
    which = _match_cells(norm)
    r, f, m = _all_cells()
    counts = np.bincount(which[which >= 0], minlength=len(norm))
    return {
        "uncovered": [
            (int(a), int(b), int(c)) for a, b, c in zip(r[which < 0], f[which < 0], m[which < 0], strict=True)
        ],
        "unreachable_rules": [(i, rule["name"]) for i, rule in enumerate(norm) if counts[i] == 0],
        "cells_per_rule": [int(c) for c in counts],
    }


def assign_segments(
    r: ArrayLike,
    f: ArrayLike,
    m: ArrayLike,
    rules: Sequence[Mapping[str, Any]] | None = None,
    *,
    fallback_segment: str = DEFAULT_FALLBACK_SEGMENT,
) -> pd.DataFrame:
    """Segment customers from their R, F, M scores (integers 1-5).

    Returns a DataFrame (same length and order as the inputs) with columns
    ``segment``, ``rule_index`` (0-based position in the table, -1 for the
    fallback) and ``why`` (one line of text naming the rule and the scores);
    ``segment`` and ``why`` are pandas Categoricals (``.astype(str)`` for text).
    Work is done once per (r, f, m) cell, so a million customers is cheap.
    """
    norm = validate_rules(DEFAULT_SEGMENT_RULES if rules is None else rules)
    r_a, f_a, m_a = (np.asarray(x) for x in (r, f, m))
    if not (r_a.shape == f_a.shape == m_a.shape) or r_a.ndim != 1:
        raise ValueError("r, f and m must be 1-D arrays of the same length")
    for name, a in (("r", r_a), ("f", f_a), ("m", m_a)):
        if a.size and (not np.all(np.isin(a, [1, 2, 3, 4, 5]))):
            raise ValueError(f"{name} scores must be integers 1-5")
    which = _match_cells(norm)
    cr, cf, cm = _all_cells()
    cfm = fm_score(cf, cm)
    seg_names = np.array([norm[w]["name"] if w >= 0 else fallback_segment for w in which], dtype=object)
    whys = np.array(
        [
            (
                f"{norm[w]['name']}: rule {w + 1} ({_describe_rule(norm[w])}) matched"
                if w >= 0
                else f"{fallback_segment}: no rule matched"
            )
            + f" R={a}, F={b}, M={c}, FM={d}"
            for w, a, b, c, d in zip(which, cr, cf, cm, cfm, strict=True)
        ],
        dtype=object,
    )
    cell = _cell_index(r_a, f_a, m_a) if r_a.size else np.zeros(0, dtype=np.int64)
    return pd.DataFrame(
        {"segment": _categorical(seg_names, cell), "rule_index": which[cell], "why": _categorical(whys, cell)}
    )


def _categorical(per_cell: np.ndarray, cell: np.ndarray) -> pd.Categorical:
    """``per_cell[cell]`` as a Categorical: cheap for a million rows of repeated text."""
    categories, codes = np.unique(per_cell.astype(str), return_inverse=True)
    return pd.Categorical.from_codes(codes.ravel()[cell], categories=list(categories))


# --------------------------------------------------------------------------- all together


def score_rfm(
    recency_days: ArrayLike,
    frequency: ArrayLike,
    monetary: ArrayLike,
    *,
    rules: Sequence[Mapping[str, Any]] | None = None,
    fallback_segment: str = DEFAULT_FALLBACK_SEGMENT,
    index: ArrayLike | pd.Index | None = None,
    ties: Ties = "average",
) -> pd.DataFrame:
    """Score and segment customers in one call.

    Parameters
    ----------
    recency_days:
        Days since each customer's last order (fewer = better).
    frequency:
        Number of distinct orders.
    monetary:
        Net spend (may be zero or negative after refunds).
    rules:
        Segment rule table (default :data:`DEFAULT_SEGMENT_RULES`).
    index:
        Customer ids for the result's index (default: the index of
        ``recency_days`` if it is a Series, else 0..n-1).

    Returns a DataFrame with columns ``recency_days, frequency, monetary,
    r_score, f_score, m_score, fm_score, rfm_code`` (e.g. ``"545"``),
    ``segment, rule_index, why`` (``rfm_code``, ``segment``, ``why`` are
    Categoricals: a million rows of text cost next to nothing). Empty input
    gives an empty frame with those columns.
    """
    rec = np.asarray(recency_days, dtype=float)
    freq = np.asarray(frequency, dtype=float)
    mon = np.asarray(monetary, dtype=float)
    if not (rec.shape == freq.shape == mon.shape):
        raise ValueError(f"recency, frequency and monetary differ in shape: {rec.shape}, {freq.shape}, {mon.shape}")
    if index is None and isinstance(recency_days, pd.Series):
        index = recency_days.index
    r = quintile_scores(rec, higher_is_better=False, ties=ties)
    f = quintile_scores(freq, ties=ties)
    m = quintile_scores(mon, ties=ties)
    segments = assign_segments(r, f, m, rules, fallback_segment=fallback_segment)
    out = pd.DataFrame(
        {
            "recency_days": rec,
            "frequency": freq,
            "monetary": mon,
            "r_score": r,
            "f_score": f,
            "m_score": m,
            "fm_score": fm_score(f, m),
            "rfm_code": _categorical(
                np.array([f"{a}{b}{c}" for a, b, c in zip(*_all_cells(), strict=True)], dtype=object),
                _cell_index(r, f, m),
            ),
            "segment": segments["segment"].array,
            "rule_index": segments["rule_index"].to_numpy(),
            "why": segments["why"].array,
        }
    )
    if index is not None:
        out.index = pd.Index(index)
    return out


def empty_score_reasons(values: ArrayLike, scores: ArrayLike, *, letter: str, unit: str) -> list[str]:
    """Why some of the scores 1-5 of one dimension hold no customer, one sentence per empty score.

    Tied customers share one score (see :func:`quintile_scores`), so a value
    held by a fifth of the customers or more covers a whole score band and can
    leave a neighbouring score empty (typically F = 2, next to the many
    one-order customers). ``letter`` is "R", "F" or "M"; ``unit`` names the
    value ("number of orders", "days since the last order").
    """
    v = np.asarray(values, dtype=float)
    s = np.asarray(scores, dtype=np.int64)
    n = len(v)
    if n == 0:
        return []
    empty = [k for k in range(1, 6) if not np.any(s == k)]
    if not empty:
        return []
    uniq, counts = np.unique(v, return_counts=True)
    big = [(float(u), int(c)) for u, c in zip(uniq, counts, strict=True) if c * 5 >= n]
    reasons = []
    for k in empty:
        if big:
            u, c = max(big, key=lambda t: t[1])
            shared = int(s[v == u][0])
            reasons.append(
                f"No customer has {letter} = {k}: {c:,} of {n:,} customers ({100 * c / n:.0f} %) have the same "
                f"{unit} ({u:g}), and tied customers share one score ({letter} = {shared})."
            )
        else:
            reasons.append(
                f"No customer has {letter} = {k}: {n:,} customers with {len(uniq):,} distinct values do not fill "
                "five score bands."
            )
    return reasons


def score_against(worse: int, equal: int, n: int) -> int:
    """The 1-5 score one more customer would get among ``n`` already scored.

    ``worse`` customers have a worse value and ``equal`` the same value. The
    newcomer joins the tie group, whose average rank among ``n + 1`` is
    ``worse + (equal + 2) / 2``; the score is the one of :func:`quintile_scores`
    (so it equals ``quintile_scores`` of the population with the newcomer added).
    """
    if n < 0 or worse < 0 or equal < 0 or worse + equal > n:
        raise ValueError("need 0 <= worse, equal and worse + equal <= n")
    twice_rank = 2 * worse + equal + 2
    return int(min(5, max(1, 1 + (5 * (twice_rank - 1)) // (2 * (n + 1)))))

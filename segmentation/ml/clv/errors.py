"""The errors the CLV models raise when the data cannot support a fit."""

from __future__ import annotations


class InsufficientDataError(ValueError):
    """Too little data to fit a model (e.g. fewer than 2 customers with repeat purchases).

    Callers should catch this and fall back (e.g. to RFM only, or to each
    customer's historical average spend).
    """


class CLVFitError(RuntimeError):
    """The optimiser did not reach finite, plausible parameters."""

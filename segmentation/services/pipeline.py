"""The computation of a run: score, segment, cluster and value the customers of one frame.

:class:`Segmenter` takes the frame of :func:`segmentation.services.aggregation.aggregate_customers`
and adds, in place, the RFM scores and segment (:mod:`segmentation.ml.rfm`), the cluster
(:mod:`segmentation.ml.clustering`), the predicted value and churn figures (:mod:`segmentation.ml.clv`,
:mod:`segmentation.ml.forecast`, chosen by :mod:`segmentation.ml.backtest`).
:func:`current_parameters` is everything that shapes the result; :func:`summarise` turns the
frame into the run's stored summary. Nothing here reads or writes the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from personalization_core.numbers import finite_or_none
from segmentation.conf import app_settings
from segmentation.ml.backtest import backtest, calibration_factor
from segmentation.ml.clustering import RFMClusterer
from segmentation.ml.clv import (
    DAYS_PER_MONTH,
    BetaGeoModel,
    CLVFitError,
    GammaGammaModel,
    InsufficientDataError,
    customer_lifetime_value,
    overdue_gaps,
    probability_active_below,
)
from segmentation.ml.forecast import MAX_AUTO_HORIZON_MONTHS, history_horizon_months, make_forecaster
from segmentation.ml.rfm import DEFAULT_SEGMENT_RULES, empty_score_reasons, score_rfm
from segmentation.services.aggregation import customer_keys

#: days per time unit of the BG/NBD inputs (weeks)
WEEK = 7.0


@dataclass
class RunResult:
    frame: pd.DataFrame
    k: int | None = None
    silhouette: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def current_parameters() -> dict[str, Any]:
    """Everything that shapes a run's result, stored with the run (and used for idempotency)."""
    s = app_settings
    rules = s.SEGMENT_RULES if s.SEGMENT_RULES is not None else DEFAULT_SEGMENT_RULES
    return {
        "currency": settings.OSCAR_DEFAULT_CURRENCY,
        "currency_rates": {k: str(v) for k, v in s.CURRENCY_RATES.items()},
        "excluded_statuses": list(s.EXCLUDED_STATUSES),
        "refunded_statuses": list(s.REFUNDED_STATUSES),
        "subtract_payment_refunds": s.SUBTRACT_PAYMENT_REFUNDS,
        "lookback_days": s.LOOKBACK_DAYS,
        "include_guests": s.INCLUDE_GUESTS,
        "rules": [dict(r) for r in rules],
        "fallback_segment": s.FALLBACK_SEGMENT,
        "k_range": [s.K_MIN, s.K_MAX],
        "cluster_sample_size": s.CLUSTER_SAMPLE_SIZE,
        "random_state": s.RANDOM_STATE,
        "clv_enabled": s.CLV_ENABLED,
        "forecast_horizon_months": s.FORECAST_HORIZON_MONTHS,
        "clv_horizon_days": s.CLV_HORIZON_DAYS,
        "clv_penalizer": s.CLV_PENALIZER,
        "clv_fit_sample_size": s.CLV_FIT_SAMPLE_SIZE,
        "clv_monthly_discount_rate": s.CLV_MONTHLY_DISCOUNT_RATE,
        "forecast_model": s.FORECAST_MODEL,
        "forecast_candidates": list(s.FORECAST_CANDIDATES),
        "forecast_calibrate": s.FORECAST_CALIBRATE,
        "backtest_enabled": s.BACKTEST_ENABLED,
        "backtest_min_customers": s.BACKTEST_MIN_CUSTOMERS,
        "backtest_sample_customers": s.BACKTEST_SAMPLE_CUSTOMERS,
        "churn_probability_above": s.CHURN_PROBABILITY_ABOVE,
        "churn_p_alive_below": s.CHURN_P_ALIVE_BELOW,
        "churn_overdue_gaps": s.CHURN_OVERDUE_GAPS,
    }


class Segmenter:
    """Scores, segments, clusters and values a frame from :func:`aggregate_customers`."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.p = parameters
        configured = parameters.get("forecast_horizon_months", "auto")
        self.horizon_months = MAX_AUTO_HORIZON_MONTHS if configured == "auto" else int(configured)

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        scored = score_rfm(
            df["recency_days"].to_numpy(dtype=float),
            df["frequency"].to_numpy(dtype=float),
            df["monetary"].to_numpy(dtype=float),
            rules=self.p["rules"],
            fallback_segment=self.p["fallback_segment"],
        )
        df["r_score"] = scored["r_score"].to_numpy()
        df["f_score"] = scored["f_score"].to_numpy()
        df["m_score"] = scored["m_score"].to_numpy()
        df["segment"] = scored["segment"].to_numpy()
        return df

    def cluster(self, df: pd.DataFrame, summary: dict[str, Any]) -> tuple[int | None, float | None]:
        k_min, k_max = self.p["k_range"]
        clusterer = RFMClusterer(
            k_range=(k_min, k_max),
            random_state=self.p["random_state"],
            fit_sample_size=self.p["cluster_sample_size"],
            silhouette_sample_size=min(5000, self.p["cluster_sample_size"]),
        ).fit(df["recency_days"], df["frequency"], df["monetary"])
        df["cluster"] = clusterer.labels_.astype(np.int64)
        sil = clusterer.silhouette_scores_.get(clusterer.n_clusters_)
        clusters = clusterer.cluster_summary_.to_dict(orient="records")
        summary["clusters"] = [{k: _json_value(v) for k, v in row.items()} for row in clusters]
        summary["silhouette_by_k"] = {str(k): finite_or_none(v) for k, v in clusterer.silhouette_scores_.items()}
        summary["cluster_note"] = clusterer.degenerate_reason_ or ""
        # enough to place a new customer in a cluster (see what_if): scaling and centres
        summary["cluster_model"] = {
            "mean": [float(v) for v in clusterer.mean_],
            "scale": [float(v) for v in clusterer.scale_],
            "centers": np.asarray(clusterer.cluster_centers_, dtype=float).round(6).tolist(),
        }
        return int(clusterer.n_clusters_), finite_or_none(sil) if sil is not None else None

    def horizon_days(self) -> int:
        return round(self.horizon_months * DAYS_PER_MONTH)

    def resolve_horizon(self, log: pd.DataFrame | None, end_day: int | None) -> int:
        """The months the predicted value and churn probability look ahead, and the backtest holds
        out: ``FORECAST_HORIZON_MONTHS``, or with ``"auto"`` half the shop's order history in whole
        months, between 1 and 12 (a horizon the history can test on itself)."""
        configured = self.p.get("forecast_horizon_months", "auto")
        if configured != "auto":
            self.horizon_months = int(configured)
        elif log is None or log.empty:
            self.horizon_months = MAX_AUTO_HORIZON_MONTHS
        else:
            end = end_day if end_day is not None else int(log["day"].max()) + 1
            self.horizon_months = history_horizon_months(end - int(log["day"].min()))
        return self.horizon_months

    def choose_forecast(self, log: pd.DataFrame | None, end_day: int, summary: dict[str, Any]) -> str:
        """The forecast model for this run: the winner of the backtest on the shop's own orders
        (``FORECAST_MODEL = "auto"``) or the configured one; the backtest goes to ``summary``."""
        configured = self.p.get("forecast_model", "auto")
        candidates = list(self.p.get("forecast_candidates") or [])
        bt: dict[str, Any] = {"status": "skipped", "message": ""}
        summary["backtest"] = bt
        if not self.p.get("backtest_enabled", True):
            bt["message"] = "switched off (SEGMENTATION['BACKTEST_ENABLED'] = False)"
        elif log is None or log.empty:
            bt["message"] = "no orders"
        else:
            horizon = self.horizon_days()
            cutoff = end_day - horizon
            known = log.loc[(log["day"] < cutoff) & log["purchase"], "customer"].nunique()
            if known < self.p.get("backtest_min_customers", 50):
                bt["message"] = (
                    f"{known} customers bought before {_day_iso(cutoff)}, fewer than "
                    f"BACKTEST_MIN_CUSTOMERS = {self.p.get('backtest_min_customers', 50)}"
                )
            else:
                sample = self.p.get("backtest_sample_customers") or 0
                customers = pd.unique(log["customer"])
                if sample and len(customers) > sample:
                    keep = np.random.default_rng(self.p["random_state"]).choice(len(customers), sample, replace=False)
                    log = log[log["customer"].isin(customers[keep])]
                    bt["sampled_customers"] = sample
                try:
                    result = backtest(log, cutoff, horizon, candidates, random_state=self.p["random_state"])
                    bt.update(_json_safe(result))
                    bt["status"] = "done"
                    bt["cutoff"] = _day_iso(cutoff)
                    bt["end"] = _day_iso(end_day)
                except (InsufficientDataError, CLVFitError, ValueError) as exc:
                    bt["message"] = f"backtest failed: {exc}"
        if configured != "auto":
            summary["forecast_choice"] = f"set in SEGMENTATION['FORECAST_MODEL'] = {configured!r}"
            return configured
        if bt.get("winner"):
            summary["forecast_choice"] = "won the backtest on this shop's orders"
            return str(bt["winner"])
        summary["forecast_choice"] = "BG/NBD + Gamma-Gamma (no backtest to choose by)"
        return "bgnbd"

    def predict(
        self, df: pd.DataFrame, summary: dict[str, Any], log: pd.DataFrame | None = None, end_day: int | None = None
    ) -> None:
        """Predicted value and churn of every customer; null fields with a reason on failure.

        Everything looks ``summary["horizon_months"]`` ahead (:meth:`resolve_horizon`). BG/NBD +
        Gamma-Gamma always give the expected purchases; the predicted value and churn probability
        come from the forecast model :meth:`choose_forecast` picks (``log`` is
        :func:`order_day_log`), scaled so that its backtest total was right with
        ``FORECAST_CALIBRATE`` (:meth:`_calibrate`);
        when that model cannot be fitted the BG/NBD figures are used and the run says so. The
        probability active is the chance of an order in the horizon, 1 - the churn probability,
        and the churn flags (:meth:`flag_churn`) follow it: every churn figure comes from one model.
        ``end_day`` is the day after the as-of date (day number, UTC). ``summary["clv"]`` says
        what was fitted.
        """
        for column in ("p_alive", "expected_purchases_90d", "predicted_value", "churn_probability"):
            df[column] = np.nan
        summary["horizon_months"] = self.resolve_horizon(log, end_day)
        clv = self._predict_btyd(df)
        summary["clv"] = clv
        if clv["status"] == "fitted" and log is not None and not log.empty:
            self._apply_forecast(df, log, int(end_day if end_day is not None else log["day"].max() + 1), summary, clv)
        # one model for every churn figure: the chance of an order in the horizon is 1 - P(no order)
        has_prob = np.isfinite(df["churn_probability"].to_numpy(dtype=float))
        df.loc[has_prob, "p_alive"] = 1.0 - df.loc[has_prob, "churn_probability"]
        self.flag_churn(df)

    def _predict_btyd(self, df: pd.DataFrame) -> dict[str, Any]:
        """The BG/NBD + Gamma-Gamma columns of :meth:`predict`, when switched on and fittable;
        returns the run's ``clv`` summary (status, message, fitted parameters)."""
        x, t_x, big_t, mean_value = btyd_inputs(df)
        clv: dict[str, Any] = {"status": "skipped", "message": "", "params": {}}
        if not self.p["clv_enabled"]:
            clv["message"] = "predicted value is switched off (SEGMENTATION['CLV_ENABLED'] = False)"
        elif len(df) == 0:
            clv["message"] = "no customers"
        else:
            try:
                self._fit_btyd(df, clv, x, t_x, big_t, mean_value)
            except (InsufficientDataError, CLVFitError, ValueError, FloatingPointError) as exc:
                clv["status"] = "not fitted"
                clv["message"] = f"predicted value not available: {exc}"
        return clv

    def _fit_btyd(
        self,
        df: pd.DataFrame,
        clv: dict[str, Any],
        x: np.ndarray,
        t_x: np.ndarray,
        big_t: np.ndarray,
        mean_value: np.ndarray,
    ) -> None:
        """Fit BG/NBD and Gamma-Gamma on (a sample of) the customers and fill every customer's
        ``p_alive``, ``expected_purchases_90d``, ``predicted_value`` and ``churn_probability``
        (empty where a figure is not finite); ``clv`` gets the status, parameters and notes."""
        n = len(df)
        sample = self.p.get("clv_fit_sample_size") or n
        fit = (
            np.sort(np.random.default_rng(self.p["random_state"]).choice(n, sample, replace=False))
            if n > sample
            else slice(None)
        )
        bg = BetaGeoModel(penalizer=self.p["clv_penalizer"], days_per_unit=WEEK).fit(x[fit], t_x[fit], big_t[fit])
        p_alive = bg.probability_alive(x, t_x, big_t)
        expected = bg.expected_purchases(self.p["clv_horizon_days"] / WEEK, x, t_x, big_t)
        gg, gg_note = self._fit_gamma_gamma(x[fit], mean_value[fit])
        value = customer_lifetime_value(
            bg,
            gg,
            x,
            t_x,
            big_t,
            np.clip(mean_value, 0, None),
            months=self.horizon_months,
            days_per_unit=WEEK,
            monthly_discount_rate=self.p["clv_monthly_discount_rate"],
        )
        finite = np.isfinite(p_alive) & np.isfinite(expected) & np.isfinite(value)
        df["p_alive"] = np.where(finite, p_alive, np.nan)
        df["expected_purchases_90d"] = np.where(finite, expected, np.nan)
        df["predicted_value"] = np.where(finite, np.round(value, 2), np.nan)
        clv["status"] = "fitted"
        clv["params"] = {"bgnbd": bg.params_, **({"gamma_gamma": gg.params_} if gg is not None else {})}
        clv["message"] = gg_note
        if not finite.all():
            clv["message"] += f" {int((~finite).sum())} customers without a finite prediction were left empty."
        df["churn_probability"] = np.where(
            finite, bg.probability_no_purchase(self.horizon_days() / WEEK, x, t_x, big_t), np.nan
        )
        clv["model"] = "bgnbd"

    def _fit_gamma_gamma(self, x: np.ndarray, mean_value: np.ndarray) -> tuple[GammaGammaModel | None, str]:
        """Gamma-Gamma fitted on these customers, or ``None`` with a note when it cannot be (each
        customer's own mean spend then stands in)."""
        try:
            gg = GammaGammaModel(penalizer=self.p["clv_penalizer"]).fit(x, mean_value)
            gg.expected_average_spend(x[:1], mean_value[:1])  # raises if q <= 1
        except (InsufficientDataError, CLVFitError, ValueError) as exc:
            return None, f"Gamma-Gamma not fitted ({exc}); each customer's own mean spend is used"
        return gg, ""

    def flag_churn(self, df: pd.DataFrame) -> None:
        """The churn flags of every customer: ``churn_p_alive`` (low probability active),
        ``overdue_gaps`` / ``churn_overdue`` (typical gaps since the last order) and
        ``churn_risk``.

        One model gives both the value and the churn probability, so ``churn_risk`` follows the
        churn probability where there is one; without it, low P(active) or overdue stands in.
        """
        n = len(df)
        p_alive = df["p_alive"].to_numpy(dtype=float)
        has_p = np.isfinite(p_alive)
        low = np.zeros(n, dtype=bool)
        if has_p.any():
            low[has_p] = probability_active_below(p_alive[has_p], self.p["churn_p_alive_below"])
        span = (df["last_day"] - df["first_day"]).to_numpy(dtype=float)
        if n:
            gaps = overdue_gaps(
                df["recency_days"].to_numpy(dtype=float),
                df["n_days"].to_numpy(dtype=float),
                span,
                overdue_after=self.p["churn_overdue_gaps"],
            )
            df["overdue_gaps"] = np.round(gaps["overdue_gaps"].to_numpy(dtype=float), 3)
            df["churn_overdue"] = gaps["overdue"].to_numpy(dtype=bool)
        else:
            df["overdue_gaps"] = np.zeros(0)
            df["churn_overdue"] = np.zeros(0, dtype=bool)
        df.loc[~np.isfinite(df["overdue_gaps"]), "overdue_gaps"] = np.nan
        df["churn_p_alive"] = low
        churn_p = df["churn_probability"].to_numpy(dtype=float)
        has_prob = np.isfinite(churn_p)
        either_rule = low | df["churn_overdue"].to_numpy(dtype=bool)
        df["churn_risk"] = np.where(has_prob, np.nan_to_num(churn_p) > self.p["churn_probability_above"], either_rule)

    def _apply_forecast(
        self, df: pd.DataFrame, log: pd.DataFrame, end_day: int, summary: dict[str, Any], clv: dict[str, Any]
    ) -> None:
        """Replace the BG/NBD value and churn probability with the chosen model's, when it is another;
        then calibrate the value on the backtest and say whether it beat "same as last period"."""
        chosen = self.choose_forecast(log, end_day, summary)
        clv["model"] = "bgnbd"
        if chosen != "bgnbd":
            try:
                fc = make_forecaster(chosen, self.p["random_state"]).fit_predict(log, end_day, self.horizon_days())
            except (InsufficientDataError, CLVFitError, ValueError) as exc:
                clv["message"] = (
                    clv.get("message", "") + f" {chosen} could not be fitted ({exc}); BG/NBD is used."
                ).strip()
                fc = None
            if fc is not None:
                keys = customer_keys(df)
                value = fc.value.reindex(keys).to_numpy(dtype=float)
                ok = np.isfinite(value)
                df["predicted_value"] = np.where(ok, np.round(value, 2), df["predicted_value"])
                if fc.churn_probability is not None:
                    prob = fc.churn_probability.reindex(keys).to_numpy(dtype=float)
                    df["churn_probability"] = np.where(np.isfinite(prob), prob, df["churn_probability"])
                clv["model"] = chosen
                clv["notes"] = list(fc.notes)
        self._calibrate(df, summary, clv["model"])

    def _calibrate(self, df: pd.DataFrame, summary: dict[str, Any], model: str) -> None:
        """With ``FORECAST_CALIBRATE``, scale the predicted values so that the model's total on the
        backtest equals what its customers really spent there (``summary["calibration"]`` holds the
        backtest's ratio and the factor either way), and record in ``summary["versus_naive"]`` (when
        the backtest scored both) how the model did against "same as last period" on MAE and
        Spearman (``beats`` only when better on both)."""
        results = (summary.get("backtest") or {}).get("candidates") or {}
        mine, naive = results.get(model) or {}, results.get("last_period") or {}
        factor = calibration_factor(mine.get("total_ratio"))
        if factor is not None:
            applied = bool(self.p.get("forecast_calibrate"))
            if applied:
                df["predicted_value"] = np.round(df["predicted_value"] * factor, 2)
            summary["calibration"] = {
                "factor": round(factor, 4),
                "backtest_total_ratio": round(mine["total_ratio"], 4),
                "applied": applied,
            }
        if model == "last_period":
            summary["versus_naive"] = {"beats": False, "naive": True}
            return
        if not (mine and naive):  # no backtest, or one without both: nothing to compare
            return
        mae, naive_mae = mine.get("mae"), naive.get("mae")
        rho, naive_rho = mine.get("spearman"), naive.get("spearman")
        better_mae = _finite(mae) and _finite(naive_mae) and mae < naive_mae
        better_rho = _finite(rho) and (not _finite(naive_rho) or rho > naive_rho)
        summary["versus_naive"] = {
            "beats": bool(better_mae and better_rho),
            "naive": False,
            "mae": finite_or_none(mae),
            "naive_mae": finite_or_none(naive_mae),
            "spearman": finite_or_none(rho),
            "naive_spearman": finite_or_none(naive_rho),
        }


def btyd_inputs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each customer's BG/NBD inputs in weeks (repeat purchase days x, recency t_x, age T) and
    mean spend per purchase day.

    The mean over all purchase days is the Gamma-Gamma input: the spend of repeat days only is
    not separable in one grouped query, and the average over all days is the usual stand-in.
    """
    x = (df["n_days"].to_numpy(dtype=float) - 1).clip(min=0)
    t_x = np.where(x > 0, (df["last_day"] - df["first_day"]).to_numpy(dtype=float), 0.0) / WEEK
    big_t = np.maximum(df["T_days"].to_numpy(dtype=float) / WEEK, t_x)
    mean_value = df["monetary"].to_numpy(dtype=float) / df["n_days"].clip(lower=1).to_numpy(dtype=float)
    return x, t_x, big_t, mean_value


def _day_iso(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day))).isoformat()


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN and inf become None, NumPy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return finite_or_none(value)
    return value


def _json_value(v: Any) -> Any:
    if isinstance(v, np.integer | int):
        return int(v)
    if isinstance(v, np.floating | float):
        return finite_or_none(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def summarise(df: pd.DataFrame, summary: dict[str, Any]) -> dict[str, int]:
    """Per-segment figures, the R-by-F heat map and the churn share (stored in ``run.summary``)."""
    n = len(df)
    total_revenue = float(df["monetary"].clip(lower=0).sum()) if n else 0.0
    segments = []
    if n:
        g = df.groupby("segment", sort=False)
        agg = g.agg(
            customers=("segment", "size"),
            revenue=("monetary", "sum"),
            mean_recency=("recency_days", "mean"),
            mean_frequency=("frequency", "mean"),
            mean_monetary=("monetary", "mean"),
            mean_r=("r_score", "mean"),
            mean_f=("f_score", "mean"),
            mean_m=("m_score", "mean"),
            mean_predicted_value=("predicted_value", "mean"),
            mean_churn_probability=("churn_probability", "mean"),
            churn_risk=("churn_risk", "mean"),
        ).sort_values("customers", ascending=False)
        for name, row in agg.iterrows():
            rec = {k: _json_value(v) for k, v in row.items()}
            rec["segment"] = str(name)
            rec["customers"] = int(row["customers"])
            rec["share"] = float(row["customers"]) / n
            rec["revenue_share"] = (max(float(row["revenue"]), 0.0) / total_revenue) if total_revenue > 0 else None
            segments.append(rec)
    summary["segments"] = segments
    heat = np.zeros((5, 5), dtype=np.int64)  # rows R 1..5, columns F 1..5
    if n:
        np.add.at(heat, (df["r_score"].to_numpy(dtype=int) - 1, df["f_score"].to_numpy(dtype=int) - 1), 1)
    summary["heatmap_rf"] = heat.tolist()
    summary["heatmap_notes"] = _heatmap_notes(df) if n else []
    summary["forecast_disagreements"] = forecast_disagreements(segments)
    summary["churn_share"] = float(df["churn_risk"].mean()) if n else None
    summary["revenue"] = round(total_revenue, 2)
    summary["guests"] = int((df["guest"] != "").sum()) if n else 0
    return {s["segment"]: s["customers"] for s in segments}


def _heatmap_notes(df: pd.DataFrame) -> list[str]:
    return empty_score_reasons(
        df["recency_days"].to_numpy(dtype=float), df["r_score"].to_numpy(), letter="R", unit="days since the last order"
    ) + empty_score_reasons(
        df["frequency"].to_numpy(dtype=float), df["f_score"].to_numpy(), letter="F", unit="number of orders"
    )


def forecast_disagreements(segments: list[dict[str, Any]], at_risk_share: float = 0.9) -> list[str]:
    """Segments nearly all at churn risk yet forecast to spend more than they ever did (should be none)."""
    out = []
    for s in segments:
        risk, value, spent = s.get("churn_risk"), s.get("mean_predicted_value"), s.get("mean_monetary")
        if risk is None or value is None or spent is None:
            continue
        if risk >= at_risk_share and value > max(spent, 0.0):
            out.append(
                f"{s['segment']}: {100 * risk:.0f} % at churn risk, but forecast to spend {value:,.2f} "
                f"against {spent:,.2f} so far"
            )
    return out


def _finite(value: Any) -> bool:
    return value is not None and bool(np.isfinite(value))

"""Do the A/B report's intervals cover the truth? Simulated shoppers on a generated shop (fixed seeds).

    .venv/bin/python -m benchmarks.uplift_simulation                      # 200 experiments per scenario, ~1.5 minutes
    .venv/bin/python -m benchmarks.uplift_simulation --experiments 1000 --control-share 0.5

The shop: ``--products`` products with log-normal prices and Zipf popularity. Each visitor is
assigned to control (``--control-share``, default 10 %) or treatment at random, views a geometric
number of pages (mean 4), each with one recommendation block of 4 products: control blocks show
best sellers (the 50 most popular products), treatment blocks personalised picks (the whole
catalogue by popularity). Each shown product is clicked with the arm's CTR times the visitor's own
propensity (gamma, mean 1: some visitors click much more than others); a click becomes a purchase
of that product with a fixed probability; independently of the blocks, the visitor buys an
"organic" basket with a fixed probability and a log-normal value (heavy tail: the mean is 1.7
times the median). So every true value is known in closed form (conversion rate, revenue and
orders per visitor, CTR per product impression, computed from the parameters and the catalogue).

Each experiment simulates ``--visitors`` visitors, reduces them to the report's sufficient
statistics (per arm: visitors, converted visitors, ``SUM`` and ``SUM`` of squares of revenue and
orders per visitor, clicks, product impressions) and passes them to
``recommender.ml.experiments``. Four scenarios, ``--experiments`` runs each:

* ``effect``: the true treatment effect above, at ``--visitors`` (a small shop's few weeks);
* ``a/a``: both arms get the treatment's behaviour (no true effect);
* ``effect (small)`` and ``a/a (small)``: the same at ``--small-visitors``: what the verdict says
  on a sample too small to conclude;
* ``planned (conversion rate)`` and ``planned (revenue per visitor)``: at the size
  ``sample_size_per_arm`` asks for to detect the true uplift of that metric with 80 % power (for
  revenue from the true per-visitor standard deviation, measured once on 2,000,000 simulated
  control visitors); the metric's "detected" should be about 80 %. ``--no-planned`` skips them.

Reported per metric: how often the 95 % interval covers the true relative uplift and the true
absolute difference, in A/A how often it covers 0 (target 93-97 %), how often the effect is
detected (verdict conclusive in the true direction = power; conclusive in the wrong direction is
counted apart) and the power NormalIndPower predicts. Prints a markdown table and writes JSON
(default ``benchmarks/results/uplift_simulation.json``).
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from benchmarks.report import write_json
from recommender.ml.experiments import (
    Comparison,
    RatioSums,
    compare_means,
    compare_proportions,
    compare_ratios,
    sample_size_per_arm,
)

REPO = Path(__file__).resolve().parents[1]
METRICS = ("conversion rate", "revenue per visitor", "orders per visitor", "CTR (impressions)", "CTR (visitors)")
BEST_SELLERS = 50
PLANNED = ("conversion rate", "revenue per visitor")  # the metrics whose planned sample size is simulated


@dataclass(frozen=True)
class Arm:
    """How the visitors of one arm behave."""

    ctr: float  # click probability of one shown product (before the visitor's own propensity)
    pick: np.ndarray  # probability of each product being the one shown (and so clicked)


@dataclass(frozen=True)
class Shop:
    prices: np.ndarray
    control: Arm
    treatment: Arm
    mean_pages: float = 4.0  # pages per visit (geometric, at least 1), one block per page
    block: int = 4  # products per block
    propensity_shape: float = 2.0  # gamma shape of the visitor's click propensity (mean 1)
    buy_after_click: float = 0.08
    organic: float = 0.025  # probability of buying a basket without the blocks
    basket_mu: float = 4.0  # log-normal basket value (median e^4 = 55, mean 94)
    basket_sigma: float = 1.05


def make_shop(products: int, seed: int, ctr_control: float, ctr_treatment: float) -> Shop:
    rng = np.random.default_rng(seed)
    prices = np.round(rng.lognormal(3.0, 0.9, products), 2) + 0.99  # median ~21, a long tail of expensive ones
    popularity = 1.0 / np.arange(1, products + 1) ** 1.1
    rng.shuffle(popularity)
    best = np.argsort(-popularity)[:BEST_SELLERS]
    control_pick = np.zeros(products)
    control_pick[best] = popularity[best]
    control_pick /= control_pick.sum()
    return Shop(
        prices=prices,
        control=Arm(ctr_control, control_pick),
        treatment=Arm(ctr_treatment, popularity / popularity.sum()),
    )


# ---------------------------------------------------------------------------------------------- truth


def true_values(shop: Shop, arm: Arm) -> dict[str, float]:
    """The arm's expected value of each metric, from the parameters (no simulation)."""
    q = 1 / shop.mean_pages  # geometric pages: P(k) = (1 - q)^(k-1) q, PGF q z / (1 - (1 - q) z)
    k = shop.propensity_shape

    def no_purchase_from_blocks(g: float) -> float:
        z = (1 - min(arm.ctr * g, 1.0) * shop.buy_after_click) ** shop.block  # per page
        return q * z / (1 - (1 - q) * z)

    p_none = integrate.quad(lambda g: no_purchase_from_blocks(g) * stats.gamma.pdf(g, k, scale=1 / k), 0, np.inf)[0]
    clicks = shop.mean_pages * shop.block * arm.ctr  # the propensity's mean is 1
    purchases = clicks * shop.buy_after_click
    basket = math.exp(shop.basket_mu + shop.basket_sigma**2 / 2)
    return {
        "conversion rate": 1 - (1 - shop.organic) * p_none,
        "revenue per visitor": shop.organic * basket + purchases * float(arm.pick @ shop.prices),
        "orders per visitor": shop.organic + purchases,
        "CTR (impressions)": arm.ctr,
        "CTR (visitors)": arm.ctr,
    }


# ---------------------------------------------------------------------------------------------- simulation


def simulate_arm(rng: np.random.Generator, shop: Shop, arm: Arm, n: int) -> dict[str, float]:
    """``n`` visitors of one arm, reduced to the report's sufficient statistics."""
    pages = rng.geometric(1 / shop.mean_pages, n)
    shown = pages * shop.block
    propensity = rng.gamma(shop.propensity_shape, 1 / shop.propensity_shape, n)
    clicks = rng.binomial(shown, np.minimum(arm.ctr * propensity, 1.0))
    bought = rng.binomial(clicks, shop.buy_after_click)
    products = rng.choice(len(shop.prices), size=int(bought.sum()), p=arm.pick)
    revenue = np.bincount(np.repeat(np.arange(n), bought), weights=shop.prices[products], minlength=n)
    organic = rng.random(n) < shop.organic
    revenue[organic] += rng.lognormal(shop.basket_mu, shop.basket_sigma, int(organic.sum()))
    orders = bought + organic
    return {
        "n": n,
        "converted": int((orders > 0).sum()),
        "revenue": float(revenue.sum()),
        "revenue_sq": float((revenue * revenue).sum()),
        "orders": float(orders.sum()),
        "orders_sq": float((orders * orders).sum()),
        "ctr": RatioSums(
            n,
            float(clicks.sum()),
            float(shown.sum()),
            float((clicks * clicks).sum()),
            float((shown * shown).sum()),
            float((clicks * shown).sum()),
        ),
    }


def compare(control: dict[str, float], treatment: dict[str, float]) -> dict[str, Comparison]:
    c, t = control, treatment
    return {
        "conversion rate": compare_proportions(c["converted"], c["n"], t["converted"], t["n"]),
        "revenue per visitor": compare_means(
            c["n"], c["revenue"], c["revenue_sq"], t["n"], t["revenue"], t["revenue_sq"]
        ),
        "orders per visitor": compare_means(
            c["n"], c["orders"], c["orders_sq"], t["n"], t["orders"], t["orders_sq"], metric="orders per visitor"
        ),
        "CTR (impressions)": compare_proportions(
            int(c["ctr"].x), int(c["ctr"].y), int(t["ctr"].x), int(t["ctr"].y), metric="CTR", unit="impressions"
        ),
        "CTR (visitors)": compare_ratios(c["ctr"], t["ctr"]),
    }


def run_experiment(shop: Shop, visitors: int, control_share: float, aa: bool, seed: tuple[int, ...]):
    rng = np.random.default_rng(seed)
    n_control = int(rng.binomial(visitors, control_share))
    control_arm = shop.treatment if aa else shop.control
    return compare(
        simulate_arm(rng, shop, control_arm, n_control),
        simulate_arm(rng, shop, shop.treatment, visitors - n_control),
    )


def _covers(low: float | None, high: float | None, value: float) -> bool:
    return (low is None or low <= value) and (high is None or value <= high)


def verdict_kind(r: Comparison) -> str:
    if r.conclusive:
        return "higher" if (r.diff or 0) > 0 else "lower"
    return "too early" if r.verdict.startswith("Too early") else "no clear difference"


def scenario(
    name: str, shop: Shop, visitors: int, control_share: float, experiments: int, seed: int, aa: bool, bar: Any
) -> dict[str, Any]:
    truth_c = true_values(shop, shop.treatment if aa else shop.control)
    truth_t = true_values(shop, shop.treatment)
    counts: dict[str, collections.Counter] = {m: collections.Counter() for m in METRICS}
    verdicts: dict[str, collections.Counter] = {m: collections.Counter() for m in METRICS}
    examples: dict[str, dict[str, str]] = {m: {} for m in METRICS}
    started = time.perf_counter()
    for i in range(experiments):
        result = run_experiment(shop, visitors, control_share, aa, (seed, zlib.crc32(name.encode()), i))
        for metric, r in result.items():
            uplift = truth_t[metric] / truth_c[metric] - 1
            diff = truth_t[metric] - truth_c[metric]
            got = counts[metric]
            got["covers_uplift"] += r.uplift is not None and _covers(r.uplift_low, r.uplift_high, uplift)
            got["covers_diff"] += r.diff_low is not None and _covers(r.diff_low, r.diff_high, diff)
            right = not aa and ((r.diff or 0) > 0) == (diff > 0)  # no direction is right in A/A
            got["interval_above_0"] += r.diff_low is not None and r.diff_low > 0
            got["interval_below_0"] += r.diff_high is not None and r.diff_high < 0
            got["conclusive"] += r.conclusive
            got["conclusive_higher"] += r.conclusive and (r.diff or 0) > 0
            got["conclusive_lower"] += r.conclusive and (r.diff or 0) < 0
            got["detected"] += r.conclusive and right
            got["wrong_direction"] += r.conclusive and not right and not aa
            got["unbounded_uplift"] += r.uplift_low is None or r.uplift_high is None
            kind = verdict_kind(r)
            verdicts[metric][kind] += 1
            examples[metric].setdefault(kind, r.verdict)
        bar.update(1)
    out: dict[str, Any] = {
        "scenario": name,
        "visitors": visitors,
        "control_share": control_share,
        "experiments": experiments,
        "seconds": round(time.perf_counter() - started, 2),
        "metrics": {},
    }
    for metric in METRICS:
        got = counts[metric]
        out["metrics"][metric] = {
            "true_control": truth_c[metric],
            "true_treatment": truth_t[metric],
            "true_uplift": truth_t[metric] / truth_c[metric] - 1,
            "true_diff": truth_t[metric] - truth_c[metric],
            **{
                key: got[key] / experiments
                for key in (
                    "covers_uplift",
                    "covers_diff",
                    "interval_above_0",
                    "interval_below_0",
                    "conclusive",
                    "conclusive_higher",
                    "conclusive_lower",
                )
            },
            "detected": got["detected"] / experiments,
            "wrong_direction": got["wrong_direction"] / experiments,
            "unbounded_uplift": got["unbounded_uplift"] / experiments,
            "verdicts": {kind: n / experiments for kind, n in verdicts[metric].most_common()},
            "example_verdicts": examples[metric],
        }
    return out


def predicted_power(shop: Shop, visitors: int, control_share: float, sd: dict[str, float]) -> dict[str, float | None]:
    """NormalIndPower's power for the true effect at this size (``sd``: true per-visitor sd of the means)."""
    c, t = true_values(shop, shop.control), true_values(shop, shop.treatment)
    n_c = visitors * control_share
    ratio = (1 - control_share) / control_share
    out: dict[str, float | None] = {}
    for metric in METRICS:
        if metric in sd:
            effect = abs(t[metric] - c[metric]) / sd[metric]
        else:
            if metric == "CTR (visitors)":  # no closed form with the visitors' propensity: not predicted
                out[metric] = None
                continue
            n_c_m = n_c * shop.mean_pages * shop.block if metric == "CTR (impressions)" else n_c
            out[metric] = float(
                NormalIndPower().power(abs(proportion_effectsize(t[metric], c[metric])), n_c_m, 0.05, ratio)
            )
            continue
        out[metric] = float(NormalIndPower().power(effect, n_c, 0.05, ratio))
    return out


def per_visitor_sd(shop: Shop, seed: int, n: int = 2_000_000) -> dict[str, float]:
    """Per-visitor standard deviation of revenue and orders in control, from one large simulated sample."""
    s = simulate_arm(np.random.default_rng((seed, 99)), shop, shop.control, n)
    return {
        "revenue per visitor": math.sqrt(s["revenue_sq"] / n - (s["revenue"] / n) ** 2),
        "orders per visitor": math.sqrt(s["orders_sq"] / n - (s["orders"] / n) ** 2),
    }


# ---------------------------------------------------------------------------------------------- report


def table(results: list[dict[str, Any]]) -> str:
    by_name = {r["scenario"]: r for r in results}
    lines = [
        "| visitors | metric | true control | true treatment | true uplift | covers uplift | covers diff "
        "| A/A covers 0 | detected | predicted power | A/A conclusive (higher / lower) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs = [("effect", "a/a"), ("effect (small)", "a/a (small)")]
    pairs += [(f"planned ({metric})", None) for metric in PLANNED]
    for effect, aa in pairs:
        if effect not in by_name:
            continue
        e = by_name[effect]
        label = effect.replace("planned (", " (planned for ") if effect.startswith("planned") else ""
        a = by_name.get(aa) if aa else None
        for metric in METRICS:
            m = e["metrics"][metric]
            fmt_v = (lambda v: f"{v:.4f}") if "per visitor" in metric else (lambda v: f"{v * 100:.3f} %")
            am = a["metrics"][metric] if a else None
            aa_covers = f"{am['covers_diff'] * 100:.1f} %" if am else "-"
            aa_alarms = "-"
            if am:
                aa_alarms = f"{am['conclusive'] * 100:.1f} % "
                aa_alarms += f"({am['conclusive_higher'] * 100:.1f} / {am['conclusive_lower'] * 100:.1f})"
            power = e["predicted_power"][metric]
            lines.append(
                f"| {e['visitors']:,}{label} | {metric} "
                f"| {fmt_v(m['true_control'])} | {fmt_v(m['true_treatment'])} | {m['true_uplift'] * 100:+.1f} % "
                f"| {m['covers_uplift'] * 100:.1f} % | {m['covers_diff'] * 100:.1f} % "
                f"| {aa_covers} "
                f"| {m['detected'] * 100:.1f} % | {f'{power * 100:.1f} %' if power is not None else '-'} "
                f"| {aa_alarms} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=200, help="simulated experiments per scenario")
    parser.add_argument("--visitors", type=int, default=40_000, help="visitors per experiment (both arms)")
    parser.add_argument("--small-visitors", type=int, default=4_000, help="visitors per experiment, small sample")
    parser.add_argument("--control-share", type=float, default=0.1, help="share of visitors in control")
    parser.add_argument("--ctr-control", type=float, default=0.015)
    parser.add_argument("--ctr-treatment", type=float, default=0.0225)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-planned", action="store_true", help="skip the run at the planned sample size")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "uplift_simulation.json")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    shop = make_shop(args.products, args.seed, args.ctr_control, args.ctr_treatment)
    truth_c = true_values(shop, shop.control)
    truth_t = true_values(shop, shop.treatment)
    sd = per_visitor_sd(shop, args.seed)
    planned = {
        metric: sample_size_per_arm(
            truth_c[metric],
            truth_t[metric] / truth_c[metric] - 1,
            sd=sd.get(metric),
            control_share=args.control_share,
        )
        for metric in PLANNED
    }
    runs = [
        ("effect", args.visitors, False),
        ("a/a", args.visitors, True),
        ("effect (small)", args.small_visitors, False),
        ("a/a (small)", args.small_visitors, True),
    ]
    if not args.no_planned:
        runs += [(f"planned ({metric})", size.total, False) for metric, size in planned.items()]
    results = []
    started = time.perf_counter()
    with tqdm(total=len(runs) * args.experiments, desc="experiments", file=sys.stderr) as bar:
        for name, visitors, aa in runs:
            r = scenario(name, shop, visitors, args.control_share, args.experiments, args.seed, aa, bar)
            r["predicted_power"] = predicted_power(shop, visitors, args.control_share, sd)
            results.append(r)
    out = {
        "experiments": args.experiments,
        "control_share": args.control_share,
        "seed": args.seed,
        "planned": {metric: asdict(size) for metric, size in planned.items()},
        "per_visitor_sd_control": sd,
        "seconds": round(time.perf_counter() - started, 1),
        "scenarios": results,
    }
    print(table(results))
    print()
    for r in results:
        if r["scenario"] in ("effect", "effect (small)", "a/a (small)"):
            print(f"What the verdicts say, {r['scenario']} ({r['visitors']:,} visitors):")
            for metric in ("conversion rate", "revenue per visitor"):
                shares = ", ".join(
                    f"{kind} {share * 100:.1f} %" for kind, share in r["metrics"][metric]["verdicts"].items()
                )
                print(f"  {metric}: {shares}")
                for kind, text in r["metrics"][metric]["example_verdicts"].items():
                    print(f"    e.g. ({kind}) {text}")
    print(f"\n{out['seconds']} s")
    for metric, size in planned.items():
        print(f"visitors needed to detect the true {metric} uplift with 80 % power: {size.total:,}")
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()

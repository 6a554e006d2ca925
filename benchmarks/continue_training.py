"""How should a network that stopped early on the most recent sessions learn them afterwards?

    python -m benchmarks.continue_training ../shared/data/yoochoose1_64 [--seed 0] [--json PATH]

Never touches the test file: the most recent 10 % of the *training* sessions are held out as a
development test (every prefix of every session scored, up to 20,000 cases, full ranking), and
the network is fitted on the rest exactly as ``fit`` does it (it carves its own validation
split, the most recent 10 % of what it gets, and stops early on it). Then, from the same
early-stopped weights each time, the candidate ways of learning the validation split are
compared side by side:

* ``none``: keep the early-stopped network (``refit=False``);
* ``val``: one pass over the validation sessions at the first, the best epoch's, or the
  geometric middle of the two learning rates (``refit``'s default is the middle);
* ``val x2``: two passes at the middle learning rate;
* ``recent 20 / 30 / 50 %``: one pass over that share of the most recent sessions (the
  validation split is the first 10 %);
* ``all``: one more pass over training + validation at the best epoch's learning rate.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

from benchmarks.report import write_json
from recommender.ml.datasets import load_srgnn_folder, validation_split
from recommender.ml.evaluation import evaluate_next_item
from recommender.ml.sequence import GRURecommender
from recommender.ml.tuning import validation_cases


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    data = load_srgnn_folder(args.data_dir)
    train, dev = validation_split(data.train, 0.1)
    cases = validation_cases(dev, 20000)
    inner_val = validation_split(train, 0.1)[1]  # what ``fit`` carves for itself
    t0 = time.perf_counter()
    model = GRURecommender(seed=args.seed, refit=False, verbose=True).fit(train)
    fit_s = time.perf_counter() - t0
    lr_first = model.lr
    lr_best = lr_first * model.lr_decay**model.best_epoch_
    lr_mid = math.sqrt(lr_first * lr_best)
    variants = [
        ("none", None, 0.0, 0),
        ("val, first lr", inner_val, lr_first, 1),
        ("val, best epoch's lr", inner_val, lr_best, 1),
        ("val, middle lr (refit default)", inner_val, lr_mid, 1),
        ("val x2, middle lr", inner_val, lr_mid, 2),
        *[(f"recent {round(100 * f)} %, middle lr", validation_split(train, f)[1], lr_mid, 1) for f in (0.2, 0.3, 0.5)],
        ("all, best epoch's lr", train, lr_best, 1),
    ]
    rows = []
    for label, part, lr, passes in variants:
        variant = copy.deepcopy(model)  # the same early-stopped weights for every variant
        t = time.perf_counter()
        for p in range(passes):
            variant.continue_training(part, seed=args.seed + p, lr=lr)
        seconds = time.perf_counter() - t
        m = evaluate_next_item(variant, cases, ks=(20,))
        rows.append({"variant": label, "lr": lr, "hr@20": 100 * m["hr@20"], "mrr@20": 100 * m["mrr@20"], "s": seconds})
    name = Path(args.data_dir).name
    print(
        f"\n{name}: fit on {len(train)} sessions ({fit_s:.0f} s, best epoch {model.best_epoch_}), "
        f"development test = {len(cases)} cases from the {len(dev)} most recent training sessions\n"
    )
    print("| continuation | lr | HR@20 | MRR@20 | seconds |\n|---|---|---|---|---|")
    for r in rows:
        lr = f"{r['lr']:.2e}" if r["lr"] else "-"
        print(f"| {r['variant']} | {lr} | {r['hr@20']:.2f} | {r['mrr@20']:.2f} | {r['s']:.1f} |")
    if args.json:
        write_json(args.json, {"data": name, "seed": args.seed, "rows": rows})
    return rows


if __name__ == "__main__":
    main()

"""Active learning against random sampling on the demo digits, at equal label budgets.

For each seed, both runs share the held-out quarter, the initial random labels and the estimator
(the founding random forest, seeded alike); they differ only in how each round's items are chosen.
The mean held-out accuracy over the seeds is printed per label budget, then two targets:

(a) at every budget on the curve, active learning's mean accuracy is at least random's;
(b) active learning reaches random sampling's final accuracy with at most 60 % of random's labels.

The exit status is 1 when a target is missed, so the result can be checked by a script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from zooflow.al.demo_data import write_digits_pool
from zooflow.al.learner import DEFAULT_STRATEGY, STRATEGIES
from zooflow.al.simulate import simulate

OUT = Path(__file__).resolve().parent / "out"
LABEL_FRACTION_TARGET = 0.6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY, help=f"default {DEFAULT_STRATEGY} (zooflow's default; the founding loop used uncertainty)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--initial", type=int, default=20, help="random labels before the first round (default 20)")
    parser.add_argument("--batch", type=int, default=10, help="labels bought per round (default 10)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds (default 30: 320 labels, a quarter of the pool)")
    args = parser.parse_args(argv)

    pool = write_digits_pool(OUT / "digits")
    started = time.monotonic()
    runs: dict[str, list[dict]] = {args.strategy: [], "random": []}
    for seed in range(args.seeds):
        for strategy in runs:
            runs[strategy].append(simulate(pool, "label", rounds=args.rounds, batch=args.batch, strategy=strategy,
                                           seed=seed, initial=args.initial))
    seconds = time.monotonic() - started

    budgets = [point["labelled"] for point in runs["random"][0]["curve"]]
    for strategy, results in runs.items():
        if any([p["labelled"] for p in r["curve"]] != budgets for r in results):
            raise SystemExit(f"{strategy}: label budgets differ between runs; the comparison would not be fair")
    al_runs = np.array([[p["accuracy"] for p in r["curve"]] for r in runs[args.strategy]])
    rnd_runs = np.array([[p["accuracy"] for p in r["curve"]] for r in runs["random"]])
    al, rnd = al_runs.mean(axis=0), rnd_runs.mean(axis=0)
    # Paired by seed (same split and initial labels), so the spread of the differences is the noise to judge by.
    se = (al_runs - rnd_runs).std(axis=0, ddof=1) / np.sqrt(args.seeds) if args.seeds > 1 else np.zeros_like(al)

    first = runs["random"][0]
    print(f"Digits: {first['queryable']} items to query, {first['held_out']} held out, {len(first['classes'])} classes; "
          f"{args.initial} initial random labels, {args.batch} per round, {args.rounds} rounds; "
          f"founding random forest; mean of {args.seeds} seeds ({seconds:.0f} s).")
    print(f"{'labelled':>8}  {args.strategy + ' acc':>15}  {'random acc':>10}  {'difference':>10}  {'(std error)':>11}")
    for budget, a, r, e in zip(budgets, al, rnd, se):
        print(f"{budget:>8}  {a:>15.4f}  {r:>10.4f}  {a - r:>+10.4f}  {f'({e:.4f})':>11}")

    behind = [(b, a - r) for b, a, r in zip(budgets, al, rnd) if a < r]
    target_a = not behind
    print()
    if target_a:
        print(f"(a) met: {args.strategy} is at least as accurate as random at all {len(budgets)} budgets "
              f"(equal at {budgets[0]}, where both have the same initial labels).")
    else:
        print(f"(a) NOT met: {args.strategy} is below random at {len(behind)} of {len(budgets)} budgets: "
              + ", ".join(f"{b} labels ({d:+.4f})" for b, d in behind))
    final = rnd[-1]
    reached = next((b for b, a in zip(budgets, al) if a >= final), None)
    if reached is None:
        fraction = None
        print(f"(b) NOT met: {args.strategy} never reaches random's final accuracy {final:.4f} "
              f"({budgets[-1]} labels) within {budgets[-1]} labels.")
    else:
        fraction = reached / budgets[-1]
        verdict = "met" if fraction <= LABEL_FRACTION_TARGET else "NOT met"
        print(f"(b) {verdict}: {args.strategy} reaches random's final accuracy {final:.4f} ({budgets[-1]} labels) "
              f"with {reached} labels, {fraction:.0%} of random's (target at most {LABEL_FRACTION_TARGET:.0%}).")
    target_b = fraction is not None and fraction <= LABEL_FRACTION_TARGET

    summary = {"settings": vars(args), "budgets": budgets, "active": al.tolist(), "random": rnd.tolist(),
               "difference_std_error": se.tolist(),
               "target_a": target_a, "target_b": target_b, "label_fraction": fraction, "runs": runs}
    (OUT / "bench_al.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if target_a and target_b else 1


if __name__ == "__main__":
    sys.exit(main())

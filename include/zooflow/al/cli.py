"""``zooflow al``: active learning from the command line.

``al simulate`` replays the loop on a labelled data set so a team can choose a strategy and batch
size before volunteers spend time on it. Each subcommand adds itself to the one ``commands``
subparsers object through a function in ``SUBCOMMANDS``, so another (``al round``) is one more
entry there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zooflow.al.learner import DEFAULT_STRATEGY, RANDOM, STRATEGIES


def add_simulate(commands: argparse._SubParsersAction) -> None:
    step = commands.add_parser(
        "simulate", help="replay the loop on a labelled data set and print the learning curve",
        description="Replay active learning offline: the label column answers each query in place of volunteers, "
        "and after each round a model fitted on the labels so far is scored on a held-out part that is never queried.",
    )
    step.add_argument("--pool", type=Path, required=True, help="a labelled data set, .csv, .csv.gz or .parquet")
    step.add_argument("--label-column", required=True, help="the column holding the true labels")
    step.add_argument("--id-column", default="id", help="the id column, if there is one (default id); it is not a feature")
    step.add_argument("--rounds", type=int, required=True, help="rounds of queries")
    step.add_argument("--batch", type=int, required=True, help="items the strategy picks per round")
    step.add_argument("--strategy", choices=STRATEGIES + (RANDOM,), default=DEFAULT_STRATEGY,
                      help="how items are picked (default uncertainty; random is the baseline)")
    step.add_argument("--seed", type=int, default=0, help="seed for the split, the initial labels and the model (default 0)")
    step.add_argument("--initial", type=int, default=10, help="random labels before the first round (default 10)")
    step.add_argument("--test-fraction", type=float, default=0.25, help="share held out for scoring (default 0.25)")
    step.add_argument("--per-class", type=int, default=0,
                      help="high-probability picks per predicted class and round, as the founding loop did (default 0)")
    step.add_argument("--threshold", type=float, default=0.6,
                      help="probability above which an item counts as high-probability (default 0.6)")
    step.add_argument("--estimator", help="a classifier of your own, module:callable (default: the founding random forest)")
    step.add_argument("--json", action="store_true", help="print the result as JSON")
    step.set_defaults(func=run_simulate)


SUBCOMMANDS = (add_simulate,)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("al", help="active learning: replay the loop, plan rounds",
                                   description="Active learning for the labelling loop.")
    commands = parser.add_subparsers(dest="al_command", metavar="STEP", required=True)
    for add in SUBCOMMANDS:
        add(commands)


def run_simulate(args: argparse.Namespace) -> int:
    from zooflow.al.simulate import simulate

    result = simulate(
        args.pool, args.label_column, rounds=args.rounds, batch=args.batch, strategy=args.strategy, seed=args.seed,
        initial=args.initial, test_fraction=args.test_fraction, per_class=args.per_class, threshold=args.threshold,
        id_column=args.id_column, estimator=args.estimator,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Replay of {result['strategy']} (seed {result['seed']}) on {result['pool']}, labels from "
          f"{result['label_column']!r}: {result['queryable']} items to query, {result['held_out']} held out, "
          f"{len(result['classes'])} classes.")
    print(f"{'round':>5}  {'labelled':>8}  {'accuracy':>8}  {'macro F1':>8}")
    for point in result["curve"]:
        print(f"{point['round']:>5}  {point['labelled']:>8}  {point['accuracy']:>8.3f}  {point['f1']:>8.3f}")
    return 0

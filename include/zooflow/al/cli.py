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

from zooflow.al.settings import RUN_SETTINGS, run_overrides
from zooflow.al.strategies import DEFAULT_STRATEGY, RANDOM, STRATEGIES
from zooflow.connection_args import add_connection_args, config_from_args


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
                      help=f"how items are picked (default {DEFAULT_STRATEGY}; random is the baseline)")
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


def add_round(commands: argparse._SubParsersAction) -> None:
    step = commands.add_parser(
        "round", help="run one active-learning round, as the DAG does",
        description="Check that the current batch is retired, form consensus labels from the latest downloaded "
        "classification export, choose and draw the next batch, and upload it as a new subject set linked to the "
        "workflow. A round chosen earlier and not uploaded is resumed, not chosen again.",
    )
    step.add_argument("project", help="project slug (owner/name) or id")
    step.add_argument("--config", type=Path, required=True, help="the active-learning config (YAML)")
    for setting in RUN_SETTINGS:
        step.add_argument(f"--{setting.name.replace('_', '-')}", dest=setting.name, type=setting.kind,
                          choices=setting.choices, help=f"{setting.help} (default: the config's)")
    step.add_argument("--set-name", help="name of the new subject set (default: the config's template)")
    step.add_argument("--dry-run", action="store_true", help="write manifest and images; upload nothing")
    step.add_argument("--wait", type=float, default=0, metavar="MINUTES",
                      help="wait up to this long for the current batch to retire (default: look once)")
    step.add_argument("--data-root", type=Path, help="default $ZOOFLOW_DATA_ROOT")
    step.add_argument("--json", action="store_true", help="print the round as JSON")
    add_connection_args(step)
    step.set_defaults(func=run_round)


SUBCOMMANDS = (add_simulate, add_round)


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


def run_round(args: argparse.Namespace) -> int:
    import time

    from panoptes_client import Workflow

    from zooflow.al.round import RoundConfig
    from zooflow.al.steps import plan_round, pull_step, select_step, upload_step
    from zooflow.config_dir import AL_CONFIG, resolve_config
    from zooflow.errors import ConfigurationError
    from zooflow.panoptes import connect
    from zooflow.progress import terminal_progress
    from zooflow.projects import find_project, project_workflow
    from zooflow.retirement import batch_retired_check
    from zooflow.storage import LocalStorage

    config = RoundConfig.load(resolve_config(args.config, AL_CONFIG, shell=True), run_overrides(vars(args)))
    store = LocalStorage(args.data_root)
    run_id = time.strftime("cli-%Y%m%dT%H%M%SZ", time.gmtime())
    with connect(config_from_args(args)):
        project = find_project(args.project)
        project_workflow(project, config.workflow_id, setting=f"workflow_id in {args.config}")
        plan = plan_round(store, args.project, config, run_id)
        deadline = time.monotonic() + args.wait * 60
        while plan["current_batch_sets"] and not args.dry_run and not (check := batch_retired_check(
                config.workflow_id, plan["current_batch_sets"], config.retirement_mode, plan["batch_subjects"],
                plan["expected_subjects"] or None, plan["refill_below"])).done:
            if time.monotonic() >= deadline:
                raise ConfigurationError(f"the current batch is not fully labelled yet ({check.state}); "
                                         "run again later, or pass --wait MINUTES")
            time.sleep(30)
        workflow = Workflow.find(config.workflow_id)
        pulled = pull_step(store, args.project, config, project_id=int(project.id), workflow=workflow)
        if not args.json:
            print("\n".join(pulled.summary_lines()))
        selection, written = select_step(store, args.project, config, run_id=run_id, set_name=args.set_name,
                                         dry_run=args.dry_run)
        result = {"pull": pulled.to_dict(), "selection": selection.to_dict()}
        if not args.dry_run:
            with terminal_progress(f"round {selection.round} upload", unit="subjects") as progress:
                report, written["report"] = upload_step(store, args.project, config, selection, project_record=project,
                                                        workflow=workflow, progress=progress)
            result["upload"] = report.to_dict()
    result["report"] = written["report"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("\n".join(selection.consensus))
    print(f"Round {selection.round}: {len(selection.picks)} items chosen {selection.reasons} from {selection.labelled} "
          f"labelled; held-out accuracy {selection.metrics.get('accuracy')}, F1 {selection.metrics.get('f1')}")
    print(f"Manifest: {selection.manifest}")
    if "upload" in result:
        upload = result["upload"]
        print(f"Subject set {upload['subject_set_id']} {selection.set_name!r}: {len(upload['subject_ids'])} subjects "
              f"({upload['created']} new, {upload['resumed']} resumed, {upload['already_linked']} already there)")
    print(f"Report: {written['report']}")
    return 0

"""``zooflow classifications``: pull the classifications made since the last pull, and check them
against the daily export. The store is kept where the DAGs will read it (``DataRoot.classifications_dir``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zooflow.connection_args import add_connection_args, config_from_args


STEPS = {
    "pull": ("fetch the classifications made since the last pull",
             "Fetch every classification with an id above the last one stored (Panoptes' classifications/project?last_id=), "
             "and append the complete ones to the store under the data root, partitioned by UTC date. A pull killed "
             "half-way and run again stores each classification once.",
             "only this workflow's classifications (a store of its own, with its own resume point)"),
    "reconcile": ("compare the store with a classification export",
                  "Report the classification ids the export has and the store lacks, and the reverse, over the ids both "
                  "cover. Ids the store has and the export lacks (incomplete classifications, which the API does not "
                  "mark) are left out when the store is read, unless --report-only.",
                  "compare this workflow's classifications only"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("classifications", help="pull classifications as they arrive; check them against the export")
    commands = parser.add_subparsers(dest="classifications_command", metavar="STEP", required=True)
    steps = {}
    for name, (summary, description, workflow_help) in STEPS.items():
        step = steps[name] = commands.add_parser(name, help=summary, description=description)
        step.add_argument("project", help="project slug (owner/name) or id; the store and the exports are kept under this name")
        step.add_argument("--workflow-id", type=int, help=workflow_help)
        step.add_argument("--data-root", type=Path, help="where the store and the exports are kept (default $ZOOFLOW_DATA_ROOT)")
        step.add_argument("--json", action="store_true", help="print the report as JSON")
    steps["pull"].add_argument("--page-size", type=int, default=100, help="classifications per request (Panoptes serves at most 100)")
    add_connection_args(steps["pull"])
    steps["pull"].set_defaults(func=run_pull)
    steps["reconcile"].add_argument("--export", type=Path, help="a classification export, .csv or .csv.gz (default: the "
                                    "project's latest download by `zooflow export download` or the exports DAG)")
    steps["reconcile"].add_argument("--report-only", action="store_true", help="report, and leave the store's exclusions as they are")
    steps["reconcile"].set_defaults(func=run_reconcile)


def run_pull(args: argparse.Namespace) -> int:
    from zooflow.classifications.pull import pull_classifications
    from zooflow.panoptes import connect
    from zooflow.paths import DataRoot
    from zooflow.projects import find_project

    root = DataRoot(args.data_root)
    with connect(config_from_args(args)):
        project = find_project(args.project)
        report = pull_classifications(root, str(args.project), project_id=int(project.id),
                                      workflow_id=args.workflow_id, page_size=args.page_size)
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.summary_lines()))
    return 0


def run_reconcile(args: argparse.Namespace) -> int:
    from zooflow.classifications.reconcile import reconcile_export
    from zooflow.paths import DataRoot

    report = reconcile_export(DataRoot(args.data_root), str(args.project), export=args.export,
                              workflow_id=args.workflow_id, exclude=not args.report_only)
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.summary_lines()))
    return 0

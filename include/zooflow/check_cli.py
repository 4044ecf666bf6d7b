"""``zooflow check``: log in and show a project's workflows and their retirement counts."""

from __future__ import annotations

import argparse
import json

from zooflow.connection_args import add_connection_args, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="log in to Panoptes and report a project's workflows",
        description="Log in to Panoptes and report the project and its workflows with their retirement counts.",
    )
    parser.add_argument("project", help="project slug (owner/name) or id")
    add_connection_args(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zooflow.panoptes import connect
    from zooflow.projects import find_project, format_report, project_report

    with connect(config_from_args(args)):
        report = project_report(find_project(args.project))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_report(report)))
    return 0

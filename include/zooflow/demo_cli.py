"""``zooflow demo``'s arguments. The demo itself, :mod:`zooflow.demo`, is loaded when the command runs.

The demo drives the sandbox, Airflow and the DAGs and imports what they need, so its parser lives here,
where ``zooflow --help`` reads it without loading any of that.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the DAGs end to end against a local sandbox",
        description="Start a seeded Panoptes sandbox, run zooflow's DAGs against it with "
        "`airflow dags test`, print what they found, and stop the sandbox.",
    )
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="where the demo keeps its state (default .demo)")
    parser.add_argument("--dags-folder", type=Path, default=Path("dags"), help="zooflow's dags/ folder (default ./dags)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zooflow import demo

    return demo.run(args)

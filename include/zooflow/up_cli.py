"""``zooflow up`` and ``zooflow down``'s arguments. The commands themselves, :mod:`zooflow.up`, are loaded
when they run.

They start and stop the sandbox and Airflow, with the HTTP clients that takes, so their parsers live
here, where ``zooflow --help`` reads them without loading any of that. The UI port's variable and
default live here too, beside the flag they are the default of.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zooflow.dev.instance import DEFAULT_STATE_DIR, STATE_DIR_ENV, STOP_TIMEOUT
from zooflow.dev.processes import LOOPBACK

PORT_ENV = "ZOOFLOW_UP_PORT"
DEFAULT_PORT = 8080


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up",
        help="start a local Airflow UI on the seeded sandbox, in the background",
        description="Start the sandbox (seeded and populated like the demo) and Airflow's services on SQLite "
        "in the background, wait until they are healthy, and print the UI address and the admin password. "
        "If they are already running, say so and start nothing.",
    )
    _add_state_dir(up)
    up.add_argument("--port", type=int, default=None,
                    help=f"the UI's port on {LOOPBACK} (default ${PORT_ENV}, else {DEFAULT_PORT})")
    up.add_argument("--sandbox-port", type=int, default=0, help="the sandbox's port (default: a free one)")
    up.add_argument("--dags-folder", type=Path, default=Path("dags"), help="zooflow's dags/ folder (default ./dags)")
    up.add_argument("--plugins-folder", type=Path, default=None,
                    help="zooflow's plugins/ folder, with the Zooniverse page (default: plugins/ beside the dags folder)")
    up.add_argument("--no-demo-runs", dest="demo_runs", action="store_false",
                    help="on the first start, do not run the export and active-learning DAGs once "
                    "(by default they run, so the Zooniverse page has an export and a round to show)")
    up.add_argument("--timeout", type=float, default=600.0,
                    help="seconds to wait for Airflow to become healthy (default 600)")
    up.set_defaults(func=run_up)

    down = subparsers.add_parser(
        "down",
        help="stop what `zooflow up` started",
        description="Stop every process `zooflow up` started for this state dir (SIGTERM, then SIGKILL) "
        "and report what was stopped. State (sandbox data, Airflow's database, outputs) is kept.",
    )
    _add_state_dir(down)
    down.add_argument("--timeout", type=float, default=STOP_TIMEOUT,
                      help=f"seconds between SIGTERM and SIGKILL (default {STOP_TIMEOUT:g})")
    down.set_defaults(func=run_down)


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"where the instance keeps its state (default ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})")


def run_up(args: argparse.Namespace) -> int:
    from zooflow import up

    return up.up_command(args)


def run_down(args: argparse.Namespace) -> int:
    from zooflow import up

    return up.down_command(args)

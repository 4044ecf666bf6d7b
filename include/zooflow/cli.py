"""The ``zooflow`` command line.

Each command group lives beside the code it drives and adds itself through ``register(subparsers)``,
so this module only knows the list of groups.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that expose register(subparsers). Each imports at its top only what loads no dependency (argparse,
# the constants its parsers offer, small helpers); its handlers import the rest when they run, so that
# `zooflow --help` answers at once (tests/library/test_cli_imports.py checks what it loads).
COMMAND_GROUPS = (
    "zooflow.al.cli",
    "zooflow.check_cli",
    "zooflow.classifications.cli",
    "zooflow.consensus.cli",
    "zooflow.demo_cli",
    "zooflow.exports.cli",
    "zooflow.project_cli",
    "zooflow.projects_file.cli",
    "zooflow.sandbox.cli",
    "zooflow.subjects.cli",
    "zooflow.up_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zooflow",
        description="Run the Zooniverse labelling loop: exports, slicing, active learning, uploads.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_GROUPS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one clear line, no traceback
        from zooflow.errors import ZooflowError

        message = _unreachable(exc, args)
        if message is None and not isinstance(exc, ZooflowError):
            raise
        print(f"zooflow: error: {message or exc}", file=sys.stderr)
        return 2


def _unreachable(exc: Exception, args: argparse.Namespace) -> str | None:
    """One line for a Panoptes that does not answer (while logging in, or at any later request), or None.

    Only commands that talk to Panoptes (they take --conn-id) get it: ``up`` also makes requests, to Airflow."""
    import requests

    from zooflow.connection_args import unreachable
    from zooflow.errors import PanoptesUnreachable
    from zooflow.panoptes import connection_failure

    if isinstance(exc, PanoptesUnreachable):
        return unreachable(exc.endpoint, args, exc.reason)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)) and hasattr(args, "conn_id"):
        url = exc.request.url if exc.request is not None else "?"
        parts = requests.utils.urlparse(url)
        return unreachable(f"{parts.scheme}://{parts.netloc}", args, connection_failure(exc))
    return None

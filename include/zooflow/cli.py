"""The ``zooflow`` command line.

Each command group lives beside the code it drives and adds itself through ``register(subparsers)``,
so this module only knows the list of groups.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that expose register(subparsers); imported lazily so `zooflow --help` stays fast.
COMMAND_GROUPS = (
    "zooflow.al.cli",
    "zooflow.check_cli",
    "zooflow.demo",
    "zooflow.exports.cli",
    "zooflow.project_cli",
    "zooflow.sandbox.cli",
    "zooflow.subjects.cli",
    "zooflow.up",
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

        if isinstance(exc, ZooflowError):
            print(f"zooflow: error: {exc}", file=sys.stderr)
            return 2
        raise

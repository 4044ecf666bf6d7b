"""``zooflow subjects``: remove duplicate subjects from a set, update subjects' metadata from a CSV.

Both commands are dry runs unless ``--apply`` is given: they print what would change and change nothing.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from zooflow.connection_args import add_changing_command, config_from_args
from zooflow.subjects.choices import KEEP_CHOICES, MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("subjects", help="remove duplicate subjects, update subject metadata")
    commands = parser.add_subparsers(dest="subjects_command", metavar="COMMAND", required=True)

    dedupe = add_changing_command(
        commands, "dedupe", help="unlink duplicate subjects from a subject set", func=run_dedupe,
        description="Keep one subject per value of a metadata field and unlink the others from the set "
        "(they are not deleted). Subjects without the field are never removed.", applies="unlink the duplicates",
    )
    dedupe.add_argument("--subject-set", dest="subject_set_id", required=True, help="subject set id")
    dedupe.add_argument("--field", required=True, help="metadata key whose value identifies a duplicate")
    dedupe.add_argument("--keep", choices=KEEP_CHOICES, default="oldest", help="which subject of a group to keep (default oldest)")

    update = add_changing_command(
        commands, "update-metadata", help="update subjects' metadata from a CSV", func=run_update_metadata,
        description="Match CSV rows to the set's subjects by COLUMN=KEY and merge the other columns into their "
        "metadata (or replace it with --mode replace).", applies="save the changes",
    )
    update.add_argument("--subject-set", dest="subject_set_id", required=True, help="subject set id")
    update.add_argument("--csv", dest="csv_path", required=True, help="UTF-8 CSV with a header row")
    update.add_argument("--match", required=True, metavar="COLUMN=KEY",
                        help="CSV column and the metadata key it matches, e.g. filename=filename")
    update.add_argument("--mode", choices=MODES, default="merge",
                        help="merge: add/change the CSV's keys, keep the rest (default); replace: the row becomes the metadata")


def _print(report: dict[str, Any], lines: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(lines))


def run_dedupe(args: argparse.Namespace) -> int:
    from zooflow.panoptes import connect
    from zooflow.subjects.dedupe import apply_dedupe, format_dedupe, plan_dedupe

    with connect(config_from_args(args)):
        plan = plan_dedupe(args.subject_set_id, args.field, keep=args.keep)
        report = apply_dedupe(plan) if args.apply else plan.report()
    _print(report, format_dedupe(report), args.json)
    return 0


def run_update_metadata(args: argparse.Namespace) -> int:
    from zooflow.panoptes import connect
    from zooflow.subjects.metadata import apply_metadata_update, format_metadata, plan_metadata_update

    with connect(config_from_args(args)):
        plan = plan_metadata_update(args.subject_set_id, args.csv_path, args.match, mode=args.mode)
        report = apply_metadata_update(plan) if args.apply else plan.report()
    _print(report, format_metadata(report), args.json)
    return 0

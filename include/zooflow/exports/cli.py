"""``zooflow export``: the export pipeline by hand, with the same powers as the DAG.

``request``, ``wait`` and ``download`` keep their state under the data root exactly where the DAG
keeps it, so a team can mix the two: request from the CLI, let the DAG slice, or the other way.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zooflow.connection_args import add_connection_args, config_from_args
from zooflow.errors import ConfigurationError
from zooflow.exports.export_types import EXPORT_TYPES
from zooflow.exports.slice_spec import FORMATS, ROW_CHOICES, SliceSpec
from zooflow.paths import DataRoot

if TYPE_CHECKING:  # loaded by the steps that request, wait and download, not by the parsers
    from zooflow.exports.export_requests import ExportTarget, RequestOutcome


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="request, wait for, download, slice and flatten exports")
    commands = parser.add_subparsers(dest="export_command", metavar="STEP", required=True)

    for name, func, summary in (
        ("request", run_request, "ask for fresh exports, unless the last request is under 24 hours old"),
        ("wait", run_wait, "wait until the requested exports are built"),
        ("download", run_download, "download the built exports (resumable, verified)"),
    ):
        step = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        step.add_argument("project", help="project slug (owner/name) or id")
        step.add_argument("--type", dest="types", action="append", choices=EXPORT_TYPES["project"],
                          help="export type (repeatable; default classifications and subjects)")
        owner = step.add_mutually_exclusive_group()
        owner.add_argument("--workflow-id", type=int, help="a workflow's classifications export instead of the project's")
        owner.add_argument("--subject-set", type=int, dest="subject_set_id",
                           help="a subject set's classifications export instead of the project's")
        step.add_argument("--data-root", type=Path, help="where exports are kept (default $ZOOFLOW_DATA_ROOT)")
        step.add_argument("--json", action="store_true", help="print the outcome as JSON")
        add_connection_args(step)
        if name == "download":
            step.add_argument("--defer-check", action="store_true",
                              help="check the length only, leaving the gzip's CRC check to the exports DAG's slice, which "
                                   "reads the whole file anyway: the file is recorded in pending.json, not latest.json, "
                                   "until that slice (or a download without this flag) has checked it")
        if name == "wait":
            step.add_argument("--timeout", type=float, default=360, help="give up after this many minutes (default 360)")
            step.add_argument("--poll", type=float, default=30, help="look again every this many seconds (default 30)")
        step.set_defaults(func=func)

    slicer = commands.add_parser(
        "slice", help="cut an export into date partitions",
        description="Keep the rows of a classification or subject export (.csv or .csv.gz) that the spec asks for, "
        "one created_date=YYYY-MM-DD partition per day; malformed rows go to a quarantine file with their line numbers.",
    )
    slicer.add_argument("input", type=Path, help="the export, .csv or .csv.gz")
    slicer.add_argument("--out", type=Path, required=True, help="output folder (date partitions are replaced, others kept)")
    slicer.add_argument("--spec", help="a YAML slice spec: a path, or a file name in the config folder "
                        "($ZOOFLOW_CONFIG_DIR); flags override its values")
    slicer.add_argument("--workflow-id", type=int, action="append", dest="workflow_ids", help="keep this workflow (repeatable)")
    slicer.add_argument("--min-version", dest="min_workflow_version", help="minimum workflow version, e.g. 13.19")
    slicer.add_argument("--subject-ids", action="append", dest="subject_ids", metavar="A-B",
                        help="subject id range, inclusive (repeatable); a row with several ids is kept if any is in range")
    slicer.add_argument("--subject-set-id", type=int, action="append", dest="subject_set_ids", help="subject set (subject export; repeatable)")
    slicer.add_argument("--since", help="created_at from (UTC date or datetime, inclusive)")
    slicer.add_argument("--until", help="created_at until (UTC date or datetime, exclusive)")
    slicer.add_argument("--gold", choices=ROW_CHOICES, help="gold-standard rows (default exclude)")
    slicer.add_argument("--expert", choices=ROW_CHOICES, help="expert rows (default include)")
    slicer.add_argument("--format", dest="formats", action="append", choices=FORMATS, help="output format (repeatable; default both)")
    slicer.add_argument("--json", action="store_true", help="print the report as JSON")
    slicer.set_defaults(func=run_slice)

    flat = commands.add_parser("flatten", help="one row per classification and task, and one per drawn mark",
                               description="Flatten an export (or a slice of one) into a tidy table, and a classification "
                                           "export's drawn marks into a second table, OUT-marks, one row per mark.")
    flat.add_argument("input", type=Path, help="a classification export or slice, .csv or .csv.gz")
    flat.add_argument("--out", type=Path, required=True, help="output path; .csv and/or .parquet are added (a .csv or .parquet suffix given is replaced)")
    flat.add_argument("--workflows-export", type=Path,
                      help="the workflows export, to name each task's type, each tool's label and shape, and dropdown options")
    flat.add_argument("--format", dest="formats", action="append", choices=FORMATS, help="output format (repeatable; default both)")
    flat.add_argument("--json", action="store_true", help="print the report as JSON")
    flat.set_defaults(func=run_flatten)


def _targets(args: argparse.Namespace) -> Iterator[tuple[ExportTarget, Path]]:
    """Each export asked for, with the folder the DAG keeps it in."""
    from zooflow.exports.export_requests import ExportTarget
    from zooflow.projects import find_project

    root = DataRoot(args.data_root)
    slug = str(args.project)
    if args.workflow_id or args.subject_set_id:
        resource, resource_id = ("workflow", args.workflow_id) if args.workflow_id else ("subject_set", args.subject_set_id)
        types = args.types or ["classifications"]
        for export_type in types:
            yield ExportTarget(resource, resource_id, export_type), root.exports_dir(slug, export_type, resource, resource_id)
        return
    project_id = int(find_project(slug).id)
    for export_type in args.types or ["classifications", "subjects"]:
        yield ExportTarget("project", project_id, export_type), root.exports_dir(slug, export_type)


def _print(args: argparse.Namespace, results: list[dict[str, Any]], lines: list[str]) -> None:
    print(json.dumps(results, indent=2) if args.json else "\n".join(lines))


def run_request(args: argparse.Namespace) -> int:
    from zooflow.exports.steps import request_step
    from zooflow.files import atomic_write_json
    from zooflow.panoptes import connect
    from zooflow.storage import LocalStorage

    results, lines = [], []
    with connect(config_from_args(args)):
        for target, folder in _targets(args):
            outcome = request_step(LocalStorage(args.data_root), target, folder)
            atomic_write_json(DataRoot.request_outcome(folder), outcome.to_dict())
            results.append(outcome.to_dict())
            lines.append(f"{target}: {outcome.action} — {outcome.reason}")
    _print(args, results, lines)
    return 0


def _outcome(folder: Path, target: ExportTarget) -> RequestOutcome:
    from zooflow.exports.export_requests import RequestOutcome

    try:
        return RequestOutcome(**json.loads(DataRoot.request_outcome(folder).read_text()))
    except (OSError, ValueError, TypeError):
        raise ConfigurationError(f"no request recorded for the {target}; run `zooflow export request` first") from None


def run_wait(args: argparse.Namespace) -> int:
    from zooflow.exports.export_requests import export_ready_check
    from zooflow.exports.limits import still_creating_message
    from zooflow.panoptes import connect

    results, lines = [], []
    with connect(config_from_args(args)):
        for target, folder in _targets(args):
            outcome = _outcome(folder, target)
            deadline = time.monotonic() + args.timeout * 60
            while not (check := export_ready_check(outcome.target, outcome.requested_at, outcome.to_dict())).done:
                if time.monotonic() >= deadline:
                    raise ConfigurationError(still_creating_message(target, outcome.to_dict(), check.state,
                                                                    args.timeout * 60))
                time.sleep(args.poll)
            results.append({"target": str(target)} | check.detail)
            lines.append(f"{target}: ready (updated {check.detail['updated_at']})")
    _print(args, results, lines)
    return 0


def run_download(args: argparse.Namespace) -> int:
    from zooflow.exports.steps import download_step
    from zooflow.panoptes import connect
    from zooflow.progress import terminal_progress
    from zooflow.storage import LocalStorage

    results, lines = [], []
    with connect(config_from_args(args)):
        for target, folder in _targets(args):
            outcome = _outcome(folder, target)
            with terminal_progress(f"{target.export_type}") as progress:
                result = download_step(LocalStorage(args.data_root), target, folder, requested_at=outcome.requested_at,
                                       progress=lambda done, total, _elapsed: progress(done, total),
                                       defer_check=args.defer_check)
            results.append(result.to_dict())
            state = "already downloaded" if result.already_downloaded else f"downloaded in {result.seconds:.1f} s"
            if result.pending:
                state += "; gzip not yet checked (pending.json)"
            lines.append(f"{target}: {result.path} ({result.bytes / 1e6:.1f} MB, {state})")
    _print(args, results, lines)
    return 0


def _slice_spec(args: argparse.Namespace) -> SliceSpec:
    from zooflow.config_dir import SLICE_SPEC, resolve_config

    base = SliceSpec.from_yaml(resolve_config(args.spec, SLICE_SPEC, shell=True)).to_dict() if args.spec else {}
    flags = {key: getattr(args, key) for key in ("workflow_ids", "min_workflow_version", "subject_ids", "subject_set_ids",
                                                 "since", "until", "gold", "expert", "formats")}
    return SliceSpec.from_mapping(base | {k: v for k, v in flags.items() if v is not None})


def run_slice(args: argparse.Namespace) -> int:
    from zooflow.exports.slicing import slice_export
    from zooflow.progress import terminal_progress

    spec = _slice_spec(args)
    with terminal_progress(f"slicing {args.input.name}") as progress:
        report = slice_export(args.input, args.out, spec, progress=lambda done, total, _rows: progress(done, total))
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.summary_lines()))
    return 0


def run_flatten(args: argparse.Namespace) -> int:
    from zooflow.exports.flatten import flatten_export

    report = flatten_export(args.input, args.out, formats=tuple(args.formats or FORMATS), workflows_export=args.workflows_export)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        marks = f" and {report.marks_written} marks" if report.kind == "classifications" else ""
        print(f"{args.input} ({report.kind} export): {report.rows_read} rows read -> {report.rows_written} rows{marks} "
              f"written, {report.rows_quarantined} quarantined; {', '.join(report.outputs)}")
    return 0

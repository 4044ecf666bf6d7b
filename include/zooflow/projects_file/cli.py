"""``zooflow projects check [FILE]``: check a projects file without Airflow and show the DAGs it makes.

FILE defaults to the file the DAGs would read: ``$ZOOFLOW_PROJECTS`` (relative to
``$AIRFLOW__CORE__DAGS_FOLDER`` when that is set, else to this folder), else ``projects.yaml`` in
the DAGs folder, else ``./projects.yaml``; with none of them, the ``ZOOFLOW_PROJECT`` shorthand.
Exits 1 when any entry (or the file) has an error, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from zooflow.errors import ConfigurationError
from zooflow.projects_file.load import (
    DEFAULT_NAME, PROJECT_ENV, PROJECTS_ENV, load_projects, projects_path, shorthand_projects,
)
from zooflow.projects_file.spec import ProjectEntry, ProjectsFile

DAGS_FOLDER_ENV = "AIRFLOW__CORE__DAGS_FOLDER"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("projects", help="the projects file: which projects and AL workflows are scheduled")
    commands = parser.add_subparsers(dest="projects_command", metavar="STEP", required=True)
    check = commands.add_parser(
        "check", help="check a projects file and list the DAGs it makes",
        description="Check a projects file (without Airflow): list each valid entry with the DAGs it makes, and "
        "each broken entry with the key at fault and the fix. Exits 1 when there is any error.",
    )
    check.add_argument("file", nargs="?", type=Path, metavar="FILE",
                       help=f"the projects file (default: ${PROJECTS_ENV}, else {DEFAULT_NAME} in "
                            f"${DAGS_FOLDER_ENV}, else ./{DEFAULT_NAME}, else the ${PROJECT_ENV} shorthand)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    checked = load_projects(args.file) if args.file else _default()
    if args.json:
        print(json.dumps(checked.to_dict(), indent=2))
    else:
        print("\n".join(describe(checked)))
    return 0 if checked.ok else 1


def _default() -> ProjectsFile:
    """The projects file the DAGs would read, else ./projects.yaml, else the shorthand."""
    dags = os.environ.get(DAGS_FOLDER_ENV, "").strip()
    path = projects_path(Path(dags) if dags else None)
    if path is None and Path(DEFAULT_NAME).is_file():
        path = Path(DEFAULT_NAME)
    if path is not None:
        return load_projects(path)
    if (shorthand := shorthand_projects()) is not None:
        return shorthand
    raise ConfigurationError(f"no projects file to check: give its path (zooflow projects check FILE), set "
                             f"{PROJECTS_ENV} to it, or run this in the folder holding {DEFAULT_NAME}")


def describe(checked: ProjectsFile) -> list[str]:
    source = str(checked.path) if checked.path else f"no projects file: the {PROJECT_ENV} shorthand"
    dags = len(checked.dag_ids)
    broken = sum(error.index is not None for error in checked.errors)
    lines = [f"{source}: {len(checked.entries)} valid project entr{'y' if len(checked.entries) == 1 else 'ies'} "
             f"making {dags} DAG{'' if dags == 1 else 's'}"
             + (f"; {broken} broken entr{'y' if broken == 1 else 'ies'}" if broken else "")
             + ("; the file itself has errors" if checked.file_errors else "")]
    for entry in checked.entries:
        lines += _entry_lines(entry)
    if checked.errors:
        lines += ["", "Errors:"]
        for error in checked.errors:
            lines += [f"  {line}" for line in error.lines()]
            if error.dag_ids:
                lines.append(f"    (DAGs this entry would make: {', '.join(error.dag_ids)})")
    return lines


def _entry_lines(entry: ProjectEntry) -> list[str]:
    from zooflow.exports.slice_spec import SliceSpec

    defaults = SliceSpec().to_dict()
    narrowed = {k: v for k, v in entry.slice.to_dict().items() if v != defaults[k]}
    lines = [
        f"projects[{entry.index}] {entry.project} (connection {entry.conn_id})",
        f"  {entry.dag_id}",
        f"      exports {', '.join(entry.exports)} on schedule {entry.schedule} (UTC)"
        + (f"; slice {json.dumps(narrowed)}" if narrowed else ""),
    ]
    for al in entry.active_learning:
        trigger = ("on each new classifications export" if "classifications" in entry.exports
                   else "not on exports (this entry exports no classifications)")
        cadence = f", and on cadence {al.cadence}" if al.cadence else ""
        lines += [f"  {al.dag_id}", f"      active learning, workflow {al.workflow_id} ({al.config}): {trigger}{cadence}"]
    return lines

"""``zooflow project init``: create a project, its question workflow and its first subject set.

A dry run by default: it says what would be created; ``--apply`` creates it. A rerun creates nothing new.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from zooflow.connection_args import add_changing_command, config_from_args

if TYPE_CHECKING:  # loaded by the command, not by its parser
    from zooflow.project_setup import ProjectSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("project", help="set up a project")
    commands = parser.add_subparsers(dest="project_command", metavar="STEP", required=True)
    init = add_changing_command(
        commands, "init", help="create a project, its workflow and its first subject set", func=run_init,
        description="Create (or find) a project, a workflow whose first task is a single-answer question, and a "
        "first subject set uploaded from a panoptes-cli style manifest.", applies="create and upload",
    )
    init.add_argument("--name", required=True, help="the project's display name")
    init.add_argument("--description", required=True)
    init.add_argument("--language", default="en")
    init.add_argument("--public", action="store_true", help="make the project public (default private)")
    init.add_argument("--workflow", required=True, help="the workflow's display name")
    init.add_argument("--question", required=True, help="the question volunteers answer")
    init.add_argument("--answer", action="append", required=True, dest="answers", help="an answer (repeat, at least two)")
    init.add_argument("--retire-after", type=int, default=15, help="classifications before a subject retires (default 15)")
    init.add_argument("--manifest", type=Path, required=True, help="CSV: file or URL columns, metadata columns (#, ! hidden)")
    init.add_argument("--subject-set", required=True, help="the first subject set's name")
    init.add_argument("--allow-missing", action="store_true", help="upload the rows whose files exist, skip the others")


def spec_from_args(args: argparse.Namespace) -> ProjectSpec:
    from zooflow.project_setup import ProjectSpec

    return ProjectSpec(display_name=args.name, description=args.description, workflow_name=args.workflow,
                       question=args.question, answers=tuple(args.answers), manifest=args.manifest,
                       subject_set=args.subject_set, language=args.language, private=not args.public,
                       retirement_count=args.retire_after, allow_missing=args.allow_missing)


def run_init(args: argparse.Namespace) -> int:
    from zooflow.panoptes import connect
    from zooflow.paths import DataRoot, safe_name
    from zooflow.project_setup import plan_setup, setup_project

    spec = spec_from_args(args)
    with connect(config_from_args(args)):
        if args.apply:
            journal = DataRoot().project_dir(safe_name(spec.display_name)) / "setup" / f"{safe_name(spec.subject_set)}.jsonl"
            report = setup_project(spec, journal)
        else:
            report = {"dry_run": True} | plan_setup(spec)
    print(json.dumps(report, indent=2) if args.json else "\n".join(describe(report, spec)))
    return 0


def describe(report: dict, spec: ProjectSpec) -> list[str]:
    if report.get("dry_run"):
        project, workflow, subjects = report["project"], report["workflow"], report["subject_set"]
        return [
            "Dry run: nothing was changed (add --apply to create and upload).",
            f"project {project['slug']}: " + (f"exists (id {project['id']})" if project["exists"] else "would be created"),
            f"workflow {spec.workflow_name!r}: " + (f"exists (id {workflow['id']})" if workflow["exists"] else "would be created"),
            f"subject set {spec.subject_set!r}: " + ("exists" if subjects["exists"] else "would be created")
            + f"; {subjects['to_upload']} subject(s) to upload",
        ]
    uploaded = report["subject_set"]
    return [
        f"project {report['project']['slug']} (id {report['project']['id']}): {'created' if report['project']['created'] else 'found'}",
        f"workflow {spec.workflow_name!r} (id {report['workflow']['id']}): {'created' if report['workflow']['created'] else 'found'}",
        f"subject set {spec.subject_set!r} (id {uploaded['subject_set_id']}): {uploaded['created']} uploaded, "
        f"{uploaded['already_linked']} already there",
    ]

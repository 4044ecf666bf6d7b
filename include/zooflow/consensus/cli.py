"""``zooflow labels consensus``: one label per subject from a classification export, by majority or skill.

Reads the export (``.csv``, ``.csv.gz``, ``.parquet`` or a slice folder), keeps one workflow's answers to
one question task, and writes ``LABELS.csv`` with ``subject_id,label,confidence,votes,votes_used,retire,gold``.
``--retire-confidence`` replays each subject's votes in time order: ``votes_used`` is how many it took
to reach that confidence (with at least ``--min-votes``), and ``retire`` says it could have been retired
then. Nothing is changed on Panoptes; the active-learning DAG retires (``retire_confidence`` in its config).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

from zooflow.consensus import confidence
from zooflow.errors import ConfigurationError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("labels", help="consensus labels from classifications")
    commands = parser.add_subparsers(dest="labels_command", metavar="STEP", required=True)
    step = commands.add_parser(
        "consensus", help="one label per subject, by majority or by volunteer skill (Dawid-Skene)",
        description="One label per subject of one workflow's question task, with its confidence and votes; "
        "with --retire-confidence, how many votes (in time order) it took to reach that confidence.")
    step.add_argument("export", type=Path, metavar="EXPORT.csv", help="classification export (or a slice folder)")
    step.add_argument("--workflow-id", type=int, required=True, help="the workflow whose classifications count")
    step.add_argument("--task", default="T0", help="the single-answer question task (default T0)")
    step.add_argument("--method", choices=("majority", "weighted"), default="weighted",
                      help="weighted: Dawid-Skene volunteer skill (default); majority: the most frequent answer")
    step.add_argument("--gold", type=Path, metavar="GOLD.csv",
                      help="known labels: a CSV with subject_id,label (added to the export's gold-standard rows)")
    step.add_argument("--retire-confidence", type=confidence, metavar="P",
                      help="a subject is clear once its confidence reaches P; auto (weighted): once it is as sure as "
                           "a majority of --retire-count votes would be with this crowd")
    step.add_argument("--retire-count", type=int, metavar="N",
                      help="the workflow's retirement count, for --retire-confidence auto (default: the median votes)")
    step.add_argument("--min-votes", type=int, default=3, help="votes a subject needs before it is clear (default 3)")
    step.add_argument("--out", type=Path, required=True, metavar="LABELS.csv", help="where to write the labels")
    step.add_argument("--json", action="store_true", help="print the summary as JSON")
    step.set_defaults(func=run_consensus)


def read_gold(path: Path) -> dict[str, str]:
    """``subject_id,label`` rows as a mapping; a missing file or column says what the file needs."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigurationError(f"gold file {path} does not exist") from None
    reader = csv.DictReader(io.StringIO(text))
    if not {"subject_id", "label"} <= set(reader.fieldnames or ()):
        raise ConfigurationError(f"gold file {path} needs the columns subject_id,label (it has "
                                 f"{','.join(reader.fieldnames or ()) or 'no header'})")
    return {row["subject_id"].strip(): row["label"].strip() for row in reader if row["subject_id"].strip()}


def run_consensus(args: argparse.Namespace) -> int:
    from zooflow.al.labels import export_rows
    from zooflow.consensus.table import COLUMNS, consensus
    from zooflow.consensus.votes import COLUMNS as EXPORT_COLUMNS, votes_from_rows
    from zooflow.files import atomic_write_bytes

    started = time.monotonic()
    gold = read_gold(args.gold) if args.gold else None
    votes = votes_from_rows(export_rows(args.export, EXPORT_COLUMNS), task=args.task, workflow_id=args.workflow_id)
    if not len(votes):
        raise ConfigurationError(f"{args.export} has no answers to task {args.task} of workflow {args.workflow_id} "
                                 f"(left out: {votes.skipped or 'nothing'}); check --workflow-id and --task")
    result = consensus(votes, method=args.method, gold=gold, retire_confidence=args.retire_confidence,
                       min_votes=args.min_votes, retire_count=args.retire_count)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows())
    atomic_write_bytes(args.out, buffer.getvalue().encode("utf-8"))
    summary = result.summary() | {"out": str(args.out), "seconds": round(time.monotonic() - started, 2)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['subjects']} subjects labelled by {summary['method']} consensus from {summary['votes']} votes "
          f"of {summary['volunteers']} volunteers ({summary['gold_subjects']} with a gold label); labels {summary['labels']}")
    if args.retire_confidence is not None:
        print(f"{summary['retired_early']} clear at confidence {result.retire_confidence:.4g} with at least {args.min_votes} "
              f"votes; {summary['votes_used']} of {summary['votes']} votes used ({summary['votes_saved_share']:.1%} saved)")
    print(f"Labels: {args.out}")
    return 0

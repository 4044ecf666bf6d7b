"""Volunteer consensus: one label per pool item, only where volunteers agree.

The founding loop taught its learner whatever the first classification said (and, worse, labels
no human gave). Here each classification's answer to one question task is traced to the pool item
through the hidden ``#pool_id`` in the subject's metadata (never through subject ids, which differ
per upload), and an item gets a label only when enough volunteers answered and a clear majority
agreed. Items left out, answers the answer map does not know, and rows that cannot be read are
counted and reported, so a team sees why an item is not labelled yet instead of losing it quietly.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zooflow.al.pool import cell_text
from zooflow.errors import ConfigurationError
from zooflow.exports.bounds import export_text

POOL_KEY = "#pool_id"
_EXAMPLES = 10  # malformed rows described in the report; the rest are only counted


@dataclass
class ConsensusReport:
    """The labels volunteers agreed on, the votes behind them, and every item or row left out."""

    task: str
    min_votes: int
    agreement: float
    labels: dict[str, str] = field(default_factory=dict)  # pool id -> class
    votes: dict[str, dict[str, int]] = field(default_factory=dict)  # pool id -> {class: count}
    ties: list[str] = field(default_factory=list)
    low_agreement: list[str] = field(default_factory=list)
    too_few_votes: list[str] = field(default_factory=list)
    unmapped_answers: dict[str, int] = field(default_factory=dict)  # answer text -> classifications
    rows_read: int = 0
    duplicate_rows: int = 0  # same classification_id seen again (overlapping exports or slices)
    malformed_rows: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    without_task: int = 0  # classifications with no single answer to the task
    without_pool_id: int = 0  # subjects (per classification) whose metadata has no pool id
    method: str = "majority"
    clear_early: list[str] = field(default_factory=list)  # labelled with fewer votes: clear at the retire confidence
    skills: list[float] = field(default_factory=list)  # each volunteer's estimated accuracy (weighted only)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task, "min_votes": self.min_votes, "agreement": self.agreement,
            "labels": dict(self.labels), "votes": {k: dict(v) for k, v in self.votes.items()},
            "ties": list(self.ties), "low_agreement": list(self.low_agreement),
            "too_few_votes": list(self.too_few_votes), "unmapped_answers": dict(self.unmapped_answers),
            "rows_read": self.rows_read, "duplicate_rows": self.duplicate_rows,
            "malformed_rows": self.malformed_rows, "malformed_examples": list(self.malformed_examples),
            "without_task": self.without_task, "without_pool_id": self.without_pool_id,
            "method": self.method, "clear_early": list(self.clear_early), "skills": list(self.skills),
        }

    def summary_lines(self) -> list[str]:
        classes = Counter(self.labels.values())
        rule = ("volunteer skill (Dawid-Skene), posterior" if self.method == "weighted" else "majority share")
        lines = [
            f"Consensus on task {self.task}: {len(self.labels)} of {len(self.votes)} voted items labelled "
            f"(at least {self.min_votes} votes, {rule} at least {self.agreement:g}).",
            f"Classifications read: {self.rows_read} ({self.duplicate_rows} duplicates, {self.malformed_rows} malformed).",
        ]
        if classes:
            lines.append("Labels per class: " + ", ".join(f"{c}: {n}" for c, n in sorted(classes.items())))
        for name, items in (("tied", self.ties), ("below the agreement threshold", self.low_agreement),
                            ("waiting for more votes", self.too_few_votes)):
            if items:
                lines.append(f"Left out, {name}: {len(items)} ({', '.join(items[:_EXAMPLES])}"
                             f"{', ...' if len(items) > _EXAMPLES else ''})")
        if self.clear_early:
            lines.append(f"Clear early at the retire confidence: {len(self.clear_early)} "
                         f"({', '.join(self.clear_early[:_EXAMPLES])}{', ...' if len(self.clear_early) > _EXAMPLES else ''})")
        if self.unmapped_answers:
            answers = ", ".join(f"{a!r}: {n}" for a, n in sorted(self.unmapped_answers.items()))
            lines.append(f"Answers not in the answer map (not counted): {answers}")
        if self.without_task:
            lines.append(f"Classifications without a single answer to {self.task}: {self.without_task}")
        if self.without_pool_id:
            lines.append(f"Subjects without a pool id in their metadata (skipped): {self.without_pool_id}")
        lines.extend(f"Malformed: {example}" for example in self.malformed_examples)
        return lines


def consensus_labels(
    rows: Iterable[Mapping[str, Any]],
    *,
    task: str = "T0",
    answer_map: Mapping[str, str] | None = None,
    min_votes: int = 3,
    agreement: float = 0.5,
    key: str = POOL_KEY,
) -> ConsensusReport:
    """Consensus labels from classification-export rows (dicts with the export's column names).

    Each classification gives one vote to each pool item among its subjects (``subject_data`` is
    keyed by subject id; rows with several subjects vote for each). An item is labelled with its
    majority class when it has at least ``min_votes`` votes, the majority's share is at least
    ``agreement``, and the majority beats the runner-up (ties are left out).
    """
    if min_votes < 1:
        raise ConfigurationError(f"min_votes must be at least 1, not {min_votes}")
    if not 0 <= agreement <= 1:
        raise ConfigurationError(f"agreement is a share of the votes, between 0 and 1, not {agreement}")
    report = ConsensusReport(task=task, min_votes=min_votes, agreement=agreement)
    votes: dict[str, Counter] = {}
    unmapped: Counter = Counter()
    seen: set[str] = set()
    for row in rows:
        report.rows_read += 1
        classification_id = str(row.get("classification_id") or "")
        if classification_id:
            if classification_id in seen:
                report.duplicate_rows += 1
                continue
            seen.add(classification_id)
        try:
            answer = answer_of(row.get("annotations"), task)
            pool_ids = _pool_ids(row.get("subject_data"), key, report)
        except ValueError as exc:
            report.malformed_rows += 1
            if len(report.malformed_examples) < _EXAMPLES:
                report.malformed_examples.append(f"classification {classification_id or '?'}: {exc}")
            continue
        if answer is None:
            report.without_task += 1
            continue
        if answer_map is None:
            label = answer
        elif answer in answer_map:
            label = str(answer_map[answer])
        else:
            unmapped[answer] += 1
            continue
        for pool_id in pool_ids:
            votes.setdefault(pool_id, Counter())[label] += 1
    report.unmapped_answers = dict(sorted(unmapped.items()))
    for pool_id in sorted(votes):
        counts = votes[pool_id]
        report.votes[pool_id] = dict(sorted(counts.items()))
        ranked = counts.most_common(2)
        total = sum(counts.values())
        if total < min_votes:
            report.too_few_votes.append(pool_id)
        elif len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            report.ties.append(pool_id)
        elif ranked[0][1] / total < agreement:
            report.low_agreement.append(pool_id)
        else:
            report.labels[pool_id] = ranked[0][0]
    return report


def consensus_from_export(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], **options: Any) -> ConsensusReport:
    """``consensus_labels`` over classification exports: ``.csv``/``.csv.gz``/``.parquet`` files, or
    slice folders (every ``part-*`` file below them, CSV preferred where a part has both)."""
    return consensus_labels(export_rows(paths), **options)


def export_rows(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                columns: Iterable[str] = ("classification_id", "annotations", "subject_data")) -> Iterator[dict[str, Any]]:
    """The rows of classification exports (files or slice folders, as ``consensus_from_export`` takes
    them), as dicts keyed by the export's column names; Parquet parts are read for ``columns`` only."""
    sources = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return _export_rows([file for source in sources for file in export_files(Path(source))], list(columns))


def export_files(source: Path) -> list[Path]:
    """The export files a path stands for: itself, or a slice folder's parts (not its quarantine)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ConfigurationError(f"classification export {source} does not exist; check the path")
    parts: dict[Path, Path] = {}
    for part in sorted(source.rglob("part-*")):
        if "_quarantine" in part.relative_to(source).parts or not _is_export(part):
            continue
        stem = part.with_name(part.name.split(".")[0])
        if stem not in parts or part.suffix != ".parquet":  # the CSV part is the bytes as exported
            parts[stem] = part
    if not parts:
        raise ConfigurationError(f"{source} holds no classification export parts (part-*.csv or part-*.parquet)")
    return [parts[stem] for stem in sorted(parts)]


def _is_export(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz", ".parquet"))


def _export_rows(files: list[Path], columns: list[str]) -> Iterator[dict[str, Any]]:
    for path in files:
        if path.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=[c for c in columns if c in pq.read_schema(path).names])
            yield from table.to_pylist()
            continue
        with export_text(path, errors="replace") as (header, lines):
            if not {"annotations", "subject_data"} <= set(header):
                raise ConfigurationError(
                    f"{path} is not a classification export (it needs annotations and subject_data columns)")
            yield from csv.DictReader(lines, fieldnames=header)


def _json(cell: Any, column: str) -> Any:
    if not isinstance(cell, str):
        raise ValueError(f"{column} is missing")
    try:
        return json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column} is not valid JSON ({exc.msg} at character {exc.pos})") from None


def answer_of(cell: Any, task: str) -> str | None:
    """The answer label a question task got, or None when the classification has no single answer."""
    annotations = _json(cell, "annotations")
    if not isinstance(annotations, list):
        raise ValueError("annotations is not a list")
    for annotation in annotations:
        if isinstance(annotation, dict) and annotation.get("task") == task:
            value = annotation.get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
            return None
    return None


def _pool_ids(cell: Any, key: str, report: ConsensusReport) -> list[str]:
    """The pool ids of a classification's subjects, once each; subjects without one are counted."""
    subjects = _json(cell, "subject_data")
    if not isinstance(subjects, dict):
        raise ValueError("subject_data is not an object keyed by subject id")
    found: list[str] = []
    for metadata in subjects.values():
        pool_id = cell_text(metadata.get(key)) if isinstance(metadata, dict) else None
        if pool_id is None:
            report.without_pool_id += 1
        elif pool_id not in found:
            found.append(pool_id)
    return found


def store_rows(rows: Iterable[Mapping[str, Any]], subject_pool: Mapping[str, str], tasks: Mapping[str, Any],
               key: str = POOL_KEY) -> Iterator[dict[str, Any]]:
    """Rows of the classification store (``zooflow.classifications``) as ``consensus_labels`` reads
    export rows.

    The API gives what the volunteer clicked: answer indexes, and subject ids with no metadata. The
    export turns indexes into labels through the workflow's tasks, and shows each subject's metadata;
    here the labels come from ``tasks`` (the workflow's, as the round pulled them) and the pool id of
    each subject from ``subject_pool`` (subject id -> pool id, the subjects the rounds uploaded). A
    subject zooflow did not upload gets no pool id and is counted as such.
    """
    for row in rows:
        try:
            annotations = json.loads(row["annotations"]) if isinstance(row.get("annotations"), str) else row.get("annotations")
        except json.JSONDecodeError:
            annotations = row.get("annotations")  # consensus_labels reports it as malformed
        else:
            annotations = json.dumps([_labelled(a, tasks) for a in annotations] if isinstance(annotations, list) else annotations)
        subjects = {str(s): ({key: subject_pool[str(s)]} if str(s) in subject_pool else {}) for s in _ids(row.get("subject_ids"))}
        yield {"classification_id": row.get("classification_id"), "annotations": annotations,
               "subject_data": json.dumps(subjects), "subject_ids": row.get("subject_ids"),
               **{column: row.get(column) for column in ("user_id", "created_at", "workflow_id")}}


def _labelled(annotation: Any, tasks: Mapping[str, Any]) -> Any:
    """A question annotation's answer index as the answer's label (what the export shows)."""
    if not isinstance(annotation, dict):
        return annotation
    task = tasks.get(annotation.get("task"))
    value = annotation.get("value")
    answers = task.get("answers") if isinstance(task, dict) else None
    if isinstance(answers, list) and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(answers):
        return annotation | {"value": str(answers[value].get("label", value))}
    return annotation


def _ids(cell: Any) -> list[str]:
    """Subject ids as the store keeps them: a list, or the export's ``;``-separated text."""
    if cell is None:
        return []
    if isinstance(cell, str):
        return [part.strip() for part in cell.split(";") if part.strip()]
    return [str(item) for item in cell]

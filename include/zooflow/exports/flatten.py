"""Classification annotations to a tidy table: one row per classification and task.

The founding scripts pasted "building blocks" per task type; here every shape Panoptes writes is
handled in one place: question (single and multiple answers), survey (one row per chosen species,
with its sub-answers), drawing (marks per tool), text, dropdown, and combo tasks (their sub-tasks
become rows of their own). The task type comes from the workflows export when one is given, and is
read from the annotation's shape otherwise. Rows whose JSON cannot be read are quarantined with
their line numbers, never dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from zooflow.errors import ConfigurationError
from zooflow.exports.layouts import CLASSIFICATIONS
from zooflow.files import atomic_write_bytes

BASE_COLUMNS = (
    "classification_id", "user_name", "user_id", "logged_in", "workflow_id", "workflow_version",
    "created_at", "subject_id", "subject_ids", "task", "task_label", "task_type", "value", "answers",
    "choice", "choice_answers", "marks_count", "marks_per_tool", "seconds_spent", "viewport_width",
    "viewport_height", "retired",
)
DRAWING_KEYS = {"x", "y", "tool", "toolIndex", "toolType", "pathX", "pathY", "points", "r", "rx", "ry", "x1", "x2"}


@dataclass
class FlattenReport:
    source: str
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: Counter = field(default_factory=Counter)
    task_types: Counter = field(default_factory=Counter)
    outputs: list[str] = field(default_factory=list)
    quarantine_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "task_types": dict(self.task_types),
            "outputs": self.outputs,
            "quarantine_file": self.quarantine_file,
        }


def workflow_task_types(workflows_export: str | Path) -> dict[tuple[str, str, str], str]:
    """(workflow_id, major version, task key) -> task type, from a workflows export."""
    types: dict[tuple[str, str, str], str] = {}
    for _, header, values in _rows(Path(workflows_export)):
        record = dict(zip(header, values))
        try:
            tasks = json.loads(record.get("tasks") or "{}")
        except json.JSONDecodeError:
            continue
        for key, task in tasks.items():
            if isinstance(task, dict) and task.get("type"):
                types[(record["workflow_id"], str(record.get("version", "")), key)] = task["type"]
    return types


def _rows(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line number, header, values) for each record: UTF-8, with no limit on a cell's size."""
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise ConfigurationError(f"{path} is empty: no header row")
            line = reader.line_num + 1
            for values in reader:
                yield line, header, values
                line = reader.line_num + 1
    except FileNotFoundError:
        raise ConfigurationError(f"export file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not UTF-8 text near byte {exc.start}; re-download the export") from None


def _infer_type(value: Any) -> str:
    if isinstance(value, str) or value is None:
        return "single"
    if isinstance(value, list):
        if not value:
            return "empty"
        first = value[0]
        if isinstance(first, str):
            return "multiple"
        if isinstance(first, dict):
            if "choice" in first:
                return "survey"
            if "task" in first:
                return "combo"
            if "option" in first:
                return "dropdown"
            if DRAWING_KEYS & set(first):
                return "drawing"
    return "unknown"


def _drawing(value: list[dict[str, Any]]) -> dict[str, Any]:
    per_tool = Counter(str(mark.get("tool_label") or mark.get("tool", mark.get("toolIndex", ""))) for mark in value)
    return {"marks_count": len(value), "marks_per_tool": json.dumps(dict(per_tool), sort_keys=True)}


def _task_rows(annotation: dict[str, Any], task_type: str | None) -> Iterator[dict[str, Any]]:
    value = annotation.get("value")
    kind = task_type or _infer_type(value)
    base = {"task": annotation.get("task"), "task_label": annotation.get("task_label"), "task_type": kind}
    if kind == "combo":
        for sub in value or []:
            if isinstance(sub, dict):
                yield from _task_rows(sub, None)
        return
    if kind == "survey":
        if not value:
            yield base
        for choice in value or []:
            yield base | {"choice": choice.get("choice"), "choice_answers": json.dumps(choice.get("answers") or {}, sort_keys=True)}
        return
    if kind in ("drawing", "empty") and isinstance(value, list):
        yield base | _drawing(value)
        return
    if kind in ("multiple", "shortcut") and isinstance(value, list):
        yield base | {"answers": json.dumps(value), "value": ";".join(str(v) for v in value)}
        return
    if kind == "dropdown" and isinstance(value, list):
        yield base | {"value": ";".join(str(v.get("value")) for v in value if isinstance(v, dict))}
        return
    yield base | {"value": value if isinstance(value, (str, int, float)) or value is None else json.dumps(value)}


def _seconds_spent(metadata: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(metadata["started_at"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(metadata["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return round((end - start).total_seconds(), 3)


def flatten_row(record: dict[str, str], task_types: dict[tuple[str, str, str], str] | None = None) -> list[dict[str, Any]]:
    """The tidy rows of one classification; raises ValueError naming the cell that cannot be read."""
    parsed = {}
    for column in ("annotations", "metadata", "subject_data"):
        try:
            parsed[column] = json.loads(record.get(column) or ("[]" if column == "annotations" else "{}"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{column} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    annotations, metadata, subject_data = parsed["annotations"], parsed["metadata"], parsed["subject_data"]
    if not isinstance(annotations, list):
        raise ValueError("annotations is not a JSON list")
    subject_ids = record.get("subject_ids", "")
    first_subject = subject_ids.split(";")[0] if subject_ids else ""
    subject = subject_data.get(first_subject) if isinstance(subject_data, dict) else None
    subject = subject if isinstance(subject, dict) else {}
    viewport = metadata.get("viewport") if isinstance(metadata, dict) else None
    common = {
        "classification_id": record.get("classification_id"),
        "user_name": record.get("user_name"),
        "user_id": record.get("user_id") or None,
        "logged_in": not (record.get("user_name") or "").startswith("not-logged-in"),
        "workflow_id": record.get("workflow_id"),
        "workflow_version": record.get("workflow_version"),
        "created_at": record.get("created_at"),
        "subject_id": first_subject,
        "subject_ids": subject_ids,
        "seconds_spent": _seconds_spent(metadata) if isinstance(metadata, dict) else None,
        "viewport_width": (viewport or {}).get("width") if isinstance(viewport, dict) else None,
        "viewport_height": (viewport or {}).get("height") if isinstance(viewport, dict) else None,
        "retired": bool(subject.get("retired")),
    }
    common |= {f"subject.{key}": _cell(value) for key, value in subject.items() if key != "retired"}
    major = str(record.get("workflow_version", "")).split(".")[0]
    rows = []
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError("an annotation is not a JSON object")
        declared = (task_types or {}).get((str(record.get("workflow_id")), major, str(annotation.get("task"))))
        rows.extend(common | task for task in _task_rows(annotation, declared))
    return rows


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def flatten_export(
    source: str | Path,
    out_base: str | Path,
    *,
    formats: tuple[str, ...] = ("csv", "parquet"),
    workflows_export: str | Path | None = None,
) -> FlattenReport:
    """Flatten a classification export (or a slice of one) to ``out_base.csv`` / ``out_base.parquet``.

    Meant for slices: the tidy table is built in memory before it is written atomically.
    """
    path, out_base = Path(source), Path(out_base)
    types = workflow_task_types(workflows_export) if workflows_export else None
    report = FlattenReport(source=str(path))
    rows: list[dict[str, Any]] = []
    quarantined: list[tuple[int, str, str]] = []
    for line, header, values in _rows(path):
        report.rows_read += 1
        record = dict(zip(header, values))
        if report.rows_read == 1:
            missing = [c for c in ("annotations", "subject_ids") if c not in header]
            if missing:
                raise ConfigurationError(
                    f"{path} is not a classification export (no {', '.join(missing)} column); flatten needs "
                    f"the columns {', '.join(CLASSIFICATIONS.required)}"
                )
        if len(values) != len(header):
            reason = f"expected {len(header)} fields, found {len(values)} (broken quoting?)"
        else:
            try:
                flat = flatten_row(record, types)
            except ValueError as exc:
                reason = str(exc)
            else:
                rows.extend(flat)
                report.task_types.update(r["task_type"] for r in flat)
                continue
        quarantined.append((line, reason, json.dumps(values, ensure_ascii=False)))
        report.quarantine_reasons[reason] += 1
        report.rows_quarantined += 1
    frame = pd.DataFrame(rows)
    columns = list(BASE_COLUMNS) + sorted(c for c in frame.columns if c not in BASE_COLUMNS)
    frame = frame.reindex(columns=columns)
    report.rows_written = len(frame)
    if "csv" in formats:
        target = out_base.with_suffix(".csv")
        atomic_write_bytes(target, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        report.outputs.append(str(target))
    if "parquet" in formats:
        target = out_base.with_suffix(".parquet")
        buffer = io.BytesIO()
        frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(buffer, index=False)
        atomic_write_bytes(target, buffer.getvalue())
        report.outputs.append(str(target))
    if quarantined:
        target = out_base.parent / f"{out_base.name}.quarantine.csv"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", "reason", "record"])
        writer.writerows(quarantined)
        atomic_write_bytes(target, out.getvalue().encode("utf-8"))
        report.quarantine_file = str(target)
    return report

"""Exports to tidy tables: one row per classification and task.

The founding scripts pasted "building blocks" per task type; here every shape Panoptes writes is
handled in one place, with columns by task type:

* question: ``value`` (the answer; several answers ``;``-joined) and ``answers`` (a JSON list, for
  multiple-answer and shortcut questions);
* survey: ``choice`` (the species, ``;``-joined when several), ``choices_count`` and
  ``choice_answers`` (a JSON list of each choice with its sub-answers);
* drawing: ``marks_count`` and ``marks_per_tool`` (a JSON object of tool label to count);
* text and dropdown: ``value``; combo tasks: each sub-task becomes a row of its own.

Every row also carries the subject's metadata from ``subject_data`` (``subject.<key>`` columns),
the time spent and the viewport from ``metadata``, and ``logged_in`` (False for not-logged-in
volunteers). The task type comes from the workflows export when one is given, and is read from the
annotation's shape otherwise (a text answer and a single-answer question look the same; both are
``single`` then). A row whose JSON cannot be read is quarantined with its physical line number,
never dropped silently.

The subject export flattens to one row per subject row (``metadata.<key>`` columns, locations as
a list), and the workflows export to one row per workflow version and task, with the questions,
answers, tools and choices spelled out from its ``strings``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing
from zooflow.exports.bounds import export_text
from zooflow.exports.layouts import CLASSIFICATION_COLUMNS, SUBJECT_COLUMNS
from zooflow.files import atomic_write_bytes

BASE_COLUMNS = (
    "classification_id", "user_name", "user_id", "logged_in", "workflow_id", "workflow_version",
    "created_at", "subject_id", "subject_ids", "task", "task_label", "task_type", "value", "answers",
    "choice", "choices_count", "choice_answers", "marks_count", "marks_per_tool", "seconds_spent",
    "viewport_width", "viewport_height", "retired",
)
SUBJECT_BASE_COLUMNS = (
    "subject_id", "project_id", "workflow_id", "subject_set_id", "classifications_count", "retired_at",
    "retirement_reason", "created_at", "updated_at", "locations", "locations_count",
)
WORKFLOW_TASK_COLUMNS = (
    "workflow_id", "display_name", "workflow_version", "version", "minor_version", "active", "first_task",
    "task", "task_type", "question", "answers", "tools", "choices", "next",
)
WORKFLOW_COLUMNS = ("workflow_id", "display_name", "version", "tasks", "strings")
DRAWING_KEYS = {"x", "y", "tool", "toolIndex", "toolType", "pathX", "pathY", "points", "r", "rx", "ry", "x1", "x2",
                "width", "height", "angle"}
INTEGER_COLUMNS = {"choices_count", "marks_count", "locations_count", "viewport_width", "viewport_height"}


@dataclass
class FlattenReport:
    source: str
    kind: str = "classifications"
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
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "task_types": dict(self.task_types),
            "outputs": self.outputs,
            "quarantine_file": self.quarantine_file,
        }


# -- reading -----------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(physical line, header, values) per record: UTF-8, ``.csv`` or ``.csv.gz``, within the bounds
    of ``bounds.export_text``. Bytes that are not UTF-8 come through as surrogates (see ``_not_utf8``)."""
    with export_text(path) as (header, lines):
        reader = csv.reader(lines)
        line = 2
        for values in reader:
            yield line, header, values
            line = reader.line_num + 2


_SURROGATE = re.compile("[\udc80-\udcff]")


def _not_utf8(values: list[str]) -> bool:
    return any(_SURROGATE.search(value) for value in values)


def _json(record: dict[str, str], column: str, default: str) -> Any:
    try:
        return json.loads(record.get(column) or default)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column} is not valid JSON ({exc.msg} at character {exc.pos})") from None


def _kind(header: list[str]) -> str:
    if "annotations" in header and "subject_ids" in header:
        return "classifications"
    if "subject_id" in header and "locations" in header:
        return "subjects"
    if "tasks" in header and "strings" in header and "workflow_id" in header:
        return "workflows"
    raise ConfigurationError(
        f"not a Panoptes classification, subject or workflows export (header starts {listing(header, 4)}); "
        f"flatten needs the columns {', '.join(CLASSIFICATION_COLUMNS)}"
    )


# -- workflows ---------------------------------------------------------------------------------


def _resolve(node: Any, strings: dict[str, str]) -> Any:
    """Task definitions with their string keys (``T0.question``) replaced by the text."""
    if isinstance(node, dict):
        return {k: strings.get(v, v) if isinstance(v, str) else _resolve(v, strings) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(item, strings) for item in node]
    return node


def workflow_tasks(record: dict[str, str]) -> list[dict[str, Any]]:
    """The tasks of one row of a workflows export (one workflow version), text spelled out."""
    tasks = _json(record, "tasks", "{}")
    strings = _json(record, "strings", "{}")
    if not isinstance(tasks, dict) or not isinstance(strings, dict):
        raise ValueError("tasks and strings must be JSON objects")
    version, minor = record.get("version", ""), record.get("minor_version", "")
    rows = []
    for key, task in _resolve(tasks, strings).items():
        if not isinstance(task, dict):
            continue
        answers = [a.get("label") for a in task.get("answers") or [] if isinstance(a, dict)]
        tools = [{"label": t.get("label"), "type": t.get("type")} for t in task.get("tools") or [] if isinstance(t, dict)]
        choices = task.get("choicesOrder") or sorted((task.get("choices") or {}).keys())
        rows.append({
            "workflow_id": record.get("workflow_id"), "display_name": record.get("display_name"),
            "workflow_version": f"{version}.{minor}" if minor else version, "version": version,
            "minor_version": minor, "active": record.get("active"), "first_task": record.get("first_task"),
            "task": key, "task_type": task.get("type"),
            "question": task.get("question") or task.get("instruction"),
            "answers": json.dumps(answers, ensure_ascii=False) if answers else None,
            "tools": json.dumps(tools, ensure_ascii=False) if tools else None,
            "choices": json.dumps(choices, ensure_ascii=False) if choices else None,
            "next": task.get("next"),
        })
    return rows


def workflow_task_types(workflows_export: str | Path) -> dict[tuple[str, str, str], str]:
    """(workflow_id, major version, task key) -> task type, from a workflows export."""
    types: dict[tuple[str, str, str], str] = {}
    for _, header, values in _rows(Path(workflows_export)):
        if _kind(header) != "workflows":
            raise ConfigurationError(f"{workflows_export} is not a workflows export")
        record = dict(zip(header, values))
        try:
            tasks = workflow_tasks(record)
        except ValueError:
            continue
        for task in tasks:
            if task["task_type"]:
                types[(str(record["workflow_id"]), str(record.get("version", "")), task["task"])] = task["task_type"]
    return types


# -- classifications ---------------------------------------------------------------------------


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


def _marks(value: list[Any]) -> dict[str, Any]:
    per_tool = Counter(
        str(mark.get("tool_label") or mark.get("tool", mark.get("toolIndex", ""))) if isinstance(mark, dict) else ""
        for mark in value
    )
    return {"marks_count": len(value), "marks_per_tool": json.dumps(dict(per_tool), sort_keys=True, ensure_ascii=False)}


def _task_rows(annotation: dict[str, Any], task_type: str | None) -> Iterator[dict[str, Any]]:
    value = annotation.get("value")
    kind = task_type or _infer_type(value)
    base = {"task": annotation.get("task"), "task_label": annotation.get("task_label"), "task_type": kind}
    if kind == "combo" and isinstance(value, list):
        for sub in value:
            if isinstance(sub, dict):
                yield from _task_rows(sub, None)
        return
    if kind == "survey" and isinstance(value, list):
        picks = [c for c in value if isinstance(c, dict)]
        yield base | {
            "choice": ";".join(str(c.get("choice")) for c in picks) or None,
            "choices_count": len(picks),
            "choice_answers": json.dumps([{"choice": c.get("choice"), "answers": c.get("answers") or {}} for c in picks],
                                         sort_keys=True, ensure_ascii=False),
        }
        return
    if kind in ("drawing", "empty") and isinstance(value, list):
        yield base | _marks(value)
        return
    if isinstance(value, list) and all(isinstance(v, str) or v is None for v in value):
        yield base | {"answers": json.dumps(value, ensure_ascii=False), "value": ";".join(str(v) for v in value)}
        return
    if kind == "dropdown" and isinstance(value, list):
        yield base | {"value": ";".join(str(v.get("value")) for v in value if isinstance(v, dict))}
        return
    if isinstance(value, (str, int, float)) or value is None:
        yield base | {"value": value}
        return
    yield base | {"value": json.dumps(value, sort_keys=True, ensure_ascii=False)}


def _seconds_spent(metadata: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(metadata["started_at"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(metadata["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return round((end - start).total_seconds(), 3)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def flatten_row(record: dict[str, str], task_types: dict[tuple[str, str, str], str] | None = None) -> list[dict[str, Any]]:
    """The tidy rows of one classification; raises ValueError naming the cell that cannot be read."""
    annotations = _json(record, "annotations", "[]")
    metadata = _json(record, "metadata", "{}")
    subject_data = _json(record, "subject_data", "{}")
    if not isinstance(annotations, list):
        raise ValueError("annotations is not a JSON list")
    metadata = metadata if isinstance(metadata, dict) else {}
    subject_ids = record.get("subject_ids", "")
    first_subject = subject_ids.split(";")[0] if subject_ids else ""
    subject = subject_data.get(first_subject) if isinstance(subject_data, dict) else None
    subject = subject if isinstance(subject, dict) else {}
    viewport = metadata.get("viewport") if isinstance(metadata.get("viewport"), dict) else {}
    user_name = record.get("user_name") or ""
    common = {
        "classification_id": record.get("classification_id"),
        "user_name": user_name,
        "user_id": record.get("user_id") or None,
        "logged_in": not user_name.startswith("not-logged-in"),
        "workflow_id": record.get("workflow_id"),
        "workflow_version": record.get("workflow_version"),
        "created_at": record.get("created_at"),
        "subject_id": first_subject,
        "subject_ids": subject_ids,
        "seconds_spent": _seconds_spent(metadata),
        "viewport_width": viewport.get("width"),
        "viewport_height": viewport.get("height"),
        "retired": bool(subject.get("retired")),
    }
    common |= {f"subject.{key}": _cell(value) for key, value in subject.items() if key != "retired"}
    common |= {name: value for name, value in record.items() if name not in CLASSIFICATION_COLUMNS and name not in common}
    major = str(record.get("workflow_version", "")).split(".")[0]
    rows = []
    for annotation in _by_task(annotations):
        declared = (task_types or {}).get((str(record.get("workflow_id")), major, str(annotation.get("task"))))
        rows.extend(common | task for task in _task_rows(annotation, declared))
    return rows


def _by_task(annotations: list[Any]) -> list[dict[str, Any]]:
    """One annotation per task: older survey and drawing exports repeat a task, one entry per
    choice or mark; their value lists are joined. Other repeats stay rows of their own."""
    merged: list[dict[str, Any]] = []
    seen: dict[Any, dict[str, Any]] = {}
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError("an annotation is not a JSON object")
        key = annotation.get("task")
        first = seen.get(key)
        if first is not None and isinstance(first.get("value"), list) and isinstance(annotation.get("value"), list):
            first["value"] = first["value"] + annotation["value"]
            continue
        copy = dict(annotation)
        merged.append(copy)
        seen.setdefault(key, copy)
    return merged


def subject_row(record: dict[str, str]) -> dict[str, Any]:
    """One row of a subject export, its metadata spread into ``metadata.<key>`` columns."""
    metadata = _json(record, "metadata", "{}")
    locations = _json(record, "locations", "{}")
    if not isinstance(metadata, dict):
        raise ValueError("metadata is not a JSON object")
    if isinstance(locations, dict):  # {"0": url, "1": url}: in index order
        urls = [locations[k] for k in sorted(locations, key=lambda k: int(k) if str(k).isdigit() else 10**9)]
    elif isinstance(locations, list):
        urls = [next(iter(item.values())) if isinstance(item, dict) and item else item for item in locations]
    else:
        raise ValueError("locations is not a JSON object")
    row = {name: record.get(name) for name in SUBJECT_BASE_COLUMNS if name in SUBJECT_COLUMNS}
    row |= {"locations": json.dumps(urls, ensure_ascii=False), "locations_count": len(urls)}
    row |= {f"metadata.{key}": _cell(value) for key, value in metadata.items()}
    return row


# -- the export --------------------------------------------------------------------------------


def flatten_export(
    source: str | Path,
    out_base: str | Path,
    *,
    formats: tuple[str, ...] = ("csv", "parquet"),
    workflows_export: str | Path | None = None,
) -> FlattenReport:
    """Flatten an export (or a slice of one) to ``out_base.csv`` / ``out_base.parquet``.

    Classification exports give one row per classification and task, subject exports one row per
    subject row, workflows exports one row per workflow version and task. Meant for slices: the
    table is built in memory before it is written atomically.
    """
    path, out_base = Path(source), Path(out_base)
    for suffix in (".csv", ".parquet"):
        if out_base.with_suffix(suffix).resolve() == path.resolve():
            raise ConfigurationError(f"flattening {path} to {out_base}{suffix} would overwrite it; choose another name")
    types = workflow_task_types(workflows_export) if workflows_export else None
    report = FlattenReport(source=str(path))
    rows: list[dict[str, Any]] = []
    quarantined: list[tuple[int, str, str]] = []
    kind = None
    for line, header, values in _rows(path):
        if kind is None:
            kind = report.kind = _kind(header)
        report.rows_read += 1
        reason = None
        if len(values) != len(header):
            reason = f"expected {len(header)} fields, found {len(values)} (broken quoting?)"
        elif _not_utf8(values):
            reason = "not valid UTF-8"
        else:
            record = dict(zip(header, values))
            try:
                if kind == "classifications":
                    flat = flatten_row(record, types)
                    report.task_types.update(r["task_type"] for r in flat)
                elif kind == "subjects":
                    flat = [subject_row(record)]
                else:
                    flat = workflow_tasks(record)
                    report.task_types.update(r["task_type"] for r in flat)
            except ValueError as exc:
                reason = str(exc)
            else:
                rows.extend(flat)
        if reason:
            cells = [v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for v in values]
            quarantined.append((line, reason, json.dumps(cells, ensure_ascii=False)))
            report.quarantine_reasons[reason] += 1
            report.rows_quarantined += 1
    if kind is None:  # a header and no rows: still say what it is
        with export_text(path, errors="replace") as (header, _):
            kind = report.kind = _kind(header)
    import pandas as pd  # here, once the rows are read: importing this module (the CLI, the DAG) stays cheap

    base = {"classifications": BASE_COLUMNS, "subjects": SUBJECT_BASE_COLUMNS, "workflows": WORKFLOW_TASK_COLUMNS}[kind]
    frame = pd.DataFrame(rows)
    columns = list(base) + sorted(c for c in frame.columns if c not in base)
    frame = frame.reindex(columns=columns)
    for column in INTEGER_COLUMNS & set(frame.columns):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if (numbers.dropna() % 1 == 0).all():  # counts, and viewports that are whole pixels
            frame[column] = numbers.astype("Int64")
    report.rows_written = len(frame)
    if "csv" in formats:
        target = out_base.with_suffix(".csv")
        atomic_write_bytes(target, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        report.outputs.append(str(target))
    if "parquet" in formats:
        target = out_base.with_suffix(".parquet")
        buffer = io.BytesIO()
        typed = {c: "string" for c in frame.columns if frame[c].dtype == object or frame[c].isna().all()}
        frame.astype(typed).to_parquet(buffer, index=False)
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

"""Exports to tidy tables: one row per classification and task, and one per drawn mark.

The founding scripts pasted "building blocks" per task type; here every task type Panoptes writes
has its columns (:mod:`zooflow.exports.annotations`), and every mark of a drawing task a row in a
second table, ``<out>-marks`` (:mod:`zooflow.exports.marks`), with its tool, shape, frame and
coordinates. Every task row also carries the subject's metadata from ``subject_data``
(``subject.<key>`` columns), the time spent and the viewport from ``metadata``, and ``logged_in``
(False for not-logged-in volunteers).

Task types come from the workflows export when one is given (:mod:`zooflow.exports.workflow_export`),
then from the annotation. An empty list (no mark drawn, no species chosen) takes the type its task
has in any other row of the file; the rows are typed at the end, as the tables are written. A row
whose JSON cannot be read is quarantined with its physical line number, never dropped silently.

The tables are written as the rows come (:mod:`zooflow.exports.flat_tables`), so a full export
flattens in memory that does not grow with it. The subject export flattens to one row per subject
row (``metadata.<key>`` columns, locations as a list), and the workflows export to one row per
workflow version and task, with the questions, answers, tools and choices spelled out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing
from zooflow.exports.annotations import (
    TASK_COLUMNS, TaskTyper, annotation_rows, attach_mark_answers, by_task, task_columns,
)
from zooflow.exports.bounds import export_text
from zooflow.exports.flat_tables import FlatTable, publish, table_base, table_file, unstage
from zooflow.exports.layouts import CLASSIFICATION_COLUMNS, SUBJECT_COLUMNS
from zooflow.exports.marks import MARK_COLUMNS, SHAPE_PARAMETERS
from zooflow.exports.workflow_export import WORKFLOW_TASK_COLUMNS, TaskDefinitions, parse_json_cell, task_table_row, workflow_tasks
from zooflow.files import atomic_write_bytes

BASE_COLUMNS = (
    "classification_id", "user_name", "user_id", "logged_in", "workflow_id", "workflow_version", "created_at",
    "subject_id", "subject_ids", *TASK_COLUMNS, "seconds_spent", "viewport_width", "viewport_height", "retired",
)
SUBJECT_BASE_COLUMNS = (
    "subject_id", "project_id", "workflow_id", "subject_set_id", "classifications_count", "retired_at",
    "retirement_reason", "created_at", "updated_at", "locations", "locations_count",
)
INTEGER_COLUMNS = {"choices_count", "marks_count", "locations_count", "viewport_width", "viewport_height",
                   "mark_index", "frame", "tool_index"}
# an empty list takes one of these types when its task has it in another row (not "single": its value is no list)
LIST_TYPES = {"survey", "drawing", "transcription", "multiple", "shortcut", "dropdown", "highlighter"}


@dataclass
class FlattenReport:
    source: str
    kind: str = "classifications"
    rows_read: int = 0
    rows_written: int = 0
    marks_written: int = 0
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
            "marks_written": self.marks_written,
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


def task_definitions(workflows_export: str | Path) -> TaskDefinitions:
    """Each task's type, tools and dropdown options per workflow version, from a workflows export."""
    definitions = TaskDefinitions()
    for _, header, values in _rows(Path(workflows_export)):
        if _kind(header) != "workflows":
            raise ConfigurationError(f"{workflows_export} is not a workflows export")
        record = dict(zip(header, values))
        try:
            tasks = workflow_tasks(record)
        except ValueError:
            continue
        for task in tasks:
            definitions.add(record, task)
    return definitions


# -- classifications ---------------------------------------------------------------------------


def _seconds_spent(metadata: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(metadata["started_at"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(metadata["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return round((end - start).total_seconds(), 3)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def flatten_row(record: dict[str, str], definitions: TaskDefinitions | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tidy rows and drawn marks of one classification; raises ValueError naming the cell that
    cannot be read."""
    annotations = parse_json_cell(record, "annotations", "[]")
    metadata = parse_json_cell(record, "metadata", "{}")
    subject_data = parse_json_cell(record, "subject_data", "{}")
    if not isinstance(annotations, list):
        raise ValueError("annotations is not a JSON list")
    metadata = metadata if isinstance(metadata, dict) else {}
    subject_ids = record.get("subject_ids", "")
    first_subject = subject_ids.split(";")[0] if subject_ids else ""
    subject = subject_data.get(first_subject) if isinstance(subject_data, dict) else None
    subject = subject if isinstance(subject, dict) else {}
    viewport = metadata.get("viewport") if isinstance(metadata.get("viewport"), dict) else {}
    user_name = record.get("user_name") or ""
    identity = {
        "classification_id": record.get("classification_id"),
        "user_name": user_name,
        "subject_id": first_subject,
        "workflow_id": record.get("workflow_id"),
        "workflow_version": record.get("workflow_version"),
        "created_at": record.get("created_at"),
    }
    common = identity | {
        "user_id": record.get("user_id") or None,
        "logged_in": not user_name.startswith("not-logged-in"),
        "subject_ids": subject_ids,
        "seconds_spent": _seconds_spent(metadata),
        "viewport_width": viewport.get("width"),
        "viewport_height": viewport.get("height"),
        "retired": bool(subject.get("retired")),
    }
    common |= {f"subject.{key}": _cell(value) for key, value in subject.items() if key != "retired"}
    common |= {name: value for name, value in record.items() if name not in CLASSIFICATION_COLUMNS and name not in common}
    typer = TaskTyper(definitions, record.get("workflow_id", ""), record.get("workflow_version", ""))
    rows, marks = [], []
    for annotation in by_task(attach_mark_answers(annotations)):
        for task, drawn in annotation_rows(annotation, typer):
            rows.append(common | task)
            marks.extend(identity | mark for mark in drawn)
    return rows, marks


class _EmptyLists:
    """Tasks seen with an empty list, typed at the end by what their task is in other rows."""

    def __init__(self) -> None:
        self.types: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.empty: Counter = Counter()

    def see(self, workflow_id: Any, row: dict[str, Any]) -> None:
        key = (str(workflow_id), str(row["task"]))
        if row["task_type"] == "empty":
            self.empty[key] += 1
        elif row["task_type"] in LIST_TYPES:
            self.types[key].add(row["task_type"])

    def resolved(self) -> dict[tuple[str, str], str]:
        """(workflow_id, task) -> type, for empty lists whose task has one type elsewhere."""
        return {key: next(iter(self.types[key])) for key in self.empty if len(self.types.get(key, ())) == 1}

    def retype(self, frame: Any, resolved: dict[tuple[str, str], str]) -> Any:
        """A part of the tidy table with its empty lists typed (their columns as that type's empty value)."""
        if not resolved or frame.empty:
            return frame
        empty = (frame["task_type"] == "empty").fillna(False).to_numpy(bool)
        workflows, tasks = frame["workflow_id"].astype(str).to_numpy(), frame["task"].astype(str).to_numpy()
        cleared = {name: None for name in TASK_COLUMNS if name not in ("task", "task_label", "combo_task")}
        for (workflow, task), kind in resolved.items():
            rows = empty & (workflows == workflow) & (tasks == task)
            if rows.any():
                for name, value in (cleared | task_columns([], kind) | {"task_type": kind}).items():
                    frame.loc[rows, name] = value
        return frame


def subject_row(record: dict[str, str]) -> dict[str, Any]:
    """One row of a subject export, its metadata spread into ``metadata.<key>`` columns."""
    metadata = parse_json_cell(record, "metadata", "{}")
    locations = parse_json_cell(record, "locations", "{}")
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
    chunk_rows: int | None = None,
) -> FlattenReport:
    """Flatten an export (or a slice of one) to ``out_base.csv`` / ``out_base.parquet``, and a
    classification export's drawn marks to ``out_base-marks.csv`` / ``-marks.parquet``.

    Classification exports give one row per classification and task, subject exports one row per
    subject row, workflows exports one row per workflow version and task. Each output replaces its
    file atomically once complete; memory holds ``chunk_rows`` rows at a time, not the export.
    """
    path, out_base = Path(source), Path(out_base)
    for fmt in ("csv", "parquet"):
        for target in (table_file(out_base, fmt), table_file(marks_path(out_base), fmt)):
            if target.resolve() == path.resolve():
                raise ConfigurationError(f"flattening {path} to {target} would overwrite it; choose another name")
    definitions = task_definitions(workflows_export) if workflows_export else None
    report = FlattenReport(source=str(path))
    quarantined: list[tuple[int, str, str]] = []
    sizes = {"chunk_rows": chunk_rows} if chunk_rows else {}
    tables: dict[str, FlatTable] = {}
    staged: dict[Path, Path] = {}
    empty_lists = _EmptyLists()
    try:
        for line, header, values in _rows(path):
            if not tables:
                tables = _tables(_kind(header), out_base, formats, sizes)
                report.kind = _kind(header)
            report.rows_read += 1
            reason = _unreadable(header, values)
            if reason is None:
                try:
                    _flatten_record(report, dict(zip(header, values)), definitions, tables, empty_lists)
                except ValueError as exc:
                    reason = str(exc)
            if reason:
                cells = [v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for v in values]
                quarantined.append((line, reason, json.dumps(cells, ensure_ascii=False)))
                report.quarantine_reasons[reason] += 1
                report.rows_quarantined += 1
        if not tables:  # a header and no rows: still say what it is, and write the empty tables
            with export_text(path, errors="replace") as (header, _):
                report.kind = _kind(header)
            tables = _tables(report.kind, out_base, formats, sizes)
        resolved = empty_lists.resolved()
        for key, kind in resolved.items():
            report.task_types[kind] += empty_lists.empty[key]
            report.task_types["empty"] -= empty_lists.empty[key]
        report.task_types = +report.task_types
        staged |= tables["rows"].stage(lambda frame: empty_lists.retype(frame, resolved))
        report.rows_written = tables["rows"].rows_written
        if "marks" in tables:
            staged |= tables["marks"].stage()
            report.marks_written = tables["marks"].rows_written
        report.outputs = publish(staged)
    finally:
        unstage(staged)
        for table in tables.values():
            table.discard()
    if quarantined:
        target = out_base.parent / f"{out_base.name}.quarantine.csv"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", "reason", "record"])
        writer.writerows(quarantined)
        atomic_write_bytes(target, out.getvalue().encode("utf-8"))
        report.quarantine_file = str(target)
    return report


def marks_path(out_base: Path) -> Path:
    """Where the marks table of ``out_base``'s tidy table goes (before its format's suffix)."""
    base = table_base(out_base)
    return base.with_name(f"{base.name}-marks")


def _tables(kind: str, out_base: Path, formats: tuple[str, ...], sizes: dict[str, int]) -> dict[str, FlatTable]:
    base = {"classifications": BASE_COLUMNS, "subjects": SUBJECT_BASE_COLUMNS, "workflows": WORKFLOW_TASK_COLUMNS}[kind]
    tables = {"rows": FlatTable(out_base, base, formats=formats, integer_columns=INTEGER_COLUMNS, **sizes)}
    if kind == "classifications":
        tables["marks"] = FlatTable(marks_path(out_base), MARK_COLUMNS, formats=formats,
                                    integer_columns=INTEGER_COLUMNS, float_columns=SHAPE_PARAMETERS,
                                    sized_columns=("points", "details"), **sizes)
    return tables


def _unreadable(header: list[str], values: list[str]) -> str | None:
    if len(values) != len(header):
        return f"expected {len(header)} fields, found {len(values)} (broken quoting?)"
    if _not_utf8(values):
        return "not valid UTF-8"
    return None


def _flatten_record(report: FlattenReport, record: dict[str, str], definitions: TaskDefinitions | None,
                    tables: dict[str, FlatTable], empty_lists: _EmptyLists) -> None:
    if report.kind == "classifications":
        rows, marks = flatten_row(record, definitions)
        for row in rows:
            empty_lists.see(row["workflow_id"], row)
        tables["marks"].add(marks)
    elif report.kind == "subjects":
        rows = [subject_row(record)]
    else:
        rows = [task_table_row(task) for task in workflow_tasks(record)]
    report.task_types.update(r["task_type"] for r in rows if report.kind != "subjects")
    tables["rows"].add(rows)

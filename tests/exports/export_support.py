"""Helpers for the export slicer and flattener tests, and a plain-Python reference slicer.

The reference (``reference_slice``) reads the file with the csv module, one record at a time, and
applies the spec's rules as written in the issue. The slicer must agree with it on every row: which
rows are kept (and their exact bytes), which are quarantined and on which physical line, and how
many each test filtered out.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from zooflow.exports.slice_spec import SliceSpec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exports"
CLASSIFICATION_SAMPLES = [
    "afc_cat-project-classifications.csv",
    "afc_batchagg_cls_export.csv",
    "dd_wildcam_gorongosa_sample.csv",
    "dd_ap-aas229-test-classifications.csv",
]
SUBJECT_SAMPLES = ["afc_cat-project-subjects.csv"]
FALSY = {"", "na", "n/a", "nan", "null", "none", "false", "f", "0", "no"}
COLUMNS = {name: i for i, name in enumerate(  # a classification export's columns, by index
    "classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
    "gold_standard,expert,metadata,annotations,subject_data,subject_ids".split(","))}


def read_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def physical_lines(data: bytes) -> list[bytes]:
    """Lines ended by ``\\n`` (a bare ``\\r`` does not end a line), with their line breaks."""
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def records(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Header line and (first physical line, record bytes) of a well-formed CSV, by quote parity."""
    lines = physical_lines(data)
    header, out, current, start, quotes = lines[0], [], b"", 0, 0
    for number, line in enumerate(lines[1:], start=2):
        if not current:
            start = number
        current += line
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            out.append((start, current))
            current, quotes = b"", 0
    assert not current, "the fixture ends inside a quoted cell"
    return header, out


def replace_cell(record: bytes, column: int, value: str) -> bytes:
    """The record with one cell replaced (re-quoted as needed)."""
    row = next(csv.reader(io.StringIO(record.decode("utf-8"), newline="")))
    row[column] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue().encode("utf-8")


def with_annotations(tmp_path: Path, values: list[list[dict]], name: str = "synthetic.csv") -> Path:
    """A classification export of one real row per annotation list, numbered 800000000 on."""
    header, rows = records(read_bytes("afc_batchagg_cls_export.csv"))
    out = [header]
    for number, annotations in enumerate(values):
        record = replace_cell(rows[0][1], COLUMNS["classification_id"], str(800000000 + number))
        out.append(replace_cell(record, COLUMNS["annotations"], json.dumps(annotations)))
    path = tmp_path / name
    path.write_bytes(b"".join(out))
    return path


@dataclass
class Expected:
    rows_read: int = 0
    kept: list[bytes] = field(default_factory=list)  # records as bytes, file order
    quarantined: dict[int, str] = field(default_factory=dict)  # first line -> reason keyword
    filtered: Counter = field(default_factory=Counter)


def _time(cell: str) -> datetime | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( UTC)?", cell):
        return None
    try:
        return datetime.strptime(cell[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def reference_slice(path: Path, spec: SliceSpec) -> Expected:
    """What slicing ``path`` with ``spec`` must give, computed the slow, obvious way."""
    csv.field_size_limit(sys.maxsize)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    column = {name: i for i, name in enumerate(header)}
    subjects_column = "subject_ids" if "subject_ids" in column else "subject_id"
    id_column = "classification_id" if "subject_ids" in column else "subject_id"
    lines = physical_lines(raw)
    out = Expected()
    line = reader.line_num + 1
    for row in reader:
        start, line = line, reader.line_num + 1
        record = b"".join(lines[start - 1: line - 1])
        out.rows_read += 1
        reason = _row_problem(row, header, column, subjects_column, id_column, spec, record)
        if reason:
            out.quarantined[start] = reason
            continue
        for name, passes in _tests(row, column, subjects_column, spec):
            if not passes:
                out.filtered[name] += 1
                break
        else:
            out.kept.append(record)
    return out


def _row_problem(row, header, column, subjects_column, id_column, spec, record) -> str | None:
    if record.strip(b"\r\n") == b"":
        return "blank"
    if len(row) != len(header):
        return "fields"
    if any("\udc80" <= ch <= "\udcff" for cell in row for ch in cell):
        return "UTF-8"
    if not re.fullmatch(r"\d{1,18}", row[column[id_column]]):
        return id_column
    if _time(row[column["created_at"]]) is None:
        return "created_at"
    pattern = r"\d{1,18}(;\d{1,18})*" if subjects_column == "subject_ids" else r"\d{1,18}"
    if not re.fullmatch(pattern, row[column[subjects_column]]):
        return subjects_column
    if not re.fullmatch(r"\d{0,18}", row[column["workflow_id"]]):
        return "workflow_id"
    if spec.min_workflow_version and "workflow_version" in column:
        if not re.fullmatch(r"\d{1,9}(\.\d{1,9})?", row[column["workflow_version"]]):
            return "workflow_version"
    if spec.subject_set_ids and "subject_set_id" in column:
        if not re.fullmatch(r"\d{0,18}", row[column["subject_set_id"]]):
            return "subject_set_id"
    return None


def _tests(row, column, subjects_column, spec):
    if spec.workflow_ids:
        yield "workflow_ids", row[column["workflow_id"]] != "" and int(row[column["workflow_id"]]) in spec.workflow_ids
    if spec.min_workflow_version and "workflow_version" in column:
        major, _, minor = row[column["workflow_version"]].partition(".")
        yield "min_workflow_version", (int(major), int(minor or 0)) >= spec.min_workflow_version
    if spec.subject_id_ranges:
        ids = [int(s) for s in row[column[subjects_column]].split(";")]
        yield "subject_ids", any(low <= s <= high for s in ids for low, high in spec.subject_id_ranges)
    if spec.subject_set_ids and "subject_set_id" in column:
        cell = row[column["subject_set_id"]]
        yield "subject_set_ids", cell != "" and int(cell) in spec.subject_set_ids
    moment = _time(row[column["created_at"]])
    if spec.since:
        yield "since", moment >= spec.since
    if spec.until:
        yield "until", moment < spec.until
    for name, choice in (("gold_standard", spec.gold), ("expert", spec.expert)):
        if choice == "include" or name not in column:
            continue
        flagged = row[column[name]].strip().lower() not in FALSY
        yield name, flagged if choice == "only" else not flagged


def written_rows(out_dir: Path) -> list[bytes]:
    """The records of every CSV partition under ``out_dir``, in partition order, headers dropped."""
    found = []
    for part in sorted(out_dir.glob("created_date=*/part-*.csv")):
        found.extend(record for _, record in records(part.read_bytes())[1])
    return found


def quarantine_rows(path: str | None) -> dict[int, tuple[str, str]]:
    if path is None:
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        return {int(r["line"]): (r["reason"], r["record"]) for r in csv.DictReader(handle)}

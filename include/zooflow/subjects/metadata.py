"""Update subjects' metadata from a CSV: rows matched to subjects by one metadata key.

``match="filename=filename"`` matches each row's ``filename`` column to subjects whose
``metadata["filename"]`` has the same text. In ``merge`` mode (the default) the row's other columns
add or change keys and every other key is kept (the seed script replaced the whole metadata); in
``replace`` mode the metadata becomes exactly the row's other columns plus the match key.

Decisions:
- CSV cells are text. A key whose current value has the same text as the cell (``5`` vs ``"5"``) is
  left as it is, so numbers are not rewritten as strings for nothing, and a rerun changes nothing.
- An empty cell is written as an empty string (it is not "leave alone").
- A match value that appears in more than one row is an error (which row should win is unknown),
  raised before anything is changed. Rows with an empty match value are reported and skipped.
- Several subjects with the same match value all get the row.
- Saving: ``Subject.find(id)`` (a show ETag: objects listed with ``where()`` carry the list ETag and
  would get 412), set the metadata, PUT with If-Match; a 412 reloads and retries once.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes_client import Subject
from panoptes_client.panoptes import PanoptesObject

from zooflow.errors import ConfigurationError
from zooflow.retries import STALE_ETAG
from zooflow.subjects.choices import MODES
from zooflow.subjects.dedupe import find_subject_set, metadata_text

log = logging.getLogger(__name__)


@dataclass
class MetadataChange:
    subject_id: int
    match_value: str
    row: dict[str, str]
    old: dict[str, Any]
    new: dict[str, Any]
    diff: dict[str, dict[str, Any]]


@dataclass
class MetadataPlan:
    subject_set_id: int
    project: str
    csv_path: str
    column: str
    key: str
    mode: str
    rows: int
    changes: list[MetadataChange]
    unchanged: list[int]
    unmatched_rows: list[dict[str, Any]]
    unmatched_subjects: list[int]
    blank_match_rows: list[int] = field(default_factory=list)

    def report(self, *, updated: int = 0, applied: bool = False, retried: int = 0) -> dict[str, Any]:
        return {
            "subject_set_id": self.subject_set_id,
            "project": self.project,
            "csv": self.csv_path,
            "match": f"{self.column}={self.key}",
            "mode": self.mode,
            "applied": applied,
            "rows": self.rows,
            "to_change": len(self.changes),
            "updated": updated,
            "retried_after_412": retried,
            "unchanged": len(self.unchanged),
            "unmatched_rows": list(self.unmatched_rows),
            "unmatched_subjects": list(self.unmatched_subjects),
            "blank_match_rows": list(self.blank_match_rows),
            "changes": {str(c.subject_id): {"match": c.match_value, **c.diff} for c in self.changes},
        }


def parse_match(match: str) -> tuple[str, str]:
    column, sep, key = str(match or "").partition("=")
    if not sep or not column.strip() or not key.strip():
        raise ConfigurationError(
            f"--match {match!r} is not of the form COLUMN=KEY; give the CSV column and the metadata key "
            "it matches, for example filename=filename"
        )
    return column.strip(), key.strip()


def read_rows(csv_path: str | Path, column: str) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"CSV file {str(path)!r} does not exist or is not a file; check the path")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name for name in (reader.fieldnames or []) if name is not None]
            rows = [{k: (v if v is not None else "") for k, v in row.items() if k is not None} for row in reader]
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"CSV file {str(path)!r} is not UTF-8 ({exc}); save it as UTF-8") from None
    if column not in header:
        raise ConfigurationError(
            f"CSV file {str(path)!r} has no column {column!r} (columns: {', '.join(header) or 'none'}); "
            "fix --match COLUMN=KEY or the CSV header"
        )
    return header, rows


def new_metadata(old: dict[str, Any], row: dict[str, str], column: str, key: str, mode: str) -> dict[str, Any]:
    """The metadata after applying one row; a value whose text already equals the cell is kept as is."""
    updates = {k: v for k, v in row.items() if k != column}
    if mode == "replace":
        result: dict[str, Any] = {key: old.get(key, row.get(column))}
    else:
        result = dict(old)
    for name, cell in updates.items():
        if name in old and old[name] is not None and str(old[name]) == cell:
            result[name] = old[name]
        else:
            result[name] = cell
    return result


def diff_metadata(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "added": {k: new[k] for k in new if k not in old},
        "changed": {k: [old[k], new[k]] for k in new if k in old and old[k] != new[k]},
        "removed": {k: old[k] for k in old if k not in new},
    }


def plan_metadata_update(
    subject_set_id: int | str, csv_path: str | Path, match: str, mode: str = "merge"
) -> MetadataPlan:
    """Read the CSV and the whole set, and compute each subject's new metadata and diff. Changes nothing."""
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    column, key = parse_match(match)
    _, rows = read_rows(csv_path, column)
    by_value: dict[str, dict[str, str]] = {}
    lines: dict[str, list[int]] = {}
    blank: list[int] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        value = metadata_text(row.get(column))
        if value is None:
            blank.append(number)
            continue
        lines.setdefault(value, []).append(number)
        by_value[value] = row
    repeated = {value: numbers for value, numbers in lines.items() if len(numbers) > 1}
    if repeated:
        shown = "; ".join(f"{v!r} on lines {', '.join(map(str, n))}" for v, n in list(repeated.items())[:10])
        raise ConfigurationError(
            f"CSV file {str(csv_path)!r} has {len(repeated)} match value(s) in column {column!r} on more than one "
            f"row ({shown}); keep one row per value"
        )
    subject_set, project = find_subject_set(subject_set_id)
    set_id = int(subject_set.id)
    changes: list[MetadataChange] = []
    unchanged: list[int] = []
    unmatched_subjects: list[int] = []
    matched_values: set[str] = set()
    for subject in Subject.where(subject_set_id=set_id, page_size=100):
        old = dict(subject.metadata or {})
        value = metadata_text(old.get(key))
        row = by_value.get(value) if value is not None else None
        if row is None:
            unmatched_subjects.append(int(subject.id))
            continue
        matched_values.add(value)
        new = new_metadata(old, row, column, key, mode)
        if new == old:
            unchanged.append(int(subject.id))
        else:
            changes.append(MetadataChange(int(subject.id), value, row, old, new, diff_metadata(old, new)))
    unmatched_rows = [
        {"line": lines[value][0], column: value} for value in by_value if value not in matched_values
    ]
    return MetadataPlan(
        subject_set_id=set_id, project=project, csv_path=str(csv_path), column=column, key=key, mode=mode,
        rows=len(rows), changes=sorted(changes, key=lambda c: c.subject_id), unchanged=sorted(unchanged),
        unmatched_rows=unmatched_rows, unmatched_subjects=sorted(unmatched_subjects), blank_match_rows=blank,
    )


def _save(subject: Subject, metadata: dict[str, Any]) -> None:
    subject.metadata = metadata
    subject.modified_attributes.add("metadata")
    # PanoptesObject.save, not Subject.save: there are no media to upload, and Subject.save retries
    # every API error (412 included) five times over ~40 s with the same stale ETag.
    PanoptesObject.save(subject)


def apply_metadata_update(plan: MetadataPlan) -> dict[str, Any]:
    """Save each planned change on a freshly fetched subject; returns the report."""
    updated = retried = 0
    for change in plan.changes:
        for attempt in STALE_ETAG.copy():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    retried += 1
                    log.info("Subject %s changed since it was read (412); reloading and retrying once", change.subject_id)
                subject = Subject.find(change.subject_id)  # the show ETag, not the listing's
                current = dict(subject.metadata or {})
                target = new_metadata(current, change.row, plan.column, plan.key, plan.mode)
                if target != current:  # else already as wanted (changed since the plan, or a rerun)
                    _save(subject, target)
                    updated += 1
    return plan.report(updated=updated, applied=True, retried=retried)


def format_metadata(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Subject set {report['subject_set_id']} ({report['project']}), {report['csv']} matched by {report['match']}, "
        f"mode {report['mode']}: {report['rows']} rows, {report['to_change']} subjects to change, "
        f"{report['updated']} updated, {report['unchanged']} already up to date, "
        f"{len(report['unmatched_rows'])} rows matched no subject, "
        f"{len(report['unmatched_subjects'])} subjects matched no row"
    ]
    for subject_id, diff in report["changes"].items():
        lines.append(f"  subject {subject_id} ({diff['match']}):")
        lines += [f"    + {k} = {v!r}" for k, v in diff["added"].items()]
        lines += [f"    ~ {k}: {o!r} -> {n!r}" for k, (o, n) in diff["changed"].items()]
        lines += [f"    - {k} (was {v!r})" for k, v in diff["removed"].items()]
    for row in report["unmatched_rows"]:
        lines.append(f"  row on line {row['line']} matched no subject: {row}")
    if report["blank_match_rows"]:
        lines.append(f"  rows with an empty match value (skipped): lines {report['blank_match_rows']}")
    if not report["applied"] and report["to_change"]:
        lines.append("Dry run: nothing was changed; run again with --apply (or dry run off) to save these changes.")
    return lines

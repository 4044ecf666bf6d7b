"""One classification as ``/classifications/project`` serves it, turned into one row of the store.

The columns keep the classification export's names where the API serves the same thing
(``classification_id``, ``user_id``, ``workflow_id``, ``workflow_version``, ``created_at``, ``metadata``,
``annotations``, ``subject_ids``), so code written for the export reads the store too. What differs:

- the API serves no ``user_name``, ``user_ip``, ``workflow_name``, ``gold_standard``, ``expert`` or
  ``subject_data`` (``ClassificationSerializer``), so the store has no such columns — rather than empty
  ones, since an empty ``gold_standard`` cell in an export means "not gold standard";
- ``annotations`` is what the front end sent (a question's answer is its *index*); the export writes
  the answer's text and the task's label (``annotation_for_csv``);
- ``metadata`` is the front end's metadata without ``workflow_version``, which the serializer adds to
  it and the store keeps in its own column, as the export does;
- ``created_at`` is a UTC timestamp (milliseconds), not the export's ``YYYY-MM-DD HH:MM:SS UTC`` text;
  ``subject_ids`` is ``;``-joined text, as in the export.

**Incomplete classifications.** The export leaves out classifications a volunteer saved unfinished
(``completed: false``); the API serves them. Today's serializer shows nothing that tells them apart
(``completed`` is not one of its attributes — the sandbox's contract test
``test_incomplete_classifications_are_included_and_unmarked`` pins that), so a record is treated as
incomplete here only when it says so itself: ``completed`` false at the top level or in its metadata.
The ones nothing marks are caught by :func:`zooflow.classifications.reconcile.reconcile_export`, which
finds them missing from the export and leaves them out of what the store is read as from then on.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from zooflow.errors import PanoptesError
from zooflow.excerpts import excerpt

SCHEMA = pa.schema([
    ("classification_id", pa.int64()),
    ("user_id", pa.int64()),
    ("workflow_id", pa.int64()),
    ("workflow_version", pa.string()),
    ("created_at", pa.timestamp("ms", tz="UTC")),
    ("metadata", pa.string()),
    ("annotations", pa.string()),
    ("subject_ids", pa.string()),
])
COLUMNS = tuple(SCHEMA.names)


def is_incomplete(record: dict[str, Any]) -> bool:
    """True when the record marks itself unfinished (``completed: false``, top level or in metadata)."""
    metadata = record.get("metadata")
    return record.get("completed") is False or (isinstance(metadata, dict) and metadata.get("completed") is False)


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def store_row(record: dict[str, Any]) -> dict[str, Any]:
    """The store's row for one API record; a PanoptesError naming the record when a field is unreadable."""
    try:
        links = record.get("links") or {}
        metadata = dict(record.get("metadata") or {})
        version = metadata.pop("workflow_version", None)
        created_at = datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00"))
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=timezone.utc)
        return {
            "classification_id": int(record["id"]),
            "user_id": _optional_int(links.get("user")),
            "workflow_id": int(links["workflow"]),
            "workflow_version": None if version is None else str(version),
            "created_at": created_at.astimezone(timezone.utc),
            "metadata": _json_text(metadata),
            "annotations": _json_text(record.get("annotations") or []),
            "subject_ids": ";".join(str(s) for s in links.get("subjects") or []),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise PanoptesError(f"Panoptes served a classification zooflow cannot read ({type(exc).__name__}: {exc}): "
                            f"{excerpt(_json_text(record), 300)}") from None


def created_date(row: dict[str, Any]) -> str:
    """The row's UTC date, ``YYYY-MM-DD``: the partition it is stored in."""
    return row["created_at"].date().isoformat()

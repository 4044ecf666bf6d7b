"""records: one API record (as ClassificationSerializer writes it) as one store row, and the incomplete mark."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from zooflow.classifications.records import COLUMNS, is_incomplete, store_row
from zooflow.errors import PanoptesError
from zooflow.exports.layouts import CLASSIFICATION_COLUMNS


def record(**changes) -> dict:
    base = {
        "id": "611591158", "annotations": [{"task": "T0", "value": 2}],
        "created_at": "2025-01-21T16:08:41.259Z", "updated_at": "2025-01-21T16:08:41.259Z",
        "metadata": {"source": "api", "finished_at": "2025-01-21T16:08:41.259Z", "workflow_version": "4.4"},
        "href": "/classifications/611591158",
        "links": {"project": "1", "user": "9000001", "workflow": "28090", "user_group": None, "subjects": ["7", "8"]},
    }
    return base | changes


def test_a_record_becomes_a_row_named_like_the_export() -> None:
    row = store_row(record())
    assert tuple(row) == COLUMNS and set(COLUMNS) <= set(CLASSIFICATION_COLUMNS)
    assert row["classification_id"] == 611591158 and row["user_id"] == 9000001 and row["workflow_id"] == 28090
    assert row["workflow_version"] == "4.4"
    assert json.loads(row["metadata"]) == {"source": "api", "finished_at": "2025-01-21T16:08:41.259Z"}
    assert json.loads(row["annotations"]) == [{"task": "T0", "value": 2}]
    assert row["created_at"] == datetime(2025, 1, 21, 16, 8, 41, 259000, tzinfo=timezone.utc)
    assert row["subject_ids"] == "7;8"  # joined as the export joins them


def test_an_anonymous_classification_has_no_user_id() -> None:
    assert store_row(record(links={"workflow": "5", "user": None, "subjects": ["1"]}))["user_id"] is None


@pytest.mark.parametrize("changes, incomplete", [
    ({}, False),
    ({"completed": True}, False),
    ({"completed": False}, True),
    ({"metadata": {"completed": False}}, True),
    ({"metadata": None}, False),
])
def test_only_a_record_marked_unfinished_counts_as_incomplete(changes, incomplete) -> None:
    assert is_incomplete(record(**changes)) is incomplete


def test_an_unreadable_record_is_named_in_the_error() -> None:
    with pytest.raises(PanoptesError, match="cannot read.*611591158"):
        store_row(record(created_at="yesterday"))

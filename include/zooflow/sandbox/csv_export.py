"""The three Panoptes export CSV layouts, written from the sandbox state of the moment.

Column sets, JSON cell shapes and the ``YYYY-MM-DD HH:MM:SS UTC`` timestamps follow the real
exports (see the samples in ``shared/fixtures/real-exports``): UTF-8, LF line ends, minimal quoting,
compact JSON with ``<``, ``>``, ``&`` (and U+2028/9) escaped as Rails' ``to_json`` writes them. Which
rows appear follows the dump scopes: a subject-set classification export holds the classifications
of workflows linked to the set now, once per subject of the set they name
(``app/models/subject_set.rb#classifications``); a subject export holds the subjects in a subject set,
deleted ones too (``app/models/csv_dumps/subject_scope.rb``); a workflow export has 16 columns and the
workflow's current name on every version row (``lib/formatter/csv/workflow.rb``). Rows are streamed
from a cursor so a large export costs time, not memory.
"""

from __future__ import annotations

import csv
import json
import secrets
import sqlite3
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from zooflow.sandbox.retirement import Retirement
from zooflow.sandbox.timeutil import csv_time, iso_ms
from zooflow.sandbox.workflow_tasks import annotation_for_csv, inject_strings

CLASSIFICATION_COLUMNS = [
    "classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name", "workflow_version",
    "created_at", "gold_standard", "expert", "metadata", "annotations", "subject_data", "subject_ids",
]
SUBJECT_COLUMNS = [
    "subject_id", "project_id", "workflow_id", "subject_set_id", "metadata", "locations", "classifications_count",
    "retired_at", "retirement_reason", "created_at", "updated_at",
]
WORKFLOW_COLUMNS = [
    "workflow_id", "display_name", "version", "active", "classifications_count", "pairwise", "grouped",
    "prioritized", "primary_language", "first_task", "tutorial_subject_id", "retired_set_member_subjects_count",
    "tasks", "retirement", "strings", "minor_version",
]
# Only completed classifications are exported (app/models/csv_dumps/classification_scope.rb); the
# incremental API (classification_api.py) serves the incomplete ones too.
CLASSIFICATION_SCOPES = {
    "projects": "SELECT c.* FROM classifications c WHERE c.completed = 1 AND c.project_id = :id",
    "workflows": "SELECT c.* FROM classifications c WHERE c.completed = 1 AND c.workflow_id = :id",
    # one row per classification and subject of the set it names: a multi-subject classification repeats
    "subject_sets": "SELECT c.* FROM classifications c JOIN classification_subjects cs ON cs.classification_id = c.id "
                    "WHERE c.completed = 1 AND c.workflow_id IN (SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = :id) "
                    "AND cs.subject_id IN (SELECT subject_id FROM set_member_subjects WHERE subject_set_id = :id)",
}
# ActiveSupport's JSON encoder escapes these so a JSON cell is safe inside HTML.
JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                              "\u2029": "\\u2029"})


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(JSON_ESCAPES)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def writer(stream) -> Any:
    return csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def classification_rows(conn: sqlite3.Connection, linked_type: str, linked_id: int) -> Iterator[list]:
    ip_tokens: dict[str, str] = {}

    @lru_cache(maxsize=4096)
    def user(user_id: int) -> sqlite3.Row:
        return conn.execute("SELECT login FROM users WHERE id = ?", (user_id,)).fetchone()

    @lru_cache(maxsize=1024)
    def workflow_name(workflow_id: int) -> str:
        return conn.execute("SELECT display_name FROM workflows WHERE id = ?", (workflow_id,)).fetchone()[0]

    @lru_cache(maxsize=1024)
    def version_tasks(workflow_id: int, version: str) -> dict | None:
        major, _, minor = version.partition(".")
        row = conn.execute(
            "SELECT tasks, strings FROM workflow_versions WHERE workflow_id = ? AND major_version = ? AND "
            "minor_version = ? ORDER BY id DESC LIMIT 1", (workflow_id, major, minor)).fetchone()
        return inject_strings(json.loads(row["tasks"]), json.loads(row["strings"])) if row else None

    for row in conn.execute(f"{CLASSIFICATION_SCOPES[linked_type]} ORDER BY c.id", {"id": linked_id}):
        token = ip_tokens.setdefault(row["user_ip"], secrets.token_hex(10))
        login = user(row["user_id"])["login"] if row["user_id"] is not None else f"not-logged-in-{token}"
        tasks = version_tasks(row["workflow_id"], row["workflow_version"])
        annotations = json.loads(row["annotations"])
        if tasks is not None:
            annotations = [annotation_for_csv(annotation, tasks) for annotation in annotations]
        subject_ids = [r[0] for r in conn.execute(
            "SELECT subject_id FROM classification_subjects WHERE classification_id = ? ORDER BY subject_id",
            (row["id"],))]
        yield [
            row["id"], login, "" if row["user_id"] is None else row["user_id"], token, row["workflow_id"],
            workflow_name(row["workflow_id"]), row["workflow_version"], csv_time(row["created_at"]),
            "true" if row["gold_standard"] else "", row["expert"] or "", compact(json.loads(row["metadata"])),
            compact(annotations), compact(_subject_data(conn, subject_ids, row["workflow_id"])),
            ";".join(str(subject_id) for subject_id in subject_ids),
        ]


def _subject_data(conn: sqlite3.Connection, subject_ids: list[int], workflow_id: int) -> dict:
    data = {}
    for subject_id in subject_ids:
        status = conn.execute(
            "SELECT * FROM subject_workflow_statuses WHERE subject_id = ? AND workflow_id = ? "
            "AND retired_at IS NOT NULL",
            (subject_id, workflow_id)).fetchone()
        retired = None if status is None else {
            "id": status["id"], "workflow_id": status["workflow_id"],
            "classifications_count": status["classifications_count"], "created_at": iso_ms(status["created_at"]),
            "updated_at": iso_ms(status["updated_at"]), "retired_at": iso_ms(status["retired_at"]),
            "subject_id": status["subject_id"], "retirement_reason": status["retirement_reason"],
        }
        metadata = conn.execute("SELECT metadata FROM subjects WHERE id = ?", (subject_id,)).fetchone()
        data[str(subject_id)] = {"retired": retired, **(json.loads(metadata[0]) if metadata else {})}
    return data


def subject_rows(conn: sqlite3.Connection, project_id: int, location_urls) -> Iterator[list]:
    """One row per subject x set x linked workflow of the subjects in the project's sets (deleted or not);
    ``location_urls(locations)`` gives public URLs."""
    subjects = conn.execute(
        "SELECT * FROM subjects WHERE id IN (SELECT sms.subject_id FROM set_member_subjects sms JOIN subject_sets ss "
        "ON ss.id = sms.subject_set_id WHERE ss.project_id = ?) ORDER BY id", (project_id,))
    for subject in subjects:
        placements = conn.execute(
            "SELECT sms.subject_set_id, w.workflow_id FROM set_member_subjects sms LEFT JOIN workflow_subject_sets w "
            "ON w.subject_set_id = sms.subject_set_id WHERE sms.subject_id = ? "
            "ORDER BY sms.subject_set_id, w.workflow_id",
            (subject["id"],)).fetchall()
        urls = location_urls(json.loads(subject["locations"]))
        locations = compact({str(i): next(iter(url.values())) for i, url in enumerate(urls)})
        for set_id, workflow_id in placements:
            status = conn.execute(
                "SELECT * FROM subject_workflow_statuses WHERE subject_id = ? AND workflow_id = ?",
                (subject["id"], workflow_id)).fetchone() if workflow_id is not None else None
            yield [
                subject["id"], project_id, "" if workflow_id is None else workflow_id, set_id,
                compact(json.loads(subject["metadata"])), locations,
                status["classifications_count"] if status else 0,
                csv_time(status["retired_at"]) if status else "", (status["retirement_reason"] or "") if status else "",
                csv_time(subject["created_at"]), csv_time(subject["updated_at"]),
            ]


def workflow_rows(conn: sqlite3.Connection, project_id: int, retirement: Retirement) -> Iterator[list]:
    """One row per workflow version, with the workflow's current name and counts on each (as Panoptes does)."""
    for workflow in conn.execute("SELECT * FROM workflows WHERE project_id = ? ORDER BY id", (project_id,)).fetchall():
        counts = retirement.counts(workflow["id"])
        for version in conn.execute("SELECT * FROM workflow_versions WHERE workflow_id = ? ORDER BY id",
                                    (workflow["id"],)):
            yield [
                workflow["id"], workflow["display_name"], version["major_version"], _bool(workflow["active"]),
                counts["classifications_count"], "false", "false", "false", workflow["primary_language"],
                version["first_task"] or "", "", counts["retired_set_member_subjects_count"],
                compact(json.loads(version["tasks"])), compact(json.loads(workflow["retirement"])),
                compact(json.loads(version["strings"])), version["minor_version"],
            ]

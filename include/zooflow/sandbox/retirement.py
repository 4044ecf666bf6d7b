"""Per-subject workflow status and the workflow progress numbers derived from it.

Panoptes keeps one SubjectWorkflowStatus per (subject, workflow): created when a subject reaches a
workflow through a linked set, counted up by classifications, and stamped ``retired_at`` by the
retirement rule or an explicit retire call. A workflow's ``subjects_count``,
``retired_set_member_subjects_count`` and ``completeness`` come from those rows. The real service
updates them with background workers and lags; the sandbox computes them on read, so tests see
the settled values at once.
"""

from __future__ import annotations

import json
import sqlite3

from zooflow.sandbox.db import Database
from zooflow.sandbox.settings import Settings

DEFAULT_RETIREMENT = {"criteria": "classification_count", "options": {"count": 15}}
RETIREMENT_REASONS = ("classification_count", "flagged", "nothing_here", "consensus", "other", "human")
LINKED_SUBJECTS = (
    "SELECT sms.subject_id FROM workflow_subject_sets w "
    "JOIN set_member_subjects sms ON sms.subject_set_id = w.subject_set_id WHERE w.workflow_id = ?"
)


class Retirement:
    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._settings = settings

    def counts(self, workflow_id: int) -> dict:
        subjects = self._db.scalar(f"SELECT COUNT(DISTINCT subject_id) FROM ({LINKED_SUBJECTS})", (workflow_id,))
        retired = self._db.scalar(
            "SELECT COUNT(*) FROM subject_workflow_statuses WHERE workflow_id = ? AND retired_at IS NOT NULL "
            f"AND subject_id IN ({LINKED_SUBJECTS})",
            (workflow_id, workflow_id),
        )
        classifications = self._db.scalar("SELECT COUNT(*) FROM classifications WHERE workflow_id = ?", (workflow_id,))
        return {
            "subjects_count": subjects,
            "retired_set_member_subjects_count": retired,
            "classifications_count": classifications,
            "completeness": min(1.0, retired / subjects) if subjects else 0.0,
        }

    def limit(self, workflow: sqlite3.Row) -> int:
        """Classifications that retire a subject: ``retire_after`` if set, else the workflow's rule."""
        if self._settings["retire_after"] is not None:
            return self._settings["retire_after"]
        retirement = json.loads(workflow["retirement"]) or DEFAULT_RETIREMENT
        return int(retirement.get("options", {}).get("count", 15))

    @staticmethod
    def create_statuses(conn: sqlite3.Connection, now: float, subject_set_id: int,
                        workflow_id: int | None = None) -> None:
        """Status rows for every (member subject, linked workflow) pair of a set that lacks one."""
        conn.execute(
            "INSERT OR IGNORE INTO subject_workflow_statuses (subject_id, workflow_id, created_at, updated_at) "
            "SELECT sms.subject_id, w.workflow_id, ?, ? FROM set_member_subjects sms "
            "JOIN workflow_subject_sets w ON w.subject_set_id = sms.subject_set_id "
            "WHERE sms.subject_set_id = ? AND (? IS NULL OR w.workflow_id = ?)",
            (now, now, subject_set_id, workflow_id, workflow_id),
        )

    def count_classification(self, conn: sqlite3.Connection, workflow: sqlite3.Row, subject_id: int, at: float) -> None:
        conn.execute(
            "INSERT INTO subject_workflow_statuses (subject_id, workflow_id, classifications_count, created_at, "
            "updated_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT (subject_id, workflow_id) DO UPDATE SET "
            "classifications_count = classifications_count + 1, updated_at = excluded.updated_at",
            (subject_id, workflow["id"], at, at),
        )
        retired = conn.execute(
            "UPDATE subject_workflow_statuses SET retired_at = ?, retirement_reason = 'classification_count' "
            "WHERE subject_id = ? AND workflow_id = ? AND retired_at IS NULL AND classifications_count >= ?",
            (at, subject_id, workflow["id"], self.limit(workflow)),
        ).rowcount
        if retired:
            self.refresh_finished(conn, workflow["id"], at)

    def retire(self, conn: sqlite3.Connection, workflow_id: int, subject_ids: list[int], reason: str,
               at: float) -> None:
        for subject_id in subject_ids:
            conn.execute(
                "INSERT INTO subject_workflow_statuses (subject_id, workflow_id, retired_at, retirement_reason, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject_id, workflow_id) DO UPDATE "
                "SET retired_at = COALESCE(retired_at, excluded.retired_at), "
                "retirement_reason = COALESCE(retirement_reason, excluded.retirement_reason), "
                "updated_at = excluded.updated_at",
                (subject_id, workflow_id, at, reason, at, at),
            )
        self.refresh_finished(conn, workflow_id, at)

    def unretire(self, conn: sqlite3.Connection, workflow_id: int, subject_ids: list[int], at: float) -> None:
        conn.executemany(
            "UPDATE subject_workflow_statuses SET retired_at = NULL, retirement_reason = NULL, updated_at = ? "
            "WHERE workflow_id = ? AND subject_id = ?",
            [(at, workflow_id, subject_id) for subject_id in subject_ids],
        )
        self.refresh_finished(conn, workflow_id, at)

    def refresh_finished(self, conn: sqlite3.Connection, workflow_id: int, at: float) -> None:
        """``finished_at`` is stamped when every linked subject is retired and cleared when that stops."""
        counts = self.counts(workflow_id)
        subjects, retired = counts["subjects_count"], counts["retired_set_member_subjects_count"]
        finished = subjects > 0 and retired >= subjects
        if finished:
            conn.execute("UPDATE workflows SET finished_at = ? WHERE id = ? AND finished_at IS NULL", (at, workflow_id))
        else:
            conn.execute("UPDATE workflows SET finished_at = NULL WHERE id = ?", (workflow_id,))

    def refresh_workflows_of_set(self, conn: sqlite3.Connection, subject_set_id: int, at: float) -> None:
        for row in conn.execute("SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ?",
                                (subject_set_id,)):
            self.refresh_finished(conn, row["workflow_id"], at)

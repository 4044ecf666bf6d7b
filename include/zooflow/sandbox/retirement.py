"""Per-subject workflow statuses, and retirement, made asynchronous as Panoptes' workers make them.

Panoptes keeps one SubjectWorkflowStatus per (subject, workflow). Linking subjects does not create
them: SubjectWorkflowStatusCreateWorker jobs do, each at a random delay, so right after linking a
subject is simply absent from ``/subject_workflow_statuses`` (panoptes-realism.md section 2). A
classification creates or counts up its subject's status at once and retires it at the limit.
``POST /workflows/:id/retired_subjects`` answers 204 and RetireSubjectWorker applies it later,
with the reason ``blank`` stored as ``nothing_here`` (app/operations/workflows/retire_subjects.rb).
Every retirement then reaches the workflow's counters through counters.py's jobs.

With ``counter_mode = "instant"`` statuses are created at link time and retirement is applied
within the request, as before the background jobs existed.
"""

from __future__ import annotations

import json
import random
import sqlite3

from zooflow.sandbox.counters import Counters
from zooflow.sandbox.db import Database
from zooflow.sandbox.jobs import Job, JobQueue
from zooflow.sandbox.settings import Settings

DEFAULT_RETIREMENT = {"criteria": "classification_count", "options": {"count": 15}}
RETIREMENT_REASONS = ("classification_count", "flagged", "nothing_here", "consensus", "other", "human")
REASON_ALIASES = {"blank": "nothing_here"}  # Workflows::RetireSubjects#rewrite_blank_reason
CREATE_STATUS = "subject_workflow_status_create"
RETIRE_SUBJECTS = "retire_subject"
LINKED_PAIRS = (
    "SELECT sms.subject_id, w.workflow_id FROM set_member_subjects sms "
    "JOIN workflow_subject_sets w ON w.subject_set_id = sms.subject_set_id "
    "WHERE sms.subject_set_id = ? AND (? IS NULL OR w.workflow_id = ?)"
)


class Retirement:
    def __init__(self, db: Database, settings: Settings, jobs: JobQueue, counters: Counters):
        self._db = db
        self._settings = settings
        self._jobs = jobs
        self._counters = counters
        self._random = random.Random()
        jobs.handle(CREATE_STATUS, self._create_status)
        jobs.handle(RETIRE_SUBJECTS, self._retire_job)

    def counts(self, workflow_id: int) -> dict:
        """The workflow's progress numbers as the API serves them (see counters.py)."""
        return self._counters.workflow(workflow_id)

    def limit(self, workflow: sqlite3.Row) -> int:
        """Classifications that retire a subject: ``retire_after`` if set, else the workflow's rule."""
        if self._settings["retire_after"] is not None:
            return self._settings["retire_after"]
        retirement = json.loads(workflow["retirement"]) or DEFAULT_RETIREMENT
        return int(retirement.get("options", {}).get("count", 15))

    # -- statuses ----------------------------------------------------------------------------

    def create_statuses(self, conn: sqlite3.Connection, now: float, subject_set_id: int,
                        workflow_id: int | None = None, subject_ids: list[int] | None = None) -> None:
        """Status rows for the (member subject, linked workflow) pairs of a set that lack one, limited to
        one workflow (a set was linked: SubjectSetStatusesCreateWorker) or to some subjects (they were
        linked: subject_sets_controller#update_links); at once in instant mode, else by jobs a random
        0..``status_delay`` s later (SubjectWorkflowStatusCreateWorker)."""
        wanted = None if subject_ids is None else set(subject_ids)
        pairs = [pair for pair in conn.execute(LINKED_PAIRS, (subject_set_id, workflow_id, workflow_id))
                 if wanted is None or pair[0] in wanted]
        if self._counters.instant:
            self._insert_statuses(conn, [tuple(pair) for pair in pairs], now)
            return
        for subject_id, linked_workflow_id in pairs:
            self._jobs.enqueue(conn, CREATE_STATUS, [subject_id, linked_workflow_id],
                               lag=self._random.uniform(0, self._settings["status_delay"]))

    @staticmethod
    def _insert_statuses(conn: sqlite3.Connection, pairs: list[tuple[int, int]], now: float) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO subject_workflow_statuses (subject_id, workflow_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?)", [(subject_id, workflow_id, now, now) for subject_id, workflow_id in pairs])

    def _create_status(self, conn: sqlite3.Connection, job: Job) -> None:
        """SubjectWorkflowStatusCreateWorker: only if the subject is still in a set linked to the workflow."""
        subject_id, workflow_id = job.args
        still_linked = conn.execute(
            "SELECT 1 FROM set_member_subjects sms JOIN workflow_subject_sets w ON w.subject_set_id = sms.subject_set_id "
            "WHERE sms.subject_id = ? AND w.workflow_id = ?", (subject_id, workflow_id)).fetchone()
        if still_linked:
            self._insert_statuses(conn, [(subject_id, workflow_id)], job.run_at)

    # -- retirement --------------------------------------------------------------------------

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
            self._counters.retirements_changed(conn, workflow["id"], at)

    @staticmethod
    def reason(given: str) -> str:
        """The stored retirement reason for an API value; a ValueError names the allowed ones."""
        reason = REASON_ALIASES.get(given, given)
        if reason not in RETIREMENT_REASONS:
            raise ValueError(f"Retirement reason {given!r} is not included in the list")
        return reason

    def request_retire(self, conn: sqlite3.Connection, workflow_id: int, subject_ids: list[int], reason: str,
                       at: float) -> None:
        """``retired_subjects``: applied at once in instant mode, else ``retire_delay`` s later."""
        if self._counters.instant:
            self._retire(conn, workflow_id, subject_ids, reason, at)
            self._counters.retirements_changed(conn, workflow_id, at)
            return
        self._jobs.enqueue(conn, RETIRE_SUBJECTS, [workflow_id, sorted(set(subject_ids)), reason],
                           lag=self._settings["retire_delay"],
                           key=f"{RETIRE_SUBJECTS}:{workflow_id}:{','.join(map(str, sorted(set(subject_ids))))}:{reason}")

    def _retire_job(self, conn: sqlite3.Connection, job: Job) -> None:
        """RetireSubjectWorker: a status is made for each subject (first_or_create!) and retired unless it is."""
        workflow_id, subject_ids, reason = job.args
        if conn.execute("SELECT 1 FROM workflows WHERE id = ?", (workflow_id,)).fetchone():
            self._retire(conn, workflow_id, subject_ids, reason, job.run_at)
            self._counters.retirements_changed(conn, workflow_id, job.run_at, origin_at=job.origin_at)

    @staticmethod
    def _retire(conn: sqlite3.Connection, workflow_id: int, subject_ids: list[int], reason: str, at: float) -> None:
        conn.executemany(
            "INSERT INTO subject_workflow_statuses (subject_id, workflow_id, retired_at, retirement_reason, "
            "created_at, updated_at) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM subjects WHERE id = ?) "
            "ON CONFLICT (subject_id, workflow_id) DO UPDATE "
            "SET retired_at = COALESCE(retired_at, excluded.retired_at), "
            "retirement_reason = CASE WHEN retired_at IS NULL THEN excluded.retirement_reason ELSE retirement_reason END, "
            "updated_at = excluded.updated_at",
            [(subject_id, workflow_id, at, reason, at, at, subject_id) for subject_id in subject_ids],
        )

    def unretire(self, conn: sqlite3.Connection, workflow_id: int, subject_ids: list[int], at: float) -> None:
        conn.executemany(
            "UPDATE subject_workflow_statuses SET retired_at = NULL, retirement_reason = NULL, updated_at = ? "
            "WHERE workflow_id = ? AND subject_id = ?",
            [(at, workflow_id, subject_id) for subject_id in subject_ids],
        )
        self._counters.unfinish(conn, workflow_id)  # RefreshWorkflowStatusWorker runs UnfinishWorkflowWorker first
        self._counters.retirements_changed(conn, workflow_id, at)

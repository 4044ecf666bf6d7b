"""Workflow, subject-set and project counters, written by background jobs as Panoptes writes them.

Panoptes serves ``subjects_count``, ``retired_set_member_subjects_count``, ``completeness``,
``finished_at`` and a set's ``set_member_subjects_count`` from stored columns that Sidekiq workers
refresh minutes after the change (panoptes-realism.md section 1). A gate built on
``subjects_count == retired_set_member_subjects_count`` right after linking a batch therefore
sees the old numbers (0 == 0 for a first batch). The sandbox keeps the same columns and jobs:

- ``subject_set_subject_counter`` (SubjectSetSubjectCounterWorker, which starts
  WorkflowSubjectsCountWorker): a set's size, then the subjects_count of its workflows (the sum
  of their sets' stored sizes, as WorkflowCounter#subjects), ``set_member_count_lag`` after a
  membership change. It then starts their retired counts too, which Panoptes leaves to the next
  retirement: the sandbox's lags are the slow end of Panoptes' range, so a batch can be retired
  before it is counted, and ``finished_at`` would otherwise never be judged on the new count.
- ``workflow_subjects_count`` (RefreshWorkflowStatusWorker, after a workflow's set links
  change): the workflow's subjects_count, then its retired count.
- ``workflow_retired_count`` (WorkflowRetiredCountWorker): retired subjects of the linked sets,
  ``retired_count_lag`` after a retirement; stamps ``finished_at`` once every subject is retired.
- ``calculate_project_completeness`` (CalculateProjectCompletenessWorker): each workflow's
  completeness and the project's, ``completeness_lag`` after the event that started the chain.

``finished_at`` is cleared at once when links change (UnfinishWorkflowWorker runs without delay).
With ``counter_mode = "instant"`` the numbers are computed on every read and ``finished_at`` is
kept exact on every change, for unit tests that check the arithmetic rather than the timing.
"""

from __future__ import annotations

import sqlite3

from zooflow.sandbox.db import Database
from zooflow.sandbox.jobs import Job, JobQueue
from zooflow.sandbox.settings import Settings

SET_COUNTER = "subject_set_subject_counter"
WORKFLOW_SUBJECTS = "workflow_subjects_count"
RETIRED_COUNT = "workflow_retired_count"
COMPLETENESS = "calculate_project_completeness"
COMPLETENESS_DIGITS = 4  # CalculateProjectCompletenessWorker::COMPLETENESS_ROUNDING_PRECISION
LAG_SETTINGS = ("set_member_count_lag", "retired_count_lag", "completeness_lag", "status_delay", "retire_delay")

LINKED_SUBJECTS = (
    "SELECT sms.subject_id FROM workflow_subject_sets w "
    "JOIN set_member_subjects sms ON sms.subject_set_id = w.subject_set_id WHERE w.workflow_id = ?"
)
RETIRED_SUBJECTS = (
    "SELECT COUNT(*) FROM subject_workflow_statuses WHERE workflow_id = ? AND retired_at IS NOT NULL "
    f"AND subject_id IN ({LINKED_SUBJECTS})"
)
WORKFLOWS_OF_SET = "SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ?"


def _ratio(retired: int, subjects: int) -> float:
    return min(1.0, retired / subjects) if subjects else 0.0


def _project_completeness(active: list[dict]) -> float:
    """Each active workflow's completeness weighted by its share of the project's subjects."""
    total = sum(w["subjects_count"] for w in active)
    if not total:
        return 0.0
    return round(sum(w["completeness"] * w["subjects_count"] / total for w in active), COMPLETENESS_DIGITS)


class Counters:
    def __init__(self, db: Database, settings: Settings, jobs: JobQueue):
        self._db = db
        self._settings = settings
        self._jobs = jobs
        for kind, handler in ((SET_COUNTER, self._count_set), (WORKFLOW_SUBJECTS, self._count_workflow_subjects),
                              (RETIRED_COUNT, self._count_retired), (COMPLETENESS, self._calculate_completeness)):
            jobs.handle(kind, handler)

    @property
    def instant(self) -> bool:
        return self._settings["counter_mode"] == "instant"

    def longest_lag(self) -> float:
        return max(self._settings[name] for name in LAG_SETTINGS)

    # -- reads -------------------------------------------------------------------------------

    def workflow(self, workflow_id: int, conn: sqlite3.Connection | None = None) -> dict:
        conn = conn or self._db.conn()
        classifications = conn.execute("SELECT COUNT(*) FROM classifications WHERE workflow_id = ?",
                                       (workflow_id,)).fetchone()[0]
        if self.instant:
            subjects = conn.execute(f"SELECT COUNT(DISTINCT subject_id) FROM ({LINKED_SUBJECTS})",
                                    (workflow_id,)).fetchone()[0]
            retired = conn.execute(RETIRED_SUBJECTS, (workflow_id, workflow_id)).fetchone()[0]
            completeness = _ratio(retired, subjects)
        else:
            subjects, retired, completeness = conn.execute(
                "SELECT real_set_member_subjects_count, retired_set_member_subjects_count, completeness "
                "FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        return {"subjects_count": subjects, "retired_set_member_subjects_count": retired,
                "classifications_count": classifications, "completeness": completeness}

    def project(self, project_id: int) -> dict:
        """Sums over the active workflows, as Project#subjects_count and #retired_subjects_count."""
        active = [self.workflow(row[0]) for row in self._db.all(
            "SELECT id FROM workflows WHERE project_id = ? AND active = 1 ORDER BY id", (project_id,))]
        completeness = _project_completeness(active) if self.instant else self._db.scalar(
            "SELECT completeness FROM projects WHERE id = ?", (project_id,))
        return {"subjects_count": sum(w["subjects_count"] for w in active),
                "retired_subjects_count": sum(w["retired_set_member_subjects_count"] for w in active),
                "completeness": completeness}

    def set_size(self, set_id: int) -> int:
        if self.instant:
            return self._db.scalar("SELECT COUNT(*) FROM set_member_subjects WHERE subject_set_id = ?", (set_id,))
        return self._db.scalar("SELECT set_member_subjects_count FROM subject_sets WHERE id = ?", (set_id,))

    # -- events, inside the write transaction that made the change ----------------------------

    def set_members_changed(self, conn: sqlite3.Connection, set_id: int, *, added: bool, at: float) -> None:
        """Subjects linked to or unlinked from a set (subject_sets_controller#update_links, #destroy_links)."""
        workflow_ids = [row[0] for row in conn.execute(WORKFLOWS_OF_SET, (set_id,))]
        if self.instant:
            for workflow_id in workflow_ids:
                self.refresh_finished(conn, workflow_id, at)
            return
        self._jobs.enqueue(conn, SET_COUNTER, [set_id], lag=self._settings["set_member_count_lag"])
        for workflow_id in workflow_ids:
            if added:
                self.unfinish(conn, workflow_id)
            else:
                self.retirements_changed(conn, workflow_id, at)

    def workflow_sets_changed(self, conn: sqlite3.Connection, workflow_id: int, at: float) -> None:
        """Sets linked to or unlinked from a workflow, or a linked set deleted (RefreshWorkflowStatusWorker)."""
        if self.instant:
            self.refresh_finished(conn, workflow_id, at)
            return
        self.unfinish(conn, workflow_id)
        self._jobs.enqueue(conn, WORKFLOW_SUBJECTS, [workflow_id], lag=self._settings["set_member_count_lag"])

    def retirements_changed(self, conn: sqlite3.Connection, workflow_id: int, at: float,
                            origin_at: float | None = None) -> None:
        """A subject of the workflow was retired or unretired (RetirementWorker, UnretireSubjectWorker).

        ``at`` is the change's own time (a backfilled classification's may be long past); the job is due
        ``retired_count_lag`` after now, or after ``origin_at`` when a job's chain started earlier.
        """
        if self.instant:
            self.refresh_finished(conn, workflow_id, at)
            return
        self._jobs.enqueue(conn, RETIRED_COUNT, [workflow_id], origin_at=origin_at,
                           lag=self._settings["retired_count_lag"])

    @staticmethod
    def unfinish(conn: sqlite3.Connection, workflow_id: int) -> None:
        conn.execute("UPDATE workflows SET finished_at = NULL WHERE id = ?", (workflow_id,))

    def refresh_finished(self, conn: sqlite3.Connection, workflow_id: int, at: float) -> None:
        """Instant mode: ``finished_at`` stamped when every linked subject is retired, cleared when not."""
        counts = self.workflow(workflow_id, conn)
        if 0 < counts["subjects_count"] <= counts["retired_set_member_subjects_count"]:
            conn.execute("UPDATE workflows SET finished_at = ? WHERE id = ? AND finished_at IS NULL", (at, workflow_id))
        else:
            self.unfinish(conn, workflow_id)

    # -- jobs --------------------------------------------------------------------------------

    def _count_set(self, conn: sqlite3.Connection, job: Job) -> None:
        (set_id,) = job.args
        conn.execute("UPDATE subject_sets SET set_member_subjects_count = (SELECT COUNT(*) FROM set_member_subjects "
                     "WHERE subject_set_id = ?) WHERE id = ?", (set_id, set_id))
        for (workflow_id,) in conn.execute(WORKFLOWS_OF_SET, (set_id,)).fetchall():
            self._store_subjects_count(conn, workflow_id)
            self.retirements_changed(conn, workflow_id, job.run_at, origin_at=job.origin_at)

    def _count_workflow_subjects(self, conn: sqlite3.Connection, job: Job) -> None:
        (workflow_id,) = job.args
        self._store_subjects_count(conn, workflow_id)
        self.retirements_changed(conn, workflow_id, job.run_at, origin_at=job.origin_at)

    @staticmethod
    def _store_subjects_count(conn: sqlite3.Connection, workflow_id: int) -> None:
        """WorkflowCounter#subjects: the sum of the linked sets' stored sizes."""
        conn.execute(
            "UPDATE workflows SET real_set_member_subjects_count = (SELECT COALESCE(SUM(s.set_member_subjects_count), 0) "
            "FROM workflow_subject_sets w JOIN subject_sets s ON s.id = w.subject_set_id WHERE w.workflow_id = ?) "
            "WHERE id = ?", (workflow_id, workflow_id))

    def _count_retired(self, conn: sqlite3.Connection, job: Job) -> None:
        (workflow_id,) = job.args
        retired = conn.execute(RETIRED_SUBJECTS, (workflow_id, workflow_id)).fetchone()[0]
        conn.execute("UPDATE workflows SET retired_set_member_subjects_count = ? WHERE id = ?", (retired, workflow_id))
        # Workflow#finished?: linked sets, a non-zero stored subjects_count, and all of them retired.
        conn.execute(
            "UPDATE workflows SET finished_at = ? WHERE id = ? AND finished_at IS NULL "
            "AND real_set_member_subjects_count > 0 AND retired_set_member_subjects_count >= real_set_member_subjects_count "
            "AND EXISTS (SELECT 1 FROM workflow_subject_sets WHERE workflow_id = ?)",
            (job.run_at, workflow_id, workflow_id))
        project_id = conn.execute("SELECT project_id FROM workflows WHERE id = ?", (workflow_id,)).fetchone()[0]
        self._jobs.enqueue(conn, COMPLETENESS, [project_id], origin_at=job.origin_at,
                           lag=self._settings["completeness_lag"])

    @staticmethod
    def _calculate_completeness(conn: sqlite3.Connection, job: Job) -> None:
        (project_id,) = job.args
        workflows = conn.execute(
            "SELECT id, active, real_set_member_subjects_count AS subjects_count, retired_set_member_subjects_count "
            "AS retired FROM workflows WHERE project_id = ? ORDER BY id", (project_id,)).fetchall()
        active = []
        for workflow in workflows:
            completeness = _ratio(workflow["retired"], workflow["subjects_count"])
            conn.execute("UPDATE workflows SET completeness = ? WHERE id = ?", (completeness, workflow["id"]))
            if workflow["active"]:
                active.append({"subjects_count": workflow["subjects_count"], "completeness": completeness})
        conn.execute("UPDATE projects SET completeness = ? WHERE id = ?", (_project_completeness(active), project_id))

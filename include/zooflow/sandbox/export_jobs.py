"""Export jobs as the current Panoptes runs them: a rate limiter at job start, jobs that die, a cleanup.

Panoptes' API accepts every export request (201, ``creating``) and only queues a job. The limit is
checked when that job starts (``app/workers/concerns/rate_limit_dump_worker.rb``, defaults in
``config/initializers/rate_limit_dump_worker.rb``): per resource and export type, at most one attempt
per ``export_interval`` and at least ``export_min_gap`` between attempts, refused attempts counted
too. A refused job is cancelled without a word and never writes a ``job_id``, so the medium stays
``creating`` until a later request gets through. A started job writes its ``job_id`` into the
medium's metadata; ``export_failure_rate`` of started jobs die (used up their retries), and the
cleanup at 00:00 and 12:00 UTC (``app/workers/requeue_export_job_worker.rb``, ``config/schedule.yml``)
sets ``failed`` on a medium whose current job died. That cleanup only knows project and workflow
exports, so a subject-set export whose job died stays ``creating``, as on the real server. The
sandbox has no admin users, so no request is exempt, and its jobs live in its database, so none
is ever lost and none needs re-queueing. All times are the sandbox clock's.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import sys
import traceback
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

MAX_IN_INTERVAL = 1  # DUMP_CONGESTION_OPTS_MAX_IN_INTERVAL's default
CLEANUP_EVERY_SECONDS = 12 * 3600  # cron "0 0,12 * * *": epoch multiples of 12 h are 00:00 and 12:00 UTC
CLEANED_TYPES = ("projects", "workflows")  # RequeueExportJobWorker::EXPORT_MEDIA_TYPES has no subject sets
LAST_CLEANUP_KEY = "export_cleanup_boundary"


class ExportJobs:
    """Queues, starts, builds and cleans up export jobs; ``build(medium, base_url)`` writes the file."""

    def __init__(self, sb: Sandbox, build: Callable[[sqlite3.Row, str], None]):
        self.sb = sb
        self._build_file = build

    def queue(self, conn: sqlite3.Connection, medium_id: int, base_url: str, now: float) -> None:
        """A request's job: it starts at once; the request replaced the metadata, so no job id is left."""
        conn.execute("DELETE FROM medium_jobs WHERE medium_id = ?", (medium_id,))
        conn.execute("INSERT INTO export_jobs (medium_id, run_at, base_url) VALUES (?, ?, ?)",
                      (medium_id, now, base_url))

    def count_attempt(self, conn: sqlite3.Connection, medium_id: int, at: float) -> bool:
        """Judge an attempt to run the export at ``at``, remember it either way, and say if it may run."""
        settings = self.sb.settings
        in_interval = conn.execute(
            "SELECT COUNT(*) FROM export_attempts WHERE medium_id = ? AND attempted_at > ?",
            (medium_id, at - settings["export_interval"])).fetchone()[0]
        last = conn.execute("SELECT MAX(attempted_at) FROM export_attempts WHERE medium_id = ?",
                            (medium_id,)).fetchone()[0]
        allowed = in_interval < MAX_IN_INTERVAL and (last is None or at - last >= settings["export_min_gap"])
        conn.execute("INSERT INTO export_attempts (medium_id, attempted_at, refused) VALUES (?, ?, ?)",
                     (medium_id, at, int(not allowed)))
        return allowed

    def job_id(self, medium_id: int) -> str | None:
        return self.sb.db.scalar("SELECT jid FROM medium_jobs WHERE medium_id = ?", (medium_id,))

    def tick(self) -> None:
        self._clean_up_if_due()  # first: a clock moved past 00:00 or 12:00 cleans up before new jobs start
        now = self.sb.now()
        for job in self.sb.db.all("SELECT j.* FROM export_jobs j LEFT JOIN export_job_runs r ON r.job_id = j.id "
                                  "WHERE r.job_id IS NULL AND j.done_at IS NULL AND j.run_at <= ? ORDER BY j.run_at, j.id",
                                  (now,)):
            self._start(job)
        for job in self.sb.db.all("SELECT j.*, r.ready_at FROM export_jobs j JOIN export_job_runs r ON r.job_id = j.id "
                                  "WHERE r.outcome = 'running' AND r.ready_at <= ? ORDER BY r.ready_at, j.id",
                                  (self.sb.now(),)):
            self._build(job)

    def _start(self, job: sqlite3.Row) -> None:
        settings = self.sb.settings
        with self.sb.db.write() as conn:
            now = self.sb.now()
            if not self.count_attempt(conn, job["medium_id"], job["run_at"]):
                conn.execute("INSERT INTO export_job_runs (job_id, jid, started_at, ready_at, outcome) "
                             "VALUES (?, '', ?, NULL, 'cancelled')", (job["id"], now))
                conn.execute("UPDATE export_jobs SET done_at = ? WHERE id = ?", (now, job["id"]))
                return
            jid = secrets.token_hex(12)  # a Sidekiq job id
            if settings["export_stuck"]:
                outcome = "stuck"
            elif random.random() < settings["export_failure_rate"]:
                outcome = "dead"
            else:
                outcome = "running"
            conn.execute("INSERT INTO export_job_runs (job_id, jid, started_at, ready_at, outcome) VALUES (?, ?, ?, ?, ?)",
                         (job["id"], jid, now, now + settings["export_delay"], outcome))
            conn.execute("INSERT OR REPLACE INTO medium_jobs (medium_id, jid) VALUES (?, ?)", (job["medium_id"], jid))
            conn.execute("UPDATE media SET state = 'creating', updated_at = ? WHERE id = ?", (now, job["medium_id"]))
            if outcome == "dead":
                conn.execute("UPDATE export_jobs SET done_at = ? WHERE id = ?", (now, job["id"]))

    def _build(self, job: sqlite3.Row) -> None:
        medium = self.sb.db.one("SELECT * FROM media WHERE id = ?", (job["medium_id"],))
        try:
            self._build_file(medium, job["base_url"])
            outcome = "done"
        except Exception:  # noqa: BLE001 - a job that raises is a job that died; the cleanup marks it failed
            traceback.print_exc(file=sys.stderr)
            outcome = "dead"
        with self.sb.db.write() as conn:
            now = self.sb.now()
            conn.execute("UPDATE export_jobs SET done_at = ? WHERE id = ?", (now, job["id"]))
            conn.execute("UPDATE export_job_runs SET outcome = ? WHERE job_id = ?", (outcome, job["id"]))
            if outcome == "done":
                conn.execute("UPDATE media SET state = 'ready', updated_at = ? WHERE id = ?", (now, medium["id"]))

    def _clean_up_if_due(self) -> None:
        """Run the cleanup once each time the sandbox clock passes 00:00 or 12:00 UTC (either way)."""
        boundary = self.sb.now() // CLEANUP_EVERY_SECONDS * CLEANUP_EVERY_SECONDS
        last = self.sb.db.meta_get(LAST_CLEANUP_KEY)
        if last == boundary:
            return
        if last is not None:
            self.clean_up()
        self.sb.db.meta_set(LAST_CLEANUP_KEY, boundary)

    def clean_up(self) -> int:
        """Mark ``failed`` every exporting medium whose current job died; returns how many."""
        marks = ", ".join("?" for _ in CLEANED_TYPES)
        with self.sb.db.write() as conn:
            return conn.execute(
                "UPDATE media SET state = 'failed', updated_at = ? WHERE state = 'creating' "
                f"AND linked_type IN ({marks}) AND id IN (SELECT mj.medium_id FROM medium_jobs mj "
                "JOIN export_job_runs r ON r.jid = mj.jid WHERE r.outcome = 'dead')",
                (self.sb.now(), *CLEANED_TYPES)).rowcount

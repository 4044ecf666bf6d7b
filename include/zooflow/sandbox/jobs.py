"""A background-job queue on the sandbox clock, standing in for Panoptes' Sidekiq workers.

Panoptes answers an API call first and updates counters, statuses and retirements later, in
Sidekiq jobs (panoptes-realism.md sections 1-2). Code that reads those numbers right after a
write must cope with the lag, so the sandbox reproduces it: a write enqueues a job whose
``run_at`` is on the *sandbox* clock, and a worker ticking every 0.1 s runs the jobs that are
due. Moving the clock forward (``POST /_sandbox/clock``) therefore runs every job it passes.

Each job has a key (``workflow_retired_count:7``). While a job waits, another enqueue with the
same key is dropped, as Sidekiq's ``lock: :until_executing`` does, so a burst of events is
folded into the one waiting job. Its ``run_at`` is the *first* event plus the lag, which is what
the congestion limits (``min_delay`` with ``reject_with: :reschedule``) give under steady
activity: a key runs at most once per lag, and never sooner than the lag after the event.

A job may enqueue follow-ups (the retired count starts the completeness job). Follow-ups keep
the ``origin_at`` of the event that started the chain and are due at ``origin_at`` + their lag,
so every job an event causes is due within the longest lag of that event, even when the clock
jumped past several of them at once. That is the bound ``SandboxAdmin.settle`` relies on.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

from zooflow.sandbox.clock import SandboxClock
from zooflow.sandbox.db import Database
from zooflow.sandbox.workers import PeriodicWorker

TICK_SECONDS = 0.1
BATCH = 500  # due jobs run per write transaction, so API writes are not held up for long


@dataclass(frozen=True)
class Job:
    kind: str
    args: list
    origin_at: float
    run_at: float


Handler = Callable[[sqlite3.Connection, Job], None]


class JobQueue:
    def __init__(self, db: Database, clock: SandboxClock):
        self._db = db
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self.worker = PeriodicWorker("sandbox-jobs", TICK_SECONDS, self.run_due, db)

    def handle(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def enqueue(self, conn: sqlite3.Connection, kind: str, args: list, *, lag: float, origin_at: float | None = None,
                key: str | None = None) -> None:
        """Due ``lag`` s after ``origin_at`` (a follow-up's chain start; default now on the sandbox clock);
        dropped while a job with the same key (default ``kind:args``) waits."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for background job kind {kind!r}")
        origin_at = self._clock.now_epoch() if origin_at is None else origin_at
        conn.execute(
            "INSERT OR IGNORE INTO jobs (key, kind, args, origin_at, run_at) VALUES (?, ?, ?, ?, ?)",
            (key or f"{kind}:{':'.join(map(str, args))}", kind, json.dumps(args), origin_at, origin_at + lag),
        )

    def counts(self) -> dict:
        """Waiting jobs, and those of them already due on the sandbox clock."""
        row = self._db.one("SELECT COUNT(*), COALESCE(SUM(run_at <= ?), 0) FROM jobs", (self._clock.now_epoch(),))
        return {"jobs_pending": row[0], "jobs_due": row[1]}

    def run_due(self) -> int:
        """Run up to ``BATCH`` due jobs, oldest first, each removed in the transaction that runs it.

        A job that raises is logged and dropped (its savepoint undone), so one bad job neither
        blocks the queue nor is retried forever.
        """
        with self._db.write() as conn:
            due = conn.execute("SELECT * FROM jobs WHERE run_at <= ? ORDER BY run_at, rowid LIMIT ?",
                               (self._clock.now_epoch(), BATCH)).fetchall()
            for row in due:
                conn.execute("DELETE FROM jobs WHERE key = ?", (row["key"],))
                conn.execute("SAVEPOINT job")
                try:
                    self._handlers[row["kind"]](conn, Job(row["kind"], json.loads(row["args"]), row["origin_at"],
                                                          row["run_at"]))
                except Exception:  # noqa: BLE001 - a failed job is reported, the queue goes on
                    conn.execute("ROLLBACK TO job")
                    print(f"sandbox job {row['key']} failed and was dropped", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
                conn.execute("RELEASE job")
        return len(due)

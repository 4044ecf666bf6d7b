"""The sandbox's state: one SQLite file in WAL mode under the data dir.

Each thread gets its own connection (sqlite3 connections must not be shared while in use) and
reads without locking, which WAL allows alongside one writer. Writes go through ``write()``, which
holds a process-wide lock and one ``BEGIN IMMEDIATE`` transaction, so concurrent requests never meet
"database is locked" and a restart finds every committed change.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
-- AUTOINCREMENT: like Panoptes' sequences, an id is never handed out again after a delete.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, login TEXT NOT NULL UNIQUE COLLATE NOCASE, display_name TEXT NOT NULL,
    email TEXT, password_hash TEXT NOT NULL, ip TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE, secret TEXT NOT NULL,
    owner_id INTEGER);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, csrf_token TEXT NOT NULL, user_id INTEGER, created_wall REAL NOT NULL);
CREATE TABLE IF NOT EXISTS access_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL UNIQUE, refresh_token TEXT UNIQUE, user_id INTEGER,
    application_uid TEXT NOT NULL, created_wall REAL NOT NULL, expires_in INTEGER NOT NULL,
    revoked_wall REAL, previous_refresh_token TEXT);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, owner_id INTEGER NOT NULL, display_name TEXT NOT NULL, slug TEXT NOT NULL,
    description TEXT, introduction TEXT, primary_language TEXT, private INTEGER NOT NULL,
    configuration TEXT NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, display_name TEXT NOT NULL, tasks TEXT NOT NULL,
    first_task TEXT, primary_language TEXT, active INTEGER NOT NULL, mobile_friendly INTEGER NOT NULL,
    configuration TEXT NOT NULL, retirement TEXT NOT NULL, major_version INTEGER NOT NULL,
    minor_version INTEGER NOT NULL, finished_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workflow_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, workflow_id INTEGER NOT NULL, major_version INTEGER NOT NULL,
    minor_version INTEGER NOT NULL, display_name TEXT NOT NULL, first_task TEXT, tasks TEXT NOT NULL,
    strings TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workflow_subject_sets (
    workflow_id INTEGER NOT NULL, subject_set_id INTEGER NOT NULL, PRIMARY KEY (workflow_id, subject_set_id));
CREATE INDEX IF NOT EXISTS wss_set ON workflow_subject_sets (subject_set_id);
CREATE TABLE IF NOT EXISTS subject_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, display_name TEXT NOT NULL, metadata TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, upload_user_id INTEGER NOT NULL,
    metadata TEXT NOT NULL, locations TEXT NOT NULL, external_id TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, deleted_at REAL);
CREATE INDEX IF NOT EXISTS subjects_uploader ON subjects (upload_user_id);
CREATE TABLE IF NOT EXISTS set_member_subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subject_set_id INTEGER NOT NULL, subject_id INTEGER NOT NULL,
    priority REAL, random REAL NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (subject_id, subject_set_id));
CREATE INDEX IF NOT EXISTS sms_set ON set_member_subjects (subject_set_id, subject_id);
CREATE TABLE IF NOT EXISTS subject_workflow_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id INTEGER NOT NULL, workflow_id INTEGER NOT NULL,
    classifications_count INTEGER NOT NULL DEFAULT 0, retired_at REAL, retirement_reason TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (subject_id, workflow_id));
CREATE INDEX IF NOT EXISTS sws_workflow ON subject_workflow_statuses (workflow_id, retired_at);
CREATE TABLE IF NOT EXISTS classifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, workflow_id INTEGER NOT NULL,
    workflow_version TEXT NOT NULL, user_id INTEGER, user_ip TEXT NOT NULL, gold_standard INTEGER,
    expert TEXT, metadata TEXT NOT NULL, annotations TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, completed INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS classifications_workflow ON classifications (workflow_id);
CREATE INDEX IF NOT EXISTS classifications_project ON classifications (project_id);
CREATE TABLE IF NOT EXISTS classification_subjects (
    classification_id INTEGER NOT NULL, subject_id INTEGER NOT NULL,
    PRIMARY KEY (classification_id, subject_id));
CREATE INDEX IF NOT EXISTS classification_subjects_subject ON classification_subjects (subject_id);
CREATE TABLE IF NOT EXISTS blobs (
    path TEXT PRIMARY KEY, content_type TEXT NOT NULL, content_encoding TEXT, content_disposition TEXT,
    size INTEGER NOT NULL, etag TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY AUTOINCREMENT, linked_type TEXT NOT NULL, linked_id INTEGER NOT NULL, export_type TEXT NOT NULL,
    blob_path TEXT NOT NULL, state TEXT NOT NULL, recipients TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (linked_type, linked_id, export_type));
CREATE TABLE IF NOT EXISTS export_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, medium_id INTEGER NOT NULL, run_at REAL NOT NULL, base_url TEXT NOT NULL,
    done_at REAL);
CREATE INDEX IF NOT EXISTS export_jobs_due ON export_jobs (done_at, run_at);
-- How each export job ran (sandbox/export_jobs.py): the rate limiter's memory of attempts, refused ones
-- too; each started job's Sidekiq id and fate; and the job id a medium's metadata names now.
CREATE TABLE IF NOT EXISTS export_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, medium_id INTEGER NOT NULL, attempted_at REAL NOT NULL,
    refused INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS export_attempts_medium ON export_attempts (medium_id, attempted_at);
CREATE TABLE IF NOT EXISTS export_job_runs (
    job_id INTEGER PRIMARY KEY, jid TEXT NOT NULL, started_at REAL NOT NULL, ready_at REAL, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS export_job_runs_outcome ON export_job_runs (outcome, ready_at);
CREATE TABLE IF NOT EXISTS medium_jobs (medium_id INTEGER PRIMARY KEY, jid TEXT NOT NULL);
-- Background jobs (jobs.py): one waiting job per key, run when the sandbox clock reaches run_at.
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, args TEXT NOT NULL, origin_at REAL NOT NULL, run_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at);
CREATE TABLE IF NOT EXISTS oracle (
    key TEXT NOT NULL, value TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (key, value));
CREATE TABLE IF NOT EXISTS request_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, wall_time REAL NOT NULL, sandbox_time REAL NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, query TEXT NOT NULL, status INTEGER NOT NULL, bytes INTEGER NOT NULL, detail TEXT);
"""

# Columns added after the first release: a data dir made by an older sandbox gets them on open.
# Counters that Panoptes stores and its background jobs write (counters.py).
ADDED_COLUMNS = (
    ("workflows", "real_set_member_subjects_count", "INTEGER NOT NULL DEFAULT 0"),
    ("workflows", "retired_set_member_subjects_count", "INTEGER NOT NULL DEFAULT 0"),
    ("workflows", "completeness", "REAL NOT NULL DEFAULT 0"),
    ("subject_sets", "set_member_subjects_count", "INTEGER NOT NULL DEFAULT 0"),
    ("projects", "completeness", "REAL NOT NULL DEFAULT 0"),
    # The application owner a client-credentials token acts as (auth.py); incomplete classifications.
    ("oauth_applications", "owner_id", "INTEGER"),
    ("classifications", "completed", "INTEGER NOT NULL DEFAULT 1"),
)


class Database:
    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._connections: set[sqlite3.Connection] = set()
        self._connections_lock = threading.Lock()
        conn = self.conn()
        conn.execute("PRAGMA journal_mode=WAL")
        with self._write_lock:
            conn.executescript(SCHEMA)
            for table, column, declaration in ADDED_COLUMNS:
                if column not in {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.depth = 0
            with self._connections_lock:
                self._connections.add(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One serialized transaction; nested calls join the outer one."""
        with self._write_lock:
            conn = self.conn()
            self._local.depth += 1
            try:
                if self._local.depth == 1:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if self._local.depth == 1:
                        conn.execute("ROLLBACK")
                    raise
                if self._local.depth == 1:
                    conn.execute("COMMIT")
            finally:
                self._local.depth -= 1

    def all(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple | list = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, args).fetchone()

    def scalar(self, sql: str, args: tuple | list = ()) -> Any:
        row = self.conn().execute(sql, args).fetchone()
        return None if row is None else row[0]

    def insert(self, table: str, values: dict[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.write() as conn:
            return conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())).lastrowid

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self.write() as conn:
            conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])

    def meta_get(self, key: str, default: Any = None) -> Any:
        value = self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return default if value is None else json.loads(value)

    def meta_set(self, key: str, value: Any) -> None:
        with self.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def close_thread_connection(self) -> None:
        """Called when a request thread ends, so connections do not pile up with keep-alive threads."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._connections_lock:
                self._connections.discard(conn)
            conn.close()

    def close(self) -> None:
        with self._write_lock, self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

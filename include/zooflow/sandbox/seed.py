"""Named starting states for the sandbox; ``demo`` is the project the zooflow demo and tests use.

The constants are public so the demo, the tests and the benchmarks refer to the same names and
credentials instead of repeating literals. Seeding is idempotent: it creates what is missing and
leaves what exists alone.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Callable

from zooflow.slugs import parameterize

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

DEMO_USER = "zooflow"
DEMO_PASSWORD = "zooflow-sandbox"
DEMO_CLIENT_ID = "zooflow-sandbox-app"
DEMO_CLIENT_SECRET = "zooflow-sandbox-secret"
DEMO_PROJECT_NAME = "Glitch Demo"
DEMO_PROJECT_SLUG = f"{DEMO_USER}/{parameterize(DEMO_PROJECT_NAME)}"  # "zooflow/glitch-demo"
DEMO_PROJECT_DESCRIPTION = "Sandbox copy of a glitch classification project"
DEMO_WORKFLOW_NAME = "Glitch classification"
DEMO_TASK = "T0"
DEMO_QUESTION = "What kind of glitch is this?"
DEMO_ANSWERS = ("Point Source", "Point Source + Other", "Cosmic Ray", "Other")
DEMO_RETIREMENT_COUNT = 3
DEMO_SUBJECT_SET_NAME = "glitch-batch-0"
DEMO_TASKS = {
    DEMO_TASK: {
        "type": "single", "question": DEMO_QUESTION, "help": "", "required": True,
        "answers": [{"label": answer} for answer in DEMO_ANSWERS],
    },
}
DEMO_RETIREMENT = {"criteria": "classification_count", "options": {"count": DEMO_RETIREMENT_COUNT}}


def _find_or_insert(conn: sqlite3.Connection, find: str, find_args: tuple, insert: str, insert_args: tuple) -> tuple[int, bool]:
    """The id of the row ``find`` selects, inserting it first when missing; and whether it was inserted."""
    row = conn.execute(find, find_args).fetchone()
    if row:
        return row[0], False
    return conn.execute(insert, insert_args).lastrowid, True


def seed_demo(sb: Sandbox) -> dict[str, int]:
    from zooflow.sandbox.workflows import Workflows  # here: `zooflow --help` reads SEEDS without the sandbox's API

    user_id = sb.db.scalar("SELECT id FROM users WHERE login = ?", (DEMO_USER,))
    if user_id is None:
        user_id = sb.auth.create_user(DEMO_USER, DEMO_PASSWORD)
    sb.auth.ensure_application("zooflow sandbox", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, user_id)
    now = sb.now()
    with sb.db.write() as conn:
        project_id, _ = _find_or_insert(
            conn,
            "SELECT id FROM projects WHERE owner_id = ? AND display_name = ?", (user_id, DEMO_PROJECT_NAME),
            "INSERT INTO projects (owner_id, display_name, slug, description, introduction, primary_language, private, "
            "configuration, tags, created_at, updated_at) VALUES (?, ?, ?, ?, '', 'en', 1, '{}', '[]', ?, ?)",
            (user_id, DEMO_PROJECT_NAME, DEMO_PROJECT_SLUG, DEMO_PROJECT_DESCRIPTION, now, now),
        )
        workflow_id, created = _find_or_insert(
            conn,
            "SELECT id FROM workflows WHERE project_id = ? AND display_name = ?", (project_id, DEMO_WORKFLOW_NAME),
            "INSERT INTO workflows (project_id, display_name, tasks, first_task, primary_language, active, "
            "mobile_friendly, configuration, retirement, major_version, minor_version, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'en', 1, 0, '{}', ?, 1, 1, ?, ?)",
            (project_id, DEMO_WORKFLOW_NAME, json.dumps(DEMO_TASKS), DEMO_TASK, json.dumps(DEMO_RETIREMENT), now, now),
        )
        if created:
            Workflows.store_version(conn, workflow_id, now)
        set_id, created = _find_or_insert(
            conn,
            "SELECT id FROM subject_sets WHERE project_id = ? AND display_name = ?", (project_id, DEMO_SUBJECT_SET_NAME),
            "INSERT INTO subject_sets (project_id, display_name, metadata, created_at, updated_at) "
            "VALUES (?, ?, '{}', ?, ?)", (project_id, DEMO_SUBJECT_SET_NAME, now, now),
        )
        if created:
            conn.execute("INSERT INTO workflow_subject_sets (workflow_id, subject_set_id) VALUES (?, ?)",
                         (workflow_id, set_id))
    return {"user_id": user_id, "project_id": project_id, "workflow_id": workflow_id, "subject_set_id": set_id}


SEEDS: dict[str, Callable[[Sandbox], dict[str, int]]] = {"demo": seed_demo}

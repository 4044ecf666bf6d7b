"""Storing classifications the way Panoptes does, and counting them towards retirement.

Both simulated volunteers and the admin backfill call ``record``: it stores the annotation as the
front end sends it (the answer *index* of the question task), the workflow version the volunteer
saw, and front-end-like metadata, then bumps the subject's status and retires it at the limit.
As in Panoptes' ``ClassificationLifecycle``, an incomplete classification (saved for later by a
logged-in volunteer) counts towards nothing; and ``gold_standard`` is true or NULL, never false.
"""

from __future__ import annotations

import json
import random
import sqlite3

from zooflow.sandbox.retirement import Retirement
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.workflow_tasks import answer_labels, question_task

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) zooflow-sandbox-volunteer/1.0"


def answer_index(workflow: sqlite3.Row, label: str) -> int:
    """The index of ``label`` among the answers of the workflow's question task."""
    found = question_task(json.loads(workflow["tasks"]), workflow["first_task"])
    if found is None:
        raise ValueError(f"workflow {workflow['id']} has no question task to answer")
    labels = answer_labels(found[1])
    if label not in labels:
        raise ValueError(f"{label!r} is not an answer of workflow {workflow['id']}; answers: {labels}")
    return labels.index(label)


def front_end_metadata(rng: random.Random, finished_at: float, source: str) -> dict:
    started_at = finished_at - rng.uniform(4.0, 60.0)
    return {
        "source": source,
        "session": "%064x" % rng.getrandbits(256),
        "viewport": {"width": 1280, "height": 800},
        "started_at": iso_ms(started_at),
        "user_agent": USER_AGENT,
        "utc_offset": "0",
        "finished_at": iso_ms(finished_at),
        "live_project": False,
        "user_language": "en",
        "user_group_ids": [],
        "subject_dimensions": [{"clientWidth": 600, "clientHeight": 400, "naturalWidth": 600, "naturalHeight": 400}],
        "subject_selection_state": {
            "retired": False, "selected_at": iso_ms(started_at - 0.1), "already_seen": False,
            "selection_state": "normal", "finished_workflow": False, "user_has_finished_workflow": False,
        },
    }


def record(conn: sqlite3.Connection, retirement: Retirement, workflow: sqlite3.Row, subject_id: int,
           answer: int | None, *, user_id: int | None, user_ip: str, at: float, metadata: dict,
           completed: bool = True, gold_standard: bool = False) -> int:
    found = question_task(json.loads(workflow["tasks"]), workflow["first_task"])
    annotations = [{"task": found[0], "value": answer}] if found and answer is not None else []
    classification_id = conn.execute(
        "INSERT INTO classifications (project_id, workflow_id, workflow_version, user_id, user_ip, metadata, "
        "annotations, created_at, updated_at, completed, gold_standard) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (workflow["project_id"], workflow["id"], f"{workflow['major_version']}.{workflow['minor_version']}",
         user_id, user_ip, json.dumps(metadata), json.dumps(annotations), at, at, int(completed),
         1 if gold_standard else None),
    ).lastrowid
    conn.execute("INSERT INTO classification_subjects (classification_id, subject_id) VALUES (?, ?)",
                 (classification_id, subject_id))
    if completed:
        retirement.count_classification(conn, workflow, subject_id, at)
    return classification_id

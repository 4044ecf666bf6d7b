"""Simulated volunteers, so workflows make progress without people.

At ``volunteer_rate`` classifications per second (or on demand through the admin API, seeded
for repeatable tests) a volunteer picks an active workflow with unretired subjects in its linked
sets, picks one of those subjects, and answers the workflow's question task. How well depends on
the volunteer's skill profile (``skills``): by default the answer is the subject's ground truth
with probability ``1 - volunteer_error_rate``, else another answer; ``volunteer_skills`` mixes
careful, middling, random and biased accounts. Truth comes from the subject metadata key
``truth_key`` or from the oracle table, which maps (metadata key, value) to a label so zooflow's
active learning can register truth (for example by ``#pool_id``) without uploading it. A share
``anonymous_fraction`` of classifications is made without logging in (profile ``anonymous_skill``).
On a gold-standard subject (``gold_standard_fraction``) without the owner's gold classification,
the run's next classification of it is that one. Retirement follows each workflow's rule, or
``retire_after`` for all.
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import time
from typing import TYPE_CHECKING

from zooflow.sandbox import skills
from zooflow.sandbox.classifications import answer_index, front_end_metadata, record
from zooflow.sandbox.timeutil import parse_iso, to_epoch
from zooflow.sandbox.workers import PeriodicWorker
from zooflow.sandbox.workflow_tasks import answer_labels, question_task

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

TICK_SECONDS = 0.05
OWNER_IP = "198.51.100.1"  # the owner's, when their account has none on record
BATCH = 50  # classifications per write transaction, so API writes are not held up for long
CANDIDATES = (
    "SELECT DISTINCT sms.subject_id FROM workflow_subject_sets w "
    "JOIN set_member_subjects sms ON sms.subject_set_id = w.subject_set_id "
    "LEFT JOIN subject_workflow_statuses s ON s.subject_id = sms.subject_id AND s.workflow_id = w.workflow_id "
    "WHERE w.workflow_id = ? AND s.retired_at IS NULL ORDER BY sms.subject_id"
)


class Volunteers:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.worker = PeriodicWorker("sandbox-volunteers", TICK_SECONDS, self._tick, sb.db)
        self._rng = random.Random()
        self._owed = 0.0
        self._last_tick = time.monotonic()

    def _tick(self) -> None:
        now, rate = time.monotonic(), self.sb.settings["volunteer_rate"]
        elapsed, self._last_tick = now - self._last_tick, now
        # Owe at most one second of work, so a slow tick does not turn into a burst.
        self._owed = min(self._owed + rate * elapsed, rate + 1) if rate > 0 else 0.0
        if self._owed >= 1:
            made = self.run(int(self._owed), rng=self._rng)
            self._owed = self._owed - int(self._owed) if made else 0.0

    # -- classifying -------------------------------------------------------------------------

    def _volunteers(self) -> list[dict]:
        """The logged-in accounts (made when missing) in login order, each with its ``skill``."""
        settings = self.sb.settings
        logins = [f"volunteer-{number:02d}" for number in range(1, settings["volunteer_count"] + 1)]
        for number, login in enumerate(logins, start=1):
            if not self.sb.db.one("SELECT 1 FROM users WHERE login = ?", (login,)):
                self.sb.auth.create_user(login, secrets.token_hex(12), ip=f"192.0.2.{number % 254 + 1}")
        marks = ", ".join("?" for _ in logins)
        rows = {r["login"]: r for r in self.sb.db.all(
            f"SELECT id, login, ip FROM users WHERE login IN ({marks})", logins)}
        assigned = skills.assign(len(logins), settings["volunteer_skills"], settings["volunteer_error_rate"])
        volunteers = [{"id": rows[login]["id"], "login": login, "ip": rows[login]["ip"], "skill": skill}
                      for login, skill in zip(logins, assigned)]
        return sorted(volunteers, key=lambda v: v["login"])  # the order runs have always picked from

    def anonymous_skill(self) -> skills.Skill:
        return skills.skill(self.sb.settings["anonymous_skill"], self.sb.settings["volunteer_error_rate"])

    def profiles(self) -> dict:
        """Who answers how: every account's skill, the pooled anonymous one's, and the gold share."""
        return {
            "volunteers": [{"login": v["login"], "id": str(v["id"]), **v["skill"].describe()}
                           for v in self._volunteers()],
            "anonymous": self.anonymous_skill().describe(),
            "gold_standard_fraction": self.sb.settings["gold_standard_fraction"],
        }

    def run(self, count: int, *, seed: int | None = None, workflow_id: int | None = None,
            rng: random.Random | None = None) -> int:
        """Make up to ``count`` classifications now; fewer when no unretired subject is left."""
        rng = rng or random.Random(seed)
        volunteers, anonymous = self._volunteers(), self.anonymous_skill()
        workflows = {w["id"]: w for w in self.sb.db.all(
            "SELECT * FROM workflows WHERE active = 1 AND (? IS NULL OR id = ?) ORDER BY id",
            (workflow_id, workflow_id))}
        candidates = {wid: [r[0] for r in self.sb.db.all(CANDIDATES, (wid,))] for wid in workflows}
        oracle_keys = [r[0] for r in self.sb.db.all("SELECT DISTINCT key FROM oracle ORDER BY key")]
        made = 0
        while made < count:
            with self.sb.db.write() as conn:
                for _ in range(min(BATCH, count - made)):
                    open_workflows = [wid for wid in sorted(candidates) if candidates[wid]]
                    if not open_workflows:
                        return made
                    workflow = workflows[rng.choice(open_workflows)]
                    subject_id = rng.choice(candidates[workflow["id"]])
                    if not self._gold(conn, rng, workflow, subject_id, oracle_keys):
                        self._classify(conn, rng, workflow, subject_id, volunteers, anonymous, oracle_keys)
                    made += 1
                    retired = conn.execute(
                        "SELECT retired_at FROM subject_workflow_statuses WHERE subject_id = ? AND workflow_id = ?",
                        (subject_id, workflow["id"])).fetchone()
                    if retired and retired[0] is not None:
                        candidates[workflow["id"]].remove(subject_id)
        return made

    def _classify(self, conn: sqlite3.Connection, rng: random.Random, workflow: sqlite3.Row, subject_id: int,
                  volunteers: list[dict], anonymous: skills.Skill, oracle_keys: list[str]) -> None:
        seen = {r[0] for r in conn.execute(
            "SELECT c.user_id FROM classifications c JOIN classification_subjects cs ON cs.classification_id = c.id "
            "WHERE cs.subject_id = ? AND c.workflow_id = ? AND c.user_id IS NOT NULL", (subject_id, workflow["id"]))}
        fresh = [v for v in volunteers if v["id"] not in seen]
        if fresh and rng.random() >= self.sb.settings["anonymous_fraction"]:
            volunteer = rng.choice(fresh)
            user_id, ip, skill = volunteer["id"], volunteer["ip"], volunteer["skill"]
        else:
            user_id, ip, skill = None, f"203.0.113.{rng.randrange(1, 255)}", anonymous
        labels, truth = self._question(conn, workflow, subject_id, oracle_keys)
        at = self.sb.now()
        answer = None if labels is None else skills.answer(rng, skill, labels, truth)
        record(conn, self.sb.retirement, workflow, subject_id, answer,
               user_id=user_id, user_ip=ip, at=at, metadata=front_end_metadata(rng, at, "api"))

    def _gold(self, conn: sqlite3.Connection, rng: random.Random, workflow: sqlite3.Row, subject_id: int,
              oracle_keys: list[str]) -> bool:
        """The owner's gold-standard classification of a gold subject that has none yet; whether it was made."""
        if not skills.is_gold(subject_id, self.sb.settings["gold_standard_fraction"]):
            return False
        if conn.execute(
                "SELECT 1 FROM classifications c JOIN classification_subjects cs ON cs.classification_id = c.id "
                "WHERE cs.subject_id = ? AND c.workflow_id = ? AND c.gold_standard = 1",
                (subject_id, workflow["id"])).fetchone():
            return False
        labels, truth = self._question(conn, workflow, subject_id, oracle_keys)
        if labels is None or truth not in labels:
            return False  # the owner cannot vouch for an answer nobody knows
        owner_id, ip = conn.execute(
            "SELECT u.id, u.ip FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id = ?",
            (workflow["project_id"],)).fetchone()
        at = self.sb.now()
        record(conn, self.sb.retirement, workflow, subject_id, labels.index(truth), user_id=owner_id,
               user_ip=ip or OWNER_IP, at=at, metadata=front_end_metadata(rng, at, "api"), gold_standard=True)
        return True

    def _question(self, conn: sqlite3.Connection, workflow: sqlite3.Row, subject_id: int,
                  oracle_keys: list[str]) -> tuple[list[str] | None, str | None]:
        """The answer labels of the workflow's question task (None: it has none) and the subject's truth."""
        found = question_task(json.loads(workflow["tasks"]), workflow["first_task"])
        if found is None:
            return None, None
        metadata = json.loads(conn.execute("SELECT metadata FROM subjects WHERE id = ?", (subject_id,)).fetchone()[0])
        return answer_labels(found[1]), self._truth(metadata, oracle_keys, conn)

    def _truth(self, metadata: dict, oracle_keys: list[str], conn: sqlite3.Connection) -> str | None:
        truth = metadata.get(self.sb.settings["truth_key"])
        if truth is not None:
            return str(truth)
        for key in oracle_keys:
            if key in metadata:
                row = conn.execute("SELECT label FROM oracle WHERE key = ? AND value = ?",
                                   (key, str(metadata[key]))).fetchone()
                if row:
                    return row[0]
        return None

    # -- admin helpers -----------------------------------------------------------------------

    def set_oracle(self, key: str, truth: dict[str, str]) -> int:
        with self.sb.db.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO oracle (key, value, label) VALUES (?, ?, ?)",
                             [(key, str(value), str(label)) for value, label in truth.items()])
        return len(truth)

    def backfill(self, rows: list[dict]) -> list[int]:
        """Classifications at given times (for backfill tests), counted towards retirement like any other.

        Each row: ``workflow_id``, ``subject_id``, ``answer`` (a label), ``created_at`` (ISO with offset),
        optional ``user_login`` (an account is made when unknown; anonymous when absent), optional
        ``completed`` (false: saved for later, which Panoptes allows logged-in volunteers only) and
        ``gold_standard`` (true: by the project's owner, Panoptes' check that the classifier is an expert).
        """
        rng = random.Random()
        ids = []
        with self.sb.db.write() as conn:
            for row in rows:
                workflow = conn.execute("SELECT * FROM workflows WHERE id = ?", (int(row["workflow_id"]),)).fetchone()
                if workflow is None:
                    raise ValueError(f"no workflow {row['workflow_id']}")
                subject_id = int(row["subject_id"])
                if not conn.execute("SELECT 1 FROM subjects WHERE id = ?", (subject_id,)).fetchone():
                    raise ValueError(f"no subject {subject_id}")
                at = to_epoch(parse_iso(row["created_at"]))
                user_id, ip = None, f"203.0.113.{rng.randrange(1, 255)}"
                login = row.get("user_login")
                if login:
                    if not conn.execute("SELECT 1 FROM users WHERE login = ?", (login,)).fetchone():
                        self.sb.auth.create_user(login, secrets.token_hex(12))
                    user_id, ip = conn.execute("SELECT id, ip FROM users WHERE login = ?", (login,)).fetchone()
                completed, gold_standard = row.get("completed", True) is not False, row.get("gold_standard") is True
                _check_classifier(conn, workflow, user_id, completed, gold_standard)
                ids.append(record(conn, self.sb.retirement, workflow, subject_id, answer_index(workflow, row["answer"]),
                                  user_id=user_id, user_ip=ip, at=at,
                                  metadata=front_end_metadata(rng, at, "sandbox-backfill"),
                                  completed=completed, gold_standard=gold_standard))
        return ids


def _check_classifier(conn: sqlite3.Connection, workflow: sqlite3.Row, user_id: int | None, completed: bool,
                      gold_standard: bool) -> None:
    """Panoptes' validations (``Classification``, ``ClassificationValidator#validate_gold_standard``)."""
    if not completed and user_id is None:
        raise ValueError("Only logged in users can store incomplete classifications (give a user_login)")
    if gold_standard:
        owner = conn.execute("SELECT owner_id FROM projects WHERE id = ?", (workflow["project_id"],)).fetchone()[0]
        if user_id != owner:
            raise ValueError("gold_standard: classifier is not a project expert (give the project owner's user_login)")

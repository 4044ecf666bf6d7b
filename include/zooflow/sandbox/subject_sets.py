"""``/api/subject_sets`` and ``/api/set_member_subjects``: sets and their membership.

Membership rows are what ``SubjectSet.add``/``remove`` check one subject at a time and what the
link endpoints create and delete in bulk. Linking answers like Panoptes
(app/controllers/api/v1/subject_sets_controller.rb#add_relation): missing, deleted, foreign or
repeated subject ids are 422s, while subjects already in the set are ignored (200), so a retried
link is harmless. Each change touches the set (so its ETag moves) and starts the background jobs
that count the set and give its workflows status rows for the linked subjects.
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.jsonapi import (
    OWNED_PROJECTS, VISIBLE_PROJECTS, Filter, ResourceType, check_if_match, etag_of_records, find_owned, ids_of,
    link_href, link_ids, owned_project_id, register_reads, single,
)
from zooflow.sandbox.schema import Schema
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

TYPES = {"display_name": str, "metadata": dict}
CREATE = Schema("subject_sets", required=("display_name",), optional=("metadata", "expert_set"),
                types={**TYPES, "expert_set": bool}, links_required=("project",),
                links_optional=("subjects",))
UPDATE = Schema("subject_sets", optional=("display_name", "metadata"), types=TYPES)
NAME_TAKEN = "Validation failed: Display name has already been taken"
SUBJECTS_MISSING = "Error: check the subject set and all the subjects exist."


class SubjectSets:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self._random = random.Random()
        self.resource = ResourceType(
            name="subject_sets", kind="subject_set", table="subject_sets",
            visible=f"project_id IN ({VISIBLE_PROJECTS})", owned=f"project_id IN ({OWNED_PROJECTS})",
            serialize=self.serialize,
            filters={
                "id": Filter("id IN ({})"),
                "project_id": Filter("project_id IN ({})"),
                "workflow_id": Filter(
                    "id IN (SELECT subject_set_id FROM workflow_subject_sets WHERE workflow_id IN ({}))"),
                "display_name": Filter("display_name = ?", many=False),
            },
            links={**link_href("subject_sets", "project", "projects"),
                   **link_href("subject_sets", "workflows", "workflows")},
        )
        self.members = ResourceType(
            name="set_member_subjects", kind="set_member_subject", table="set_member_subjects",
            visible=f"subject_set_id IN (SELECT id FROM subject_sets WHERE project_id IN ({VISIBLE_PROJECTS}))",
            serialize=self.serialize_member,
            filters={"id": Filter("id IN ({})"), "subject_set_id": Filter("subject_set_id IN ({})"),
                     "subject_id": Filter("subject_id IN ({})")},
            links={**link_href("set_member_subjects", "subject", "subjects"),
                   **link_href("set_member_subjects", "subject_set", "subject_sets")},
        )

    def register(self, router: Router) -> None:
        sid = r"/api/subject_sets/(?P<id>[^/]+)"
        register_reads(router, self.resource, self.sb.db)
        register_reads(router, self.members, self.sb.db)
        router.add("POST", "/api/subject_sets", self.create)
        router.add("PUT", sid, self.update)
        router.add("DELETE", sid, self.delete)
        router.add("POST", sid + "/links/subjects", self.link_subjects)
        router.add("DELETE", sid + r"/links/subjects/(?P<ids>[^/]+)", self.unlink_subjects)

    # -- sets --------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        user_id = request.user.require_login()
        data = CREATE.parse(request)
        links = data["links"]
        project_id = owned_project_id(self.sb.db, user_id, links)
        now = self.sb.now()
        with self.sb.db.write() as conn:
            self._check_name_free(conn, project_id, data["display_name"])
            set_id = conn.execute(
                "INSERT INTO subject_sets (project_id, display_name, metadata, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (project_id, data["display_name"], json.dumps(data.get("metadata") or {}), now, now),
            ).lastrowid
            row = conn.execute("SELECT * FROM subject_sets WHERE id = ?", (set_id,)).fetchone()
            if links.get("subjects"):
                self.add_members(conn, row, ids_of(links["subjects"], "subjects"), user_id, now)
            row = conn.execute("SELECT * FROM subject_sets WHERE id = ?", (set_id,)).fetchone()
        return single(self.resource, row, request, status=201)

    @staticmethod
    def _check_name_free(conn: sqlite3.Connection, project_id: int, name: str, except_id: int = -1) -> None:
        if conn.execute("SELECT 1 FROM subject_sets WHERE project_id = ? AND display_name = ? AND id != ?",
                        (project_id, name, except_id)).fetchone():
            raise ApiError(400, NAME_TAKEN)

    def update(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        check_if_match(request, etag_of_records("subject_sets", [row]))
        data = UPDATE.parse(request)
        with self.sb.db.write() as conn:
            if "display_name" in data:
                self._check_name_free(conn, row["project_id"], data["display_name"], row["id"])
            changes = {key: json.dumps(value) if key == "metadata" else value for key, value in data.items()}
            self.sb.db.update("subject_sets", row["id"], {**changes, "updated_at": self.sb.now()})
        updated = self.sb.db.one("SELECT * FROM subject_sets WHERE id = ?", (row["id"],))
        return single(self.resource, updated, request, with_etag=False)

    def delete(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        check_if_match(request, etag_of_records("subject_sets", [row]))
        with self.sb.db.write() as conn:
            workflow_ids = [r["workflow_id"] for r in conn.execute(
                "SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ?", (row["id"],))]
            for table, column in (("set_member_subjects", "subject_set_id"),
                                  ("workflow_subject_sets", "subject_set_id"), ("subject_sets", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (row["id"],))
            for workflow_id in workflow_ids:
                self.sb.counters.workflow_sets_changed(conn, workflow_id, self.sb.now())
        return Response(204)

    # -- membership --------------------------------------------------------------------------

    def add_members(self, conn: sqlite3.Connection, set_row: sqlite3.Row, subject_ids: list[int], user_id: int,
                     now: float) -> None:
        marks = ", ".join("?" for _ in subject_ids)
        found = conn.execute(
            f"SELECT id, project_id FROM subjects WHERE id IN ({marks}) AND deleted_at IS NULL", subject_ids
        ).fetchall()
        if len(found) != len(subject_ids):
            raise ApiError(422, SUBJECTS_MISSING)
        owned = {r["id"] for r in conn.execute(OWNED_PROJECTS, (user_id,))}
        if any(r["project_id"] not in owned for r in found):
            raise ApiError(422, "Couldn't find linked subjects for current user")
        conn.executemany(
            "INSERT OR IGNORE INTO set_member_subjects (subject_set_id, subject_id, random, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(set_row["id"], subject_id, self._random.random(), now, now) for subject_id in subject_ids],
        )
        self.touched(conn, set_row["id"], now, added=subject_ids)

    def touched(self, conn: sqlite3.Connection, set_id: int, now: float, added: list[int] = ()) -> None:
        """Members were linked (``added``) or unlinked: move the set's ETag and start its jobs."""
        conn.execute("UPDATE subject_sets SET updated_at = ? WHERE id = ?", (now, set_id))
        if added:
            self.sb.retirement.create_statuses(conn, now, set_id, subject_ids=added)
        self.sb.counters.set_members_changed(conn, set_id, added=bool(added), at=now)

    def link_subjects(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        subject_ids = link_ids(request, "subjects")
        given = request.json()["subjects"]
        if isinstance(given, list) and len(given) != len(subject_ids):  # Panoptes compares with the ids sent
            raise ApiError(422, SUBJECTS_MISSING)
        with self.sb.db.write() as conn:
            self.add_members(conn, row, subject_ids, request.user.user_id, self.sb.now())
        updated = self.sb.db.one("SELECT * FROM subject_sets WHERE id = ?", (row["id"],))
        return single(self.resource, updated, request, with_etag=False)

    def unlink_subjects(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        subject_ids = ids_of(request.params["ids"].split(","), "subjects")
        with self.sb.db.write() as conn:
            conn.executemany("DELETE FROM set_member_subjects WHERE subject_set_id = ? AND subject_id = ?",
                             [(row["id"], subject_id) for subject_id in subject_ids])
            self.touched(conn, row["id"], self.sb.now())
        return Response(204)

    # -- serializers -------------------------------------------------------------------------

    def serialize(self, row: sqlite3.Row, request: Request) -> dict:
        db = self.sb.db
        workflow_ids = [str(r["workflow_id"]) for r in db.all(
            "SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ? ORDER BY workflow_id",
            (row["id"],))]
        return {
            "id": str(row["id"]), "display_name": row["display_name"],
            "set_member_subjects_count": self.sb.counters.set_size(row["id"]),
            "metadata": json.loads(row["metadata"]),
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "href": f"/subject_sets/{row['id']}",
            "links": {"project": str(row["project_id"]), "workflows": workflow_ids},
        }

    @staticmethod
    def serialize_member(row: sqlite3.Row, request: Request) -> dict:
        return {
            "id": str(row["id"]), "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "priority": row["priority"], "href": f"/set_member_subjects/{row['id']}",
            "links": {"subject_set": str(row["subject_set_id"]), "subject": str(row["subject_id"])},
        }

"""``/api/workflows``: progress counts, versions, subject-set links and explicit retirement.

Every save that changes the task structure bumps the major version, and a change of the texts
alone (question, answer labels, display name) bumps the minor one, as Panoptes does; each version
is kept because classifications and the workflows export refer to them by ``"major.minor"``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.jsonapi import (
    OWNED_PROJECTS, VISIBLE_PROJECTS, Filter, ResourceType, check_if_match, etag_of_records, find_owned, ids_of,
    link_href, link_ids, owned_project_id, register_reads, single,
)
from zooflow.sandbox.retirement import DEFAULT_RETIREMENT
from zooflow.sandbox.schema import Schema
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router
from zooflow.sandbox.workflow_tasks import extract_strings

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

EDITABLE = ("display_name", "primary_language", "tasks", "first_task", "retirement", "configuration", "active",
            "mobile_friendly")
TYPES = {"display_name": str, "primary_language": str, "tasks": dict, "first_task": str, "retirement": dict,
         "configuration": dict, "active": bool, "mobile_friendly": bool}
CREATE = Schema("workflows", required=("display_name", "primary_language"),
                optional=tuple(k for k in EDITABLE if k not in ("display_name", "primary_language")),
                types=TYPES, links_required=("project",), links_optional=("subject_sets",))
UPDATE = Schema("workflows", optional=EDITABLE, types=TYPES)
MAX_WORKFLOW_PAGE_SIZE = 25


class Workflows:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.resource = ResourceType(
            name="workflows", kind="workflow", table="workflows", visible=f"project_id IN ({VISIBLE_PROJECTS})",
            owned=f"project_id IN ({OWNED_PROJECTS})", serialize=self.serialize,
            max_page_size=MAX_WORKFLOW_PAGE_SIZE,
            filters={
                "id": Filter("id IN ({})"),
                "project_id": Filter("project_id IN ({})"),
                "active": Filter("active = (lower(?) IN ('true', '1'))", many=False),
            },
            links={**link_href("workflows", "project", "projects"),
                   **link_href("workflows", "subject_sets", "subject_sets")},
        )

    def register(self, router: Router) -> None:
        wid = r"/api/workflows/(?P<id>[^/]+)"
        register_reads(router, self.resource, self.sb.db)
        router.add("POST", "/api/workflows", self.create)
        router.add("PUT", wid, self.update)
        router.add("POST", wid + "/links/subject_sets", self.link_sets)
        router.add("DELETE", wid + r"/links/subject_sets/(?P<ids>[^/]+)", self.unlink_sets)
        router.add("POST", wid + "/retired_subjects", self.retire)
        router.add("POST", wid + "/unretire_subjects", self.unretire)

    # -- writes ------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        user_id = request.user.require_login()
        data = CREATE.parse(request)
        project_id = owned_project_id(self.sb.db, user_id, data["links"])
        now = self.sb.now()
        with self.sb.db.write() as conn:
            workflow_id = conn.execute(
                "INSERT INTO workflows (project_id, display_name, tasks, first_task, primary_language, active, "
                "mobile_friendly, configuration, retirement, major_version, minor_version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)",
                (project_id, data["display_name"], json.dumps(data.get("tasks") or {}), data.get("first_task"),
                 data["primary_language"], int(data.get("active", True)), int(data.get("mobile_friendly", False)),
                 json.dumps(data.get("configuration") or {}), json.dumps(data.get("retirement") or {}), now, now),
            ).lastrowid
            self.store_version(conn, workflow_id, now)
            set_ids = ids_of(data["links"].get("subject_sets", []), "subject_sets")
            if set_ids:
                self._add_sets(conn, workflow_id, project_id, user_id, set_ids, now)
        row = self.sb.db.one("SELECT * FROM workflows WHERE id = ?", (workflow_id,))
        return single(self.resource, row, request, status=201)

    @staticmethod
    def store_version(conn: sqlite3.Connection, workflow_id: int, now: float) -> None:
        row = conn.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        keyed, strings = extract_strings(json.loads(row["tasks"]))
        conn.execute(
            "INSERT INTO workflow_versions (workflow_id, major_version, minor_version, display_name, first_task, "
            "tasks, strings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (workflow_id, row["major_version"], row["minor_version"], row["display_name"], row["first_task"],
             json.dumps(keyed), json.dumps(strings), now),
        )

    def update(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        check_if_match(request, etag_of_records("workflows", [row]))
        data = UPDATE.parse(request)
        old_keyed, old_strings = extract_strings(json.loads(row["tasks"]))
        new_keyed, new_strings = extract_strings(data.get("tasks", json.loads(row["tasks"])))
        changed = {key for key in ("first_task", "display_name") if data.get(key, row[key]) != row[key]}
        major = row["major_version"] + (new_keyed != old_keyed or "first_task" in changed)
        minor = row["minor_version"] + (new_strings != old_strings or "display_name" in changed)
        changes = {key: json.dumps(value) if isinstance(value, dict) else value for key, value in data.items()}
        now = self.sb.now()
        with self.sb.db.write() as conn:
            self.sb.db.update("workflows", row["id"], {**changes, "major_version": major, "minor_version": minor,
                                                        "updated_at": now})
            if (major, minor) != (row["major_version"], row["minor_version"]):
                self.store_version(conn, row["id"], now)
        updated = self.sb.db.one("SELECT * FROM workflows WHERE id = ?", (row["id"],))
        return single(self.resource, updated, request, with_etag=False)

    def _add_sets(self, conn: sqlite3.Connection, workflow_id: int, project_id: int, user_id: int,
                  set_ids: list[int], now: float) -> None:
        marks = ", ".join("?" for _ in set_ids)
        found = conn.execute(
            f"SELECT * FROM subject_sets WHERE id IN ({marks}) AND project_id IN ({OWNED_PROJECTS})",
            [*set_ids, user_id],
        ).fetchall()
        if len(found) != len(set_ids):
            raise ApiError(422, "Couldn't find linked subject_sets for current user")
        for subject_set in found:
            set_id = subject_set["id"] if subject_set["project_id"] == project_id else \
                self._copy_set(conn, subject_set, project_id, now)
            conn.execute("INSERT OR IGNORE INTO workflow_subject_sets (workflow_id, subject_set_id) VALUES (?, ?)",
                         (workflow_id, set_id))
            if set_id != subject_set["id"]:
                self.sb.counters.set_members_changed(conn, set_id, added=True, at=now)
            self.sb.retirement.create_statuses(conn, now, set_id, workflow_id)
        self.sb.counters.workflow_sets_changed(conn, workflow_id, now)

    @staticmethod
    def _copy_set(conn: sqlite3.Connection, subject_set: sqlite3.Row, project_id: int, now: float) -> int:
        """Panoptes' SubjectSetCopier: a set of another project is copied, members and all, into the
        workflow's project, and the copy is linked; the original stays where it was."""
        copy_id = conn.execute(
            "INSERT INTO subject_sets (project_id, display_name, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (project_id, subject_set["display_name"], subject_set["metadata"], now, now),
        ).lastrowid
        conn.execute(
            "INSERT INTO set_member_subjects (subject_set_id, subject_id, priority, random, created_at, updated_at) "
            "SELECT ?, subject_id, priority, random, ?, ? FROM set_member_subjects WHERE subject_set_id = ?",
            (copy_id, now, now, subject_set["id"]),
        )
        return copy_id

    def link_sets(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        set_ids = link_ids(request, "subject_sets")
        with self.sb.db.write() as conn:
            self._add_sets(conn, row["id"], row["project_id"], request.user.user_id, set_ids, self.sb.now())
        return single(self.resource, row, request, with_etag=False)

    def unlink_sets(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        set_ids = ids_of(request.params["ids"].split(","), "subject_sets")
        with self.sb.db.write() as conn:
            conn.executemany("DELETE FROM workflow_subject_sets WHERE workflow_id = ? AND subject_set_id = ?",
                             [(row["id"], set_id) for set_id in set_ids])
            self.sb.counters.workflow_sets_changed(conn, row["id"], self.sb.now())
        return Response(204)

    def retire(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(422, "Retirement needs subject_ids")
        try:
            reason = self.sb.retirement.reason(body.get("retirement_reason", "other"))
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        given = body.get("subject_ids") or ([body["subject_id"]] if "subject_id" in body else [])
        subject_ids = ids_of(given, "subject")
        with self.sb.db.write() as conn:
            self.sb.retirement.request_retire(conn, row["id"], subject_ids, reason, self.sb.now())
        return Response(204)

    def unretire(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(422, "Unretiring needs subject_ids or subject_set_ids")
        subject_ids = ids_of(body.get("subject_ids") or [], "subject")
        set_ids = ids_of(body.get("subject_set_ids") or [], "subject_set")
        if set_ids:
            marks = ", ".join("?" for _ in set_ids)
            subject_ids += [r["subject_id"] for r in self.sb.db.all(
                f"SELECT subject_id FROM set_member_subjects WHERE subject_set_id IN ({marks})", set_ids)]
        with self.sb.db.write() as conn:
            self.sb.retirement.unretire(conn, row["id"], subject_ids, self.sb.now())
        return Response(204)

    # -- reads -------------------------------------------------------------------------------

    def serialize(self, row: sqlite3.Row, request: Request) -> dict:
        workflow_id = row["id"]
        set_ids = [str(r["subject_set_id"]) for r in self.sb.db.all(
            "SELECT subject_set_id FROM workflow_subject_sets WHERE workflow_id = ? ORDER BY subject_set_id",
            (workflow_id,))]
        return {
            "id": str(workflow_id), "display_name": row["display_name"], "tasks": json.loads(row["tasks"]),
            "steps": {}, **self.sb.counters.workflow(workflow_id),
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "finished_at": iso_ms(row["finished_at"]), "first_task": row["first_task"] or "",
            "primary_language": row["primary_language"], "content_language": row["primary_language"],
            "version": f"{row['major_version']}.{row['minor_version']}",
            "prioritized": False, "grouped": False, "pairwise": False,
            "retirement": json.loads(row["retirement"]) or DEFAULT_RETIREMENT,
            "href": f"/workflows/{workflow_id}", "active": bool(row["active"]),
            "mobile_friendly": bool(row["mobile_friendly"]), "aggregation": {},
            "configuration": json.loads(row["configuration"]), "public_gold_standard": False,
            "links": {
                "project": str(row["project_id"]), "subject_sets": set_ids, "tutorial_subject": None,
                "published_version": None,
                "attached_images": {"href": f"/workflows/{workflow_id}/attached_images", "type": "attached_images",
                                    "ids": []},
                "classifications_export": {"href": f"/workflows/{workflow_id}/classifications_export",
                                           "type": "classifications_exports"},
            },
        }

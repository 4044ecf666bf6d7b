"""``/api/subjects``: create with media upload URLs, show, index, metadata updates, soft delete.

Creating a subject with a MIME type as location answers with a signed PUT URL per location on
the sandbox's blob store, which the client then uploads to with plain ``requests``; later reads
show public GET URLs. Only ``metadata``, ``locations`` and ``links.subject_sets`` may be updated,
and every user may upload ``subject_limit`` subjects in total, deleted ones included.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.blobstore import UPLOAD_CONTAINER
from zooflow.sandbox.jsonapi import (
    OWNED_PROJECTS, VISIBLE_PROJECTS, Filter, ResourceType, check_if_match, etag_of_records, find_owned, ids_of,
    link_href, owned_project_id, register_reads,
)
from zooflow.sandbox.schema import Schema
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router, api_response

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

EXTENSIONS = {
    "image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/svg+xml": "svg", "audio/mpeg": "mp3",
    "video/mp4": "mp4", "audio/mp4": "m4a", "video/mpeg": "mpeg", "text/plain": "txt", "application/json": "json",
}
MIME_ALIASES = {"audio/mp3": "audio/mpeg", "audio/x-wav": "audio/mpeg"}
TYPES = {"locations": list, "metadata": dict, "external_id": str}
CREATE = Schema("subjects", required=("locations",), optional=("metadata", "external_id"), types=TYPES,
                links_required=("project",), links_optional=("subject_sets",))
UPDATE = Schema("subjects", optional=("metadata", "locations"), types=TYPES, links_optional=("subject_sets",))


class Subjects:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.resource = ResourceType(
            name="subjects", kind="subject", table="subjects",
            visible=f"deleted_at IS NULL AND project_id IN ({VISIBLE_PROJECTS})",
            owned=f"deleted_at IS NULL AND project_id IN ({OWNED_PROJECTS})",
            serialize=lambda row, request: self.serialize(row, request, for_upload=False),
            filters={
                "id": Filter("id IN ({})"),
                "project_id": Filter("project_id IN ({})"),
                "subject_set_id": Filter(
                    "id IN (SELECT subject_id FROM set_member_subjects WHERE subject_set_id IN ({}))"),
            },
            links={**link_href("subjects", "project", "projects"),
                   **link_href("subjects", "subject_sets", "subject_sets")},
        )

    def register(self, router: Router) -> None:
        sid = r"/api/subjects/(?P<id>[^/]+)"
        register_reads(router, self.resource, self.sb.db)
        router.add("POST", "/api/subjects", self.create)
        router.add("PUT", sid, self.update)
        router.add("DELETE", sid, self.delete)

    def _locations(self, raw: list) -> list[dict]:
        """Stored form: ``{"mime", "key"}`` for media uploaded here, ``{"mime", "url"}`` for external media."""
        stored = []
        for item in raw:
            if isinstance(item, str):
                mime, url = MIME_ALIASES.get(item, item), None
            elif isinstance(item, dict) and len(item) == 1 and all(isinstance(v, str) for v in item.values()):
                (mime, url), = item.items()
                mime = MIME_ALIASES.get(mime, mime)
            else:
                raise ApiError(422, f'{{"locations"=>"item {json.dumps(item)} is neither a MIME type '
                                    'nor {mime: url}"}')
            if mime not in EXTENSIONS:
                raise ApiError(400, f"Validation failed: Locations {mime} is not an allowed content type "
                                    f"({', '.join(EXTENSIONS)})")
            stored.append({"mime": mime, "url": url} if url else
                          {"mime": mime, "key": self.sb.blobs.new_key(UPLOAD_CONTAINER, EXTENSIONS[mime])})
        return stored

    def create(self, request: Request) -> Response:
        user_id = request.user.require_login()
        data = CREATE.parse(request)
        project_id = owned_project_id(self.sb.db, user_id, data["links"])
        locations = self._locations(data["locations"])
        set_ids = ids_of(data["links"].get("subject_sets") or [], "subject_sets")
        now = self.sb.now()
        with self.sb.db.write() as conn:
            uploaded = conn.execute("SELECT COUNT(*) FROM subjects WHERE upload_user_id = ?", (user_id,)).fetchone()[0]
            limit = self.sb.settings["subject_limit"]
            if uploaded >= limit:
                raise ApiError(403, f"User has uploaded {uploaded} subjects of {limit} maximum")
            subject_id = conn.execute(
                "INSERT INTO subjects (project_id, upload_user_id, metadata, locations, external_id, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (project_id, user_id, json.dumps(data.get("metadata") or {}), json.dumps(locations),
                 data.get("external_id"), now, now),
            ).lastrowid
            self._join_sets(conn, subject_id, set_ids, user_id, now)
            row = conn.execute("SELECT * FROM subjects WHERE id = ?", (subject_id,)).fetchone()
        return self._upload_response(row, request, 201, etag_of_records("subjects", [row]))

    def _join_sets(self, conn: sqlite3.Connection, subject_id: int, set_ids: list[int], user_id: int,
                   now: float) -> None:
        for set_id in set_ids:
            set_row = conn.execute(
                f"SELECT * FROM subject_sets WHERE id = ? AND project_id IN ({OWNED_PROJECTS})", (set_id, user_id)
            ).fetchone()
            if set_row is None:
                raise ApiError(422, "Couldn't find linked subject_sets for current user")
            self.sb.subject_sets.add_members(conn, set_row, [subject_id], user_id, now)

    def _upload_response(self, row: sqlite3.Row, request: Request, status: int, etag: str | None) -> Response:
        """Create and update answer with signed PUT URLs (Panoptes' ``url_format: :put``)."""
        payload = {"subjects": [self.serialize(row, request, for_upload=True)], "links": self.resource.links}
        return api_response(status, payload, etag)

    def update(self, request: Request) -> Response:
        row = find_owned(self.resource, self.sb.db, request)
        check_if_match(request, etag_of_records("subjects", [row]))
        data = UPDATE.parse(request)
        changes = {"updated_at": self.sb.now()}
        if "metadata" in data:
            changes["metadata"] = json.dumps(data["metadata"])
        if data.get("locations"):
            changes["locations"] = json.dumps(self._locations(data["locations"]))
        with self.sb.db.write() as conn:
            self.sb.db.update("subjects", row["id"], changes)
            if "subject_sets" in data.get("links", {}):
                self._replace_sets(conn, row["id"], ids_of(data["links"]["subject_sets"], "subject_sets"),
                                   request.user.user_id)
            updated = conn.execute("SELECT * FROM subjects WHERE id = ?", (row["id"],)).fetchone()
        return self._upload_response(updated, request, 200, None)

    def _replace_sets(self, conn: sqlite3.Connection, subject_id: int, set_ids: list[int], user_id: int) -> None:
        now = self.sb.now()
        current = {r["subject_set_id"] for r in conn.execute(
            "SELECT subject_set_id FROM set_member_subjects WHERE subject_id = ?", (subject_id,))}
        for set_id in current - set(set_ids):
            conn.execute("DELETE FROM set_member_subjects WHERE subject_id = ? AND subject_set_id = ?",
                         (subject_id, set_id))
            self.sb.subject_sets.touched(conn, set_id, now)
        self._join_sets(conn, subject_id, [s for s in set_ids if s not in current], user_id, now)

    def delete(self, request: Request) -> Response:
        """Soft delete: the subject leaves its sets and reads, but still counts against the upload limit."""
        row = find_owned(self.resource, self.sb.db, request)
        check_if_match(request, etag_of_records("subjects", [row]))
        with self.sb.db.write() as conn:
            self._replace_sets(conn, row["id"], [], request.user.user_id)
            self.sb.db.update("subjects", row["id"], {"deleted_at": self.sb.now(), "updated_at": self.sb.now()})
        return Response(204)

    def location_urls(self, locations: list[dict], base_url: str, *, for_upload: bool) -> list[dict]:
        blobs = self.sb.blobs
        return [
            {loc["mime"]: loc["url"] if "url" in loc else
             blobs.signed_url(base_url, loc["key"]) if for_upload else blobs.public_url(base_url, loc["key"])}
            for loc in locations
        ]

    def serialize(self, row: sqlite3.Row, request: Request, *, for_upload: bool) -> dict:
        set_ids = [str(r["subject_set_id"]) for r in self.sb.db.all(
            "SELECT subject_set_id FROM set_member_subjects WHERE subject_id = ? ORDER BY subject_set_id",
            (row["id"],))]
        return {
            "id": str(row["id"]), "metadata": json.loads(row["metadata"]),
            "locations": self.location_urls(json.loads(row["locations"]), request.base_url, for_upload=for_upload),
            "zooniverse_id": None, "external_id": row["external_id"],
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "href": f"/subjects/{row['id']}",
            "links": {"project": str(row["project_id"]), "collections": [], "subject_sets": set_ids},
        }

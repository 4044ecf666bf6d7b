"""Data exports: the ``*_export`` media endpoints and the CSV files their jobs write.

What zooflow must survive is reproduced on purpose. A request is always accepted with 201 and
state ``creating`` and queues a job; whether the job may run is decided when it starts, by the
rate limiter in ``export_jobs.py``, which cancels a refused job silently (the medium stays
``creating`` and keeps pointing at the previous file). A job that runs writes its ``job_id`` into the
metadata and makes the file ``export_delay`` sandbox-seconds later, built from the state at that
moment, gzipped and swapped in atomically; a job that dies is marked ``failed`` by the next cleanup.
``src`` is a signed URL that expires, so describe again right before downloading.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from zooflow.sandbox.blobstore import EXPORT_CONTAINER
from zooflow.sandbox.csv_export import (
    CLASSIFICATION_COLUMNS, SUBJECT_COLUMNS, WORKFLOW_COLUMNS, classification_rows, subject_rows, workflow_rows,
    writer,
)
from zooflow.sandbox.export_jobs import ExportJobs
from zooflow.sandbox.jsonapi import etag_of_records, find_owned
from zooflow.sandbox.timeutil import http_date, iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router, api_response
from zooflow.sandbox.workers import PeriodicWorker
from zooflow.slugs import parameterize

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

SINGULAR = {"projects": "project", "workflows": "workflow", "subject_sets": "subject_set"}
EXPORT_TYPES = {
    ("projects", "classifications"), ("projects", "subjects"), ("projects", "workflows"),
    ("workflows", "classifications"), ("subject_sets", "classifications"),
}
WORKER_TICK_SECONDS = 0.1


class Exports:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.jobs = ExportJobs(sb, self._write_file)
        self.worker = PeriodicWorker("sandbox-exports", WORKER_TICK_SECONDS, self.jobs.tick, sb.db)

    def register(self, router: Router) -> None:
        path = r"/api/(?P<resource>projects|workflows|subject_sets)/(?P<id>[^/]+)/(?P<export>[a-z_]+)_export"
        router.add("POST", path, self.generate)
        router.add("GET", path, self.describe)

    # -- endpoints ---------------------------------------------------------------------------

    def _target(self, request: Request) -> tuple[str, str, str]:
        resource, export, resource_id = request.params["resource"], request.params["export"], request.params["id"]
        if resource == "projects" and export == "workflow_contents":
            raise _Gone()
        if (resource, export) not in EXPORT_TYPES:
            raise ApiError(404, "Not Found")
        return resource, export, resource_id

    def _owned(self, resource: str, request: Request) -> sqlite3.Row:
        return find_owned(getattr(self.sb, resource).resource, self.sb.db, request)

    def generate(self, request: Request) -> Response:
        resource, export, _ = self._target(request)
        linked = self._owned(resource, request)
        user_id = request.user.user_id
        request.json()  # {"media": {"content_type": "text/csv"}}; only its syntax matters
        now = self.sb.now()
        with self.sb.db.write() as conn:
            conn.execute(
                "INSERT INTO media (linked_type, linked_id, export_type, blob_path, state, recipients, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'creating', ?, ?, ?) "
                "ON CONFLICT (linked_type, linked_id, export_type) DO UPDATE SET state = 'creating', "
                "recipients = excluded.recipients, updated_at = excluded.updated_at",
                (resource, linked["id"], export, self.sb.blobs.new_key(EXPORT_CONTAINER, "csv"),
                 json.dumps([user_id]), now, now),
            )
            medium = conn.execute("SELECT * FROM media WHERE linked_type = ? AND linked_id = ? AND export_type = ?",
                                  (resource, linked["id"], export)).fetchone()
            self.jobs.queue(conn, medium["id"], request.base_url, now)
        request.detail = "export job queued"
        return self._medium_response(medium["id"], request, 201, with_meta=False)

    def describe(self, request: Request) -> Response:
        resource, export, resource_id = self._target(request)
        singular = SINGULAR[resource]
        missing = ApiError(404, f"No {export}_export exists for {singular} #{resource_id}")
        try:
            linked = self._owned(resource, request)
        except ApiError:
            raise missing from None
        medium = self.sb.db.one("SELECT id FROM media WHERE linked_type = ? AND linked_id = ? AND export_type = ?",
                                (resource, linked["id"], export))
        if medium is None:
            raise missing
        return self._medium_response(medium["id"], request, 200, with_meta=True)

    def _medium_response(self, medium_id: int, request: Request, status: int, *, with_meta: bool) -> Response:
        medium = self.sb.db.one("SELECT * FROM media WHERE id = ?", (medium_id,))
        resource, export, linked_id = medium["linked_type"], medium["export_type"], medium["linked_id"]
        href = f"/{resource}/{linked_id}/{export}_export"
        payload: dict = {"media": [{
            "id": str(medium["id"]), "href": href,
            "src": self.sb.blobs.signed_url(request.base_url, medium["blob_path"]),
            "content_type": "text/csv", "media_type": f"{SINGULAR[resource]}_{export}_export", "external_link": False,
            "created_at": iso_ms(medium["created_at"]), "updated_at": iso_ms(medium["updated_at"]),
            "metadata": self._metadata(medium),
            "links": {"linked": {"href": f"/{resource}/{linked_id}", "id": str(linked_id), "type": resource}},
        }]}
        if with_meta:
            payload["links"] = {"media.linked": {"href": "/{media.linked.href}", "type": "linked"}}
            payload["meta"] = {"media": {
                "page": 1, "page_size": 20, "count": 1, "include": [], "page_count": 1, "previous_page": None,
                "next_page": None, "first_href": href, "previous_href": None, "next_href": None, "last_href": href,
            }}
        headers = [("Last-Modified", http_date(medium["updated_at"]))]
        if status == 201:
            headers.append(("Location", f"{request.base_url}/api{href}"))
        return api_response(status, payload, etag_of_records("media", [medium]), headers)

    def _metadata(self, medium: sqlite3.Row) -> dict:
        metadata = {"recipients": json.loads(medium["recipients"]), "state": medium["state"]}
        job_id = self.jobs.job_id(medium["id"])
        return metadata | {"job_id": job_id} if job_id else metadata

    def install(self, resource: str, resource_id: int, export: str, path: Path) -> dict:
        """Make an existing gzip file the ready export of a resource, without the CSV builder.

        For benchmarks: the file is hard-linked into the blob store when it can be (copied
        otherwise) and the medium is set ``ready`` as if a requested export had just finished;
        downloads then go through the usual signed, range-capable blob route. It counts as an
        attempt for the rate limiter, like the job that would have built it."""
        resource = resource if resource in SINGULAR else f"{resource}s"
        if (resource, export) not in EXPORT_TYPES:
            raise ValueError(f"{resource} have no {export} export")
        if not path.is_absolute() or not path.is_file():
            raise ValueError(f"{path} is not an absolute path to a file")
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                raise ValueError(f"{path} is not gzip: Panoptes serves exports gzipped")
        linked = self.sb.db.one(f"SELECT * FROM {resource} WHERE id = ?", (int(resource_id),))
        if linked is None:
            raise ValueError(f"no {SINGULAR[resource]} #{resource_id}")
        now = self.sb.now()
        with self.sb.db.write() as conn:
            conn.execute(
                "INSERT INTO media (linked_type, linked_id, export_type, blob_path, state, recipients, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'creating', '[]', ?, ?) "
                "ON CONFLICT (linked_type, linked_id, export_type) DO NOTHING",
                (resource, linked["id"], export, self.sb.blobs.new_key(EXPORT_CONTAINER, "csv"), now, now),
            )
        medium = self.sb.db.one("SELECT * FROM media WHERE linked_type = ? AND linked_id = ? AND export_type = ?",
                                (resource, linked["id"], export))
        name = linked["slug"].split("/", 1)[1] if resource == "projects" else parameterize(linked["display_name"])
        temp = self.sb.blobs.temp_path(medium["blob_path"])
        try:
            try:
                os.link(path, temp)
            except OSError:
                shutil.copyfile(path, temp)
            self.sb.blobs.commit(medium["blob_path"], temp, "text/csv", encoding="gzip",
                                 disposition=f'attachment; filename="{name}-{export}.csv"')
        finally:
            temp.unlink(missing_ok=True)
        with self.sb.db.write() as conn:
            conn.execute("UPDATE media SET state = 'ready', updated_at = ? WHERE id = ?", (now, medium["id"]))
            self.jobs.count_attempt(conn, medium["id"], now)
        return {"medium_id": str(medium["id"]), "blob_path": medium["blob_path"], "bytes": path.stat().st_size,
                "updated_at": iso_ms(now)}

    # -- the file a job writes ---------------------------------------------------------------

    def _write_file(self, medium: sqlite3.Row, base_url: str) -> None:
        conn = self.sb.db.conn()
        resource, export, linked_id = medium["linked_type"], medium["export_type"], medium["linked_id"]
        linked = conn.execute(f"SELECT * FROM {resource} WHERE id = ?", (linked_id,)).fetchone()
        if export == "classifications":
            columns, rows = CLASSIFICATION_COLUMNS, classification_rows(conn, resource, linked_id)
        elif export == "subjects":
            urls = lambda locations: self.sb.subjects.location_urls(locations, base_url, for_upload=False)  # noqa: E731
            columns, rows = SUBJECT_COLUMNS, subject_rows(conn, linked_id, urls)
        else:
            columns, rows = WORKFLOW_COLUMNS, workflow_rows(conn, linked_id, self.sb.retirement)
        name = linked["slug"].split("/", 1)[1] if resource == "projects" else parameterize(linked["display_name"])
        disposition = f'attachment; filename="{name}-{export}.csv"'
        temp = self.sb.blobs.temp_path(medium["blob_path"])
        try:
            with gzip.open(temp, "wt", encoding="utf-8", newline="", compresslevel=6) as stream:
                out = writer(stream)
                out.writerow(columns)
                out.writerows(rows)
            self.sb.blobs.commit(medium["blob_path"], temp, "text/csv", encoding="gzip", disposition=disposition)
        finally:
            temp.unlink(missing_ok=True)


class _Gone(ApiError):
    """``workflow_contents`` exports were retired: 410 with an empty body (the client returns None)."""

    def __init__(self) -> None:
        super().__init__(410, "Gone")

    def response(self) -> Response:
        return Response(410)

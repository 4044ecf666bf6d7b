"""``/api/projects``: show, index (by ``slug`` too) and create.

A project's slug is ``<owner login>/<parameterized display name>``, which is how zooflow names
projects in its settings. Private projects are visible to their owner only; to anyone else they
do not exist (404), as on Panoptes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.jsonapi import Filter, ResourceType, link_href, register_reads, single
from zooflow.sandbox.schema import Schema
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router
from zooflow.slugs import parameterize

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

CREATE = Schema(
    "projects",
    required=("display_name", "description", "primary_language", "private"),
    optional=("configuration", "urls", "redirect", "mobile_friendly", "title", "workflow_description", "tags",
              "introduction", "researcher_quote", "experimental_tools"),
    types={"display_name": str, "description": str, "primary_language": str, "private": bool,
           "configuration": dict, "tags": list, "introduction": str},
    links_optional=("owner", "workflows", "subject_sets"),
)


class Projects:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.resource = ResourceType(
            name="projects", kind="project", table="projects", visible="private = 0 OR owner_id = ?",
            owned="owner_id = ?", serialize=self.serialize,
            filters={
                "id": Filter("id IN ({})"),
                "slug": Filter("lower(slug) = lower(?)", many=False),
                "display_name": Filter("display_name = ?", many=False),
            },
            links={
                **link_href("projects", "workflows", "workflows"),
                **link_href("projects", "subject_sets", "subject_sets"),
                **link_href("projects", "owner", "owners"),
            },
        )

    def register(self, router: Router) -> None:
        register_reads(router, self.resource, self.sb.db)
        router.add("POST", "/api/projects", self.create)

    def create(self, request: Request) -> Response:
        owner_id = request.user.require_login()
        data = CREATE.parse(request)
        owner = self.sb.db.one("SELECT login FROM users WHERE id = ?", (owner_id,))
        now = self.sb.now()
        with self.sb.db.write() as conn:
            taken = conn.execute(
                "SELECT 1 FROM projects WHERE owner_id = ? AND display_name = ?", (owner_id, data["display_name"])
            ).fetchone()
            if taken:
                raise ApiError(400, "Validation failed: Display name Must be unique for owner")
            project_id = conn.execute(
                "INSERT INTO projects (owner_id, display_name, slug, description, introduction, primary_language, "
                "private, configuration, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (owner_id, data["display_name"], f"{owner['login']}/{parameterize(data['display_name'])}",
                 data["description"], data.get("introduction"), data["primary_language"], int(data["private"]),
                 json.dumps(data.get("configuration") or {}), json.dumps(data.get("tags") or []), now, now),
            ).lastrowid
        row = self.sb.db.one("SELECT * FROM projects WHERE id = ?", (project_id,))
        location = [("Location", f"{request.base_url}/api/projects/{project_id}")]
        return single(self.resource, row, request, status=201, headers=location)

    def serialize(self, row: sqlite3.Row, request: Request) -> dict:
        db, project_id = self.sb.db, row["id"]
        workflows = db.all("SELECT id, active FROM workflows WHERE project_id = ? ORDER BY id", (project_id,))
        active = [str(w["id"]) for w in workflows if w["active"]]
        progress = self.sb.counters.project(project_id)
        set_ids = [str(r["id"]) for r in db.all(
            "SELECT id FROM subject_sets WHERE project_id = ? ORDER BY id", (project_id,))]
        media = {name: {"href": f"/projects/{project_id}/{name}", "type": f"{name}s"}
                 for name in ("avatar", "background", "classifications_export", "subjects_export")}
        return {
            "id": str(project_id), "display_name": row["display_name"], "title": row["display_name"],
            "slug": row["slug"], "description": row["description"], "introduction": row["introduction"],
            "primary_language": row["primary_language"], "available_languages": [row["primary_language"]],
            "private": bool(row["private"]), "configuration": json.loads(row["configuration"]),
            "tags": json.loads(row["tags"]),
            "classifications_count": db.scalar(
                "SELECT COUNT(*) FROM classifications WHERE project_id = ?", (project_id,)),
            "subjects_count": progress["subjects_count"],
            "retired_subjects_count": progress["retired_subjects_count"],
            "classifiers_count": db.scalar(
                "SELECT COUNT(DISTINCT user_id) FROM classifications WHERE project_id = ?", (project_id,)),
            "completeness": progress["completeness"],
            "activity": 0, "live": False, "urls": [], "migrated": False, "redirect": "", "state": None,
            "beta_requested": False, "beta_approved": False, "launch_requested": False, "launch_approved": False,
            "launch_date": None, "workflow_description": "", "experimental_tools": [], "researcher_quote": "",
            "mobile_friendly": False, "featured": False,
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "href": f"/projects/{project_id}",
            "links": {
                "workflows": active, "active_workflows": active, "subject_sets": set_ids, "project_roles": [],
                "pages": [], "organization": None, **media,
                "attached_images": {"href": f"/projects/{project_id}/attached_images", "type": "attached_images",
                                    "ids": []},
                "owner": self.sb.users.owner_link(row["owner_id"]),
            },
        }


"""``/api/subject_workflow_statuses``: per-subject retirement state, read-only.

Panoptes serves this type with its NoCount serializer (no totals, a ``next_href`` on every
non-empty page), so the client pages until it gets an empty page; the sandbox does the same.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.jsonapi import VISIBLE_PROJECTS, Filter, ResourceType, link_href, register_reads
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import Request, Router

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox


class Statuses:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.resource = ResourceType(
            name="subject_workflow_statuses", kind="subject_workflow_status", table="subject_workflow_statuses",
            visible=f"workflow_id IN (SELECT id FROM workflows WHERE project_id IN ({VISIBLE_PROJECTS}))",
            serialize=self.serialize, counted=False,
            filters={"id": Filter("id IN ({})"), "workflow_id": Filter("workflow_id IN ({})"),
                     "subject_id": Filter("subject_id IN ({})")},
            links={**link_href("subject_workflow_statuses", "subject", "subjects"),
                   **link_href("subject_workflow_statuses", "workflow", "workflows")},
        )

    def register(self, router: Router) -> None:
        register_reads(router, self.resource, self.sb.db)

    @staticmethod
    def serialize(row: sqlite3.Row, request: Request) -> dict:
        return {
            "id": str(row["id"]), "classifications_count": row["classifications_count"],
            "retired_at": iso_ms(row["retired_at"]), "retirement_reason": row["retirement_reason"],
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "href": f"/subject_workflow_statuses/{row['id']}",
            "links": {"subject": str(row["subject_id"]), "workflow": str(row["workflow_id"])},
        }

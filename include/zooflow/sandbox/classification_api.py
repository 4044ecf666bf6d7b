"""Reading classifications through the API, as a project team does on Panoptes, quirks included.

``GET /api/classifications/project`` is the way to follow a project's classifications without an
export: owners and collaborators (``ClassificationPolicy::ProjectScope``) page with ``last_id``
instead of page numbers. What a consumer must be ready for, all of it on zooniverse.org:

- no total count (``NoCountSerializer``): ``count`` and ``page_count`` are 0, and ``next_href`` is
  set while a page has rows, so the client stops only after an empty page;
- ``next_href`` carries the new ``last_id``, the *string* maximum of the page's ids
  (``ClassificationSerializer.add_last_id_paging_hrefs`` sorts the serialized ids), so a page that
  crosses a power of ten (…98, 99, 100…) sends the next request from 99 and repeats ids: dedupe by id;
- incomplete classifications are included and nothing in the serialized fields marks them
  (``completed`` is not an attribute), unlike the classifications export, which leaves them out;
- ``last_id`` without ``project_id`` is a 422.

``GET /api/classifications/gold_standard`` reads ``gold_standard_annotations``, a frozen snapshot of
historical gold-standard data (``app/models/gold_standard_annotation.rb``), limited for everyone
but Zooniverse admins to workflows with ``public_gold_standard``. Nothing made today reaches that
table, so for any sandbox project the answer is an empty page; gold-standard classifications show
in the export's ``gold_standard`` column instead.

Panoptes sources: ``app/controllers/api/v1/classifications_controller.rb`` (``project``,
``gold_standard``), ``app/serializers/classification_serializer.rb``,
``app/serializers/concerns/no_count_serializer.rb``, ``lib/serialization/panoptes_restpack.rb``
(``page_href``), ``app/policies/classification_policy.rb``, ``app/models/classification.rb``
(``after_id``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from zooflow.sandbox.jsonapi import DEFAULT_PAGE_SIZE, OWNED_PROJECTS, link_href, listing, paging
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import ApiError, Request, Response, Router

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

KEY = "classifications"
FILTERS = ("project_id", "workflow_id", "user_id")  # restpack filters on the belongs_to keys
LINKS = {
    **link_href(KEY, "project", "projects"), **link_href(KEY, "user", "users"),
    **link_href(KEY, "user_group", "user_groups"), **link_href(KEY, "workflow", "workflows"),
    **link_href(KEY, "subjects", "subjects"),
}
MISSING_PROJECT = "Project ID required if last_id is included"


class ClassificationApi:
    def __init__(self, sb: Sandbox):
        self.sb = sb

    def register(self, router: Router) -> None:
        router.add("GET", f"/api/{KEY}/project", self.project)
        router.add("GET", f"/api/{KEY}/gold_standard", self.gold_standard)

    def project(self, request: Request) -> Response:
        query = request.query
        if "last_id" in query and "project_id" not in query:
            raise ApiError(422, MISSING_PROJECT)
        page, page_size = paging(query)
        clauses, args = [f"project_id IN ({OWNED_PROJECTS})"], [request.user.user_id]
        for name in FILTERS:
            if name in query:
                values = [value for value in query[name].split(",") if value]
                clauses.append(f"{name} IN ({', '.join('?' for _ in values)})" if values else "0")
                args.extend(values)
        if "last_id" in query:
            clauses.append("id > ?")
            args.append(_last_id(query["last_id"]))
        rows = self.sb.db.all(
            f"SELECT * FROM classifications WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ? OFFSET ?",
            [*args, page_size, (page - 1) * page_size],
        )
        subjects = self._subject_ids([row["id"] for row in rows])
        records = [_serialize(row, subjects.get(row["id"], [])) for row in rows]
        meta = _page_meta("project", query, page, page_size, bool(records))
        if "last_id" in query:
            _last_id_hrefs(meta, query["last_id"], max((r["id"] for r in records), default=None))  # str max
        return listing({KEY: records, "links": LINKS, "meta": {KEY: meta}})

    def gold_standard(self, request: Request) -> Response:
        page, page_size = paging(request.query)
        meta = _page_meta("gold_standard", request.query, page, page_size, False)
        return listing({KEY: [], "links": LINKS, "meta": {KEY: meta}})

    def _subject_ids(self, classification_ids: list[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        marks = ", ".join("?" for _ in classification_ids)
        for row in self.sb.db.all(
            f"SELECT classification_id, subject_id FROM classification_subjects WHERE classification_id IN ({marks}) "
            "ORDER BY classification_id, subject_id", classification_ids,
        ):
            found.setdefault(row[0], []).append(str(row[1]))
        return found


def _last_id(text: str) -> int:
    if not text.isdigit():  # Postgres refuses to compare a bigint with text: the request fails
        raise ApiError(500, "Internal Server Error")
    return int(text)


def _serialize(row, subject_ids: list[str]) -> dict:
    """The fields of ``ClassificationSerializer``; ``metadata`` gains the workflow version."""
    return {
        "id": str(row["id"]),
        "annotations": json.loads(row["annotations"]),
        "created_at": iso_ms(row["created_at"]),
        "updated_at": iso_ms(row["updated_at"]),
        "metadata": {**json.loads(row["metadata"]), "workflow_version": row["workflow_version"]},
        "href": f"/{KEY}/{row['id']}",
        "links": {
            "project": str(row["project_id"]),
            "user": None if row["user_id"] is None else str(row["user_id"]),
            "workflow": str(row["workflow_id"]),
            "user_group": None,
            "subjects": subject_ids,
        },
    }


def _page_meta(suffix: str, query: dict[str, str], page: int, page_size: int, had_rows: bool) -> dict:
    """``NoCountSerializer``'s meta; restpack's ``page_href`` turns page 0 into ``page=0`` links."""
    filters = sorted((name, query[name]) for name in FILTERS if name in query)

    def href(number: int | None) -> str | None:
        if number is None:
            return None
        params = [] if number == 1 else [("page", str(number))]
        if page_size != DEFAULT_PAGE_SIZE:
            params.append(("page_size", str(page_size)))
        params += filters
        return f"/{KEY}/{suffix}" + (f"?{urlencode(params, safe=',')}" if params else "")

    next_page = page + 1 if had_rows else None
    return {
        "page": page, "page_size": page_size, "count": 0, "include": [], "page_count": 0,
        "previous_page": page - 1, "next_page": next_page,
        "first_href": href(1), "previous_href": href(page - 1), "next_href": href(next_page), "last_href": href(0),
    }


def _last_id_hrefs(meta: dict, given_last_id: str, next_last_id: str | None) -> None:
    """``add_last_id_paging_hrefs``: next from the page's greatest id *as a string*, previous from the
    request's ``last_id``; ``page`` is dropped and the query is rebuilt in key order (``to_query``)."""
    for key, last_id in (("next_href", next_last_id), ("previous_href", given_last_id)):
        if meta[key] is None:
            continue
        parts = urlsplit(meta[key])
        params = {name: value for name, value in parse_qsl(parts.query) if name != "page"}
        params["last_id"] = last_id
        meta[key] = f"{parts.path}?{urlencode(sorted(params.items()))}"

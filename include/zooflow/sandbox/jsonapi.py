"""The JSON API conventions every Panoptes resource shares: envelopes, paging, filters, ETags.

This follows Panoptes' restpack serializer closely because the client leans on its details:
it reads ``response[type][0]`` even for one resource, follows ``meta[type].next_href`` by prefixing
``/api``, and sends back whatever ETag it last saw as ``If-Match``. Show and create ETags hash the
records' (type, id, updated_at); index ETags hash the body, so an object obtained from an index and
then saved fails with 412 exactly as on zooniverse.org (client issue #220).
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote

from zooflow.sandbox.auth import ApiUser
from zooflow.sandbox.db import Database
from zooflow.sandbox.web import ApiError, Request, Response, Router, api_response, not_found

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
VISIBLE_PROJECTS = "SELECT id FROM projects WHERE private = 0 OR owner_id = ?"
OWNED_PROJECTS = "SELECT id FROM projects WHERE owner_id = ?"
PAGE_ERROR = "Current page was incalculable. Perhaps you called .page before .per?"


@dataclass(frozen=True)
class Filter:
    """A query-parameter filter: ``sql`` holds ``{}`` for a list of ``?`` marks, or one ``?``."""

    sql: str
    many: bool = True


@dataclass(frozen=True)
class ResourceType:
    name: str  # plural JSON API type, also the URL segment: "subjects"
    kind: str  # singular, for "Could not find subject with id='1'"
    table: str
    visible: str  # SQL condition on the table; every "?" receives the caller's user id
    serialize: Callable[[sqlite3.Row, Request], dict]
    filters: dict[str, Filter] = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    max_page_size: int = MAX_PAGE_SIZE
    counted: bool = True  # False for NoCountSerializer types (subject_workflow_statuses)
    owned: str | None = None  # SQL condition for records the caller may change; None = read-only type

    def find(self, db: Database, user: ApiUser, resource_id: str, *, for_update: bool = False) -> sqlite3.Row:
        """The row, or the 404 Panoptes gives alike for missing, invisible and (on writes) not-owned records."""
        condition = self.owned if for_update else self.visible
        row = None
        if resource_id.isdigit():
            row = db.one(
                f"SELECT * FROM {self.table} WHERE id = ? AND ({condition})",
                [int(resource_id)] + [_uid(user)] * condition.count("?"),
            )
        if row is None:
            raise not_found(self.kind, resource_id)
        return row


def _uid(user: ApiUser) -> int:
    """The caller's id for visibility SQL; -1 matches no owner."""
    return -1 if user.user_id is None else user.user_id


def etag_of_records(type_name: str, rows: list[sqlite3.Row]) -> str:
    key = "|".join(f"{type_name}/{row['id']}-{row['updated_at']!r}" for row in rows)
    return f'"{hashlib.md5(key.encode()).hexdigest()}"'


def check_if_match(request: Request, current_etag: str) -> None:
    """PUT and DELETE of a resource must carry the ETag of the record as it is now.

    Panoptes (``lib/json_api_controller/precondition_check.rb``) compares the header with the current
    ETag as one string, ``W/``-prefixed when the header is weak: no ``*``, no lists. Only a missing
    header is a 428; an empty one is a mismatch.
    """
    given = request.headers.get("If-Match")
    if given is None:
        raise ApiError(428, "Request requires If-Match header to be present")
    if given != (f"W/{current_etag}" if given.startswith("W/") else current_etag):
        raise ApiError(412, "JsonApiController::PreconditionFailed")


def single(rt: ResourceType, row: sqlite3.Row, request: Request, status: int = 200, with_etag: bool = True,
           headers: list | None = None) -> Response:
    payload = {rt.name: [rt.serialize(row, request)], "links": rt.links}
    return api_response(status, payload, etag_of_records(rt.name, [row]) if with_etag else None, headers)


def show(rt: ResourceType, db: Database, user: ApiUser, request: Request) -> Response:
    return single(rt, rt.find(db, user, request.params["id"]), request)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, PAGE_ERROR) from None
    if value < 1:
        raise ApiError(422, PAGE_ERROR)
    return value


def paging(query: dict[str, str], max_page_size: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    """``page`` and ``page_size`` (capped, as kaminari's ``max_per_page`` does) of an index request."""
    page = _positive_int(query.get("page", "1"))
    return page, min(_positive_int(query.get("page_size", str(DEFAULT_PAGE_SIZE))), max_page_size)


def listing(payload: dict) -> Response:
    """An index answer: its ETag hashes the body (``generate_response_obj_etag``)."""
    response = api_response(200, payload)
    response.headers.append(("ETag", f'"{hashlib.md5(response.body).hexdigest()}"'))
    return response


def index(rt: ResourceType, db: Database, user: ApiUser, request: Request) -> Response:
    query = request.query
    page, page_size = paging(query, rt.max_page_size)
    clauses, args = [f"({rt.visible})"], [_uid(user)] * rt.visible.count("?")
    applied: dict[str, str] = {}
    for param, value in query.items():
        singular = param[:-1] if param.endswith("s") else None
        name = param if param in rt.filters else singular if singular in rt.filters else None
        if name is None:
            continue
        flt = rt.filters[name]
        if flt.many:
            values = [item.strip() for item in value.split(",") if item.strip()]
            clauses.append(flt.sql.format(", ".join("?" for _ in values)) if values else "0")
            args.extend(values)
        else:
            clauses.append(flt.sql)
            args.append(value)
        applied[param] = value
    sort = query.get("sort") if query.get("sort") in ("id", "-id") else None
    where = " AND ".join(clauses)
    order = "DESC" if sort == "-id" else "ASC"
    rows = db.all(
        f"SELECT * FROM {rt.table} WHERE {where} ORDER BY id {order} LIMIT ? OFFSET ?",
        [*args, page_size, (page - 1) * page_size],
    )
    count = db.scalar(f"SELECT COUNT(*) FROM {rt.table} WHERE {where}", args) if rt.counted else 0
    payload = {
        rt.name: [rt.serialize(row, request) for row in rows],
        "links": rt.links,
        "meta": {rt.name: _page_meta(rt, page, page_size, count, len(rows), sort, applied)},
    }
    return listing(payload)


def _page_meta(rt: ResourceType, page: int, page_size: int, count: int, on_page: int, sort: str | None,
               filters: dict[str, str]) -> dict:
    if rt.counted:
        page_count = math.ceil(count / page_size)
        next_page = page + 1 if page < page_count else None
        last_page = page_count or None
    else:  # NoCountSerializer: no totals, and always a next page while this one had rows
        page_count = 0
        next_page = page + 1 if on_page else None
        last_page = None
    previous_page = page - 1 if page > 1 else None

    def href(number: int | None) -> str | None:
        if number is None:
            return None
        parts = [] if number == 1 else [f"page={number}"]
        if page_size != DEFAULT_PAGE_SIZE:
            parts.append(f"page_size={page_size}")
        if sort:
            parts.append(f"sort={sort}")
        parts += [f"{key}={quote(value, safe=',/:')}" for key, value in sorted(filters.items())]
        return f"/{rt.name}" + ("?" + "&".join(parts) if parts else "")

    return {
        "page": page, "page_size": page_size, "count": count, "include": [], "page_count": page_count,
        "previous_page": previous_page, "next_page": next_page,
        "first_href": href(1), "previous_href": href(previous_page), "next_href": href(next_page),
        "last_href": href(last_page),
    }


def link_href(type_name: str, assoc: str, target: str) -> dict:
    return {f"{type_name}.{assoc}": {"href": f"/{target}/{{{type_name}.{assoc}}}", "type": target}}


def link_ids(request: Request, relation: str) -> list[int]:
    """Ids from a ``POST /<type>/<id>/links/<relation>`` body, whose single key must be the relation."""
    body = request.json()
    if not isinstance(body, dict) or set(body) != {relation}:
        raise ApiError(422, f"Link relation {relation} must match body key")
    values = body[relation] if isinstance(body[relation], list) else [body[relation]]
    return ids_of(values, relation)


def ids_of(values: list, what: str) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) or isinstance(v, str) and v.strip().isdigit()
               for v in values):
        raise ApiError(422, f"Error: {what} ids must be integers: {values!r}")
    return list(dict.fromkeys(int(v) for v in values))


def register_reads(router: Router, rt: ResourceType, db: Database) -> None:
    """``GET /api/<type>`` (index) and ``GET /api/<type>/<id>`` (show)."""
    router.add("GET", f"/api/{rt.name}", lambda request: index(rt, db, request.user, request))
    router.add("GET", f"/api/{rt.name}/(?P<id>[^/]+)", lambda request: show(rt, db, request.user, request))


def find_owned(rt: ResourceType, db: Database, request: Request) -> sqlite3.Row:
    """The record a write targets: 401 without a login, 404 unless the caller owns its project."""
    request.user.require_login()
    return rt.find(db, request.user, request.params["id"], for_update=True)


def owned_project_id(db: Database, user_id: int, links: dict) -> int:
    """The ``links.project`` of a create body, which must be a project the caller owns."""
    project_id = ids_of([links["project"]], "project")[0]
    if not db.one("SELECT 1 FROM projects WHERE id = ? AND owner_id = ?", (project_id, user_id)):
        raise ApiError(422, "Couldn't find linked project for current user")
    return project_id

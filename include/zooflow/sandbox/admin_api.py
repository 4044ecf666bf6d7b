"""``/_sandbox/*``: the control surface tests, the demo and benchmarks use; not part of Panoptes.

JSON in and out, no authentication (bind the sandbox to loopback), no fault injection, and not
written to the request log, so assertions about the client's traffic stay clean. Bad input is a
400 with the usual ``{"errors":[{"message": ...}]}`` body.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from zooflow.sandbox.seed import SEEDS
from zooflow.sandbox.settings import SettingsError
from zooflow.sandbox.timeutil import iso_ms, parse_iso
from zooflow.sandbox.web import ApiError, Request, Response, Router, plain_json

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox

PREFIX = "/_sandbox"
COUNTED_TABLES = ("users", "projects", "workflows", "subject_sets", "classifications", "media")
REQUEST_PAGE_LIMIT = 10000


def _object(request: Request) -> dict:
    body = request.json()
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    return body


class AdminApi:
    def __init__(self, sb: Sandbox):
        self.sb = sb

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Callable[[Request], Any]]] = [
            ("GET", "/state", lambda request: self.state()),
            ("GET", "/clock", lambda request: self.clock()),
            ("POST", "/clock", self.set_clock),
            ("GET", "/settings", lambda request: self.sb.settings.snapshot()),
            ("POST", "/settings", lambda request: self.sb.settings.update(_object(request))),
            ("GET", "/requests", self.requests),
            ("POST", "/oracle", self.oracle),
            ("GET", "/volunteers", lambda request: self.sb.volunteers.profiles()),
            ("POST", "/volunteers/run", self.run_volunteers),
            ("POST", "/classifications", self.classifications),
            ("POST", "/users", self.create_user),
            ("POST", "/seed", self.seed),
            ("POST", "/exports/install", self.install_export),
        ]
        for method, path, handler in routes:
            router.add(method, PREFIX + path, self._json(handler))

    @staticmethod
    def _json(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return plain_json(200, handler(request))
            except (SettingsError, ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, f"{type(exc).__name__}: {exc}") from None

        return run

    def state(self) -> dict:
        db = self.sb.db
        counts = {table: db.scalar(f"SELECT COUNT(*) FROM {table}") for table in COUNTED_TABLES}
        return {
            **counts,
            "subjects": db.scalar("SELECT COUNT(*) FROM subjects WHERE deleted_at IS NULL"),
            "subjects_deleted": db.scalar("SELECT COUNT(*) FROM subjects WHERE deleted_at IS NOT NULL"),
            "exports_pending": db.scalar("SELECT COUNT(*) FROM export_jobs WHERE done_at IS NULL"),
            **self.sb.jobs.counts(),
            "longest_lag_seconds": self.sb.counters.longest_lag(),
            "faults_injected": self.sb.faults.injected,
            "last_request_id": self.sb.request_log.last_id(),
            **self.clock(),
        }

    def clock(self) -> dict:
        now = self.sb.clock.now_epoch()
        return {"clock": iso_ms(now), "clock_offset_seconds": self.sb.clock.offset_seconds}

    def set_clock(self, request: Request) -> dict:
        body = _object(request)
        if "now" in body:
            self.sb.clock.set(parse_iso(body["now"]))
        elif "advance_seconds" in body:
            self.sb.clock.advance(float(body["advance_seconds"]))
        else:
            raise ValueError('give {"advance_seconds": N} or {"now": "<ISO time with offset>"}')
        return self.clock()

    def requests(self, request: Request) -> dict:
        since = int(request.query.get("since_id", "0"))
        limit = min(int(request.query.get("limit", str(REQUEST_PAGE_LIMIT))), REQUEST_PAGE_LIMIT)
        return {"requests": self.sb.request_log.since(since, limit)}

    def oracle(self, request: Request) -> dict:
        body = _object(request)
        if not isinstance(body.get("key"), str) or not isinstance(body.get("truth"), dict):
            raise ValueError('give {"key": "<metadata key>", "truth": {"<value>": "<answer label>", ...}}')
        return {"key": body["key"], "count": self.sb.volunteers.set_oracle(body["key"], body["truth"])}

    def run_volunteers(self, request: Request) -> dict:
        body = _object(request)
        workflow_id = body.get("workflow_id")
        made = self.sb.volunteers.run(int(body["classifications"]), seed=body.get("seed"),
                                      workflow_id=None if workflow_id is None else int(workflow_id))
        return {"classifications": made}

    def classifications(self, request: Request) -> dict:
        body = request.json()
        rows = body.get("classifications") if isinstance(body, dict) else body
        if not isinstance(rows, list):
            raise ValueError("give a list of {workflow_id, subject_id, answer, created_at[, user_login]}")
        return {"ids": [str(i) for i in self.sb.volunteers.backfill(rows)]}

    def create_user(self, request: Request) -> dict:
        body = _object(request)
        user_id = self.sb.auth.create_user(str(body["login"]), str(body["password"]))
        return {"id": str(user_id), "login": body["login"]}

    def seed(self, request: Request) -> dict:
        name = _object(request).get("name")
        if name not in SEEDS:
            raise ValueError(f"unknown seed {name!r}; known: {', '.join(SEEDS)}")
        return {"name": name, **{key: str(value) for key, value in SEEDS[name](self.sb).items()}}

    def install_export(self, request: Request) -> dict:
        """``{"resource": "project", "id": 1, "export_type": "classifications", "path": "/abs/file.csv.gz"}``:
        that file becomes the ready export (benchmarks serve big files without building them)."""
        body = _object(request)
        return self.sb.exports.install(str(body["resource"]), int(body["id"]), str(body["export_type"]),
                                       Path(str(body["path"])))

"""A log of every non-admin request, so tests can assert what the client actually did.

Each row keeps wall and sandbox time, method, path, query string, status, body size and a short
``detail`` a handler may add (the OAuth grant type, an export's fate, an injected fault).
"""

from __future__ import annotations

import time

from zooflow.sandbox.clock import SandboxClock
from zooflow.sandbox.db import Database
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import Request, Response


class RequestLog:
    def __init__(self, db: Database, clock: SandboxClock):
        self._db = db
        self._clock = clock

    def record(self, request: Request, response: Response) -> None:
        self._db.insert("request_log", {
            "wall_time": time.time(), "sandbox_time": self._clock.now_epoch(), "method": request.method,
            "path": request.path, "query": request.raw_query, "status": response.status,
            "bytes": response.length, "detail": request.detail,
        })

    def since(self, since_id: int, limit: int) -> list[dict]:
        rows = self._db.all("SELECT * FROM request_log WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [
            {"id": r["id"], "wall_time": iso_ms(r["wall_time"]), "sandbox_time": iso_ms(r["sandbox_time"]),
             "method": r["method"], "path": r["path"], "query": r["query"], "status": r["status"],
             "bytes": r["bytes"], "detail": r["detail"]}
            for r in rows
        ]

    def last_id(self) -> int:
        return self._db.scalar("SELECT COALESCE(MAX(id), 0) FROM request_log")

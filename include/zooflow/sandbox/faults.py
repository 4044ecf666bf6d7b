"""Fault injection: the failures zooflow's retries and resumes exist for, on demand.

All off by default. ``fault_rate`` answers a random share of ``/api``, ``/oauth`` and ``/blob``
requests with ``fault_status``; ``fail_next`` rules fail the next N requests matching a method and
path regex (any non-admin path); ``drop_download_after_bytes`` cuts export downloads short (for
``drop_download_count`` downloads, or all while set); ``latency_ms`` slows every request. Each
injected fault is counted, and the count is shown by ``GET /_sandbox/state``.
"""

from __future__ import annotations

import random
import re
import threading
import time

from zooflow.sandbox.db import Database
from zooflow.sandbox.settings import Settings
from zooflow.sandbox.web import ApiError, Request, Response

COUNT_KEY = "faults_injected"
RANDOM_FAULT_PREFIXES = ("/api/", "/oauth/", "/blob/")


class Faults:
    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._settings = settings
        self._lock = threading.Lock()
        self._random = random.Random()

    @property
    def injected(self) -> int:
        return self._db.meta_get(COUNT_KEY, 0)

    def _count(self) -> None:
        with self._db.write():
            self._db.meta_set(COUNT_KEY, self.injected + 1)

    def delay(self) -> None:
        if self._settings["latency_ms"]:
            time.sleep(self._settings["latency_ms"] / 1000)

    def inject(self, request: Request) -> Response | None:
        """The fault response for this request, or None to handle it normally."""
        status = self._take_rule(request)
        if status is None and request.path.startswith(RANDOM_FAULT_PREFIXES):
            rate = self._settings["fault_rate"]
            if rate and self._random.random() < rate:
                status = self._settings["fault_status"]
        if status is None:
            return None
        self._count()
        request.detail = "injected fault"
        return ApiError(status, f"Injected fault (zooflow sandbox): HTTP {status}").response()

    def _take_rule(self, request: Request) -> int | None:
        with self._lock:
            rules = self._settings["fail_next"]
            for index, rule in enumerate(rules):
                if rule["method"] in (None, request.method) and re.search(rule["path_regex"], request.path):
                    remaining = [dict(r) for r in rules]
                    remaining[index]["count"] -= 1
                    self._settings.update({"fail_next": [r for r in remaining if r["count"] > 0]})
                    return rule["status"] or self._settings["fault_status"]
        return None

    def download_limit(self) -> int | None:
        """Bytes the next export download may send before the connection is cut; None = all."""
        with self._lock:
            limit, left = self._settings["drop_download_after_bytes"], self._settings["drop_download_count"]
            if limit is None or left == 0:
                return None
            if left is not None:
                self._settings.update({"drop_download_count": left - 1})
        self._count()
        return limit

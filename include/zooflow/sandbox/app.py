"""The sandbox itself: wires state, route families and workers, and runs each request through them.

A request passes, in order: admin routes (untouched by faults and not logged), injected latency,
injected faults, the Panoptes routing rules (``/api`` needs the versioned Accept header, else 404;
POST and PUT need a JSON Content-Type, else 415; the bearer token names the user, and only
Doorkeeper-protected actions refuse one that is not current, see auth.py), the handler, and finally
the request log.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from typing import Any

from zooflow.sandbox.admin_api import PREFIX as ADMIN_PREFIX
from zooflow.sandbox.admin_api import AdminApi
from zooflow.sandbox.auth import Auth
from zooflow.sandbox.blobstore import BlobStore
from zooflow.sandbox.classification_api import ClassificationApi
from zooflow.sandbox.clock import SandboxClock
from zooflow.sandbox.counters import Counters
from zooflow.sandbox.db import Database
from zooflow.sandbox.exports import Exports
from zooflow.sandbox.faults import Faults
from zooflow.sandbox.jobs import JobQueue
from zooflow.sandbox.projects import Projects
from zooflow.sandbox.request_log import RequestLog
from zooflow.sandbox.retirement import Retirement
from zooflow.sandbox.settings import Settings
from zooflow.sandbox.statuses import Statuses
from zooflow.sandbox.subject_sets import SubjectSets
from zooflow.sandbox.subjects import Subjects
from zooflow.sandbox.users import Users
from zooflow.sandbox.volunteers import Volunteers
from zooflow.sandbox.web import ApiError, HttpError, Request, Response, Router
from zooflow.sandbox.workflows import Workflows

DATABASE_FILE = "sandbox.sqlite3"
API_ACCEPT = re.compile(r"application/vnd\.api\+json;\s*version=1")
JSON_CONTENT_TYPES = ("application/json", "application/vnd.api+json")
WRONG_CONTENT_TYPE = "Only requests with Content-Type: application/json or application/vnd.api+json are allowed"


class Sandbox:
    def __init__(self, data_dir: Path, settings: dict[str, Any] | None = None):
        self.data_dir = data_dir
        self.db = Database(data_dir / DATABASE_FILE)
        self.clock = SandboxClock(self.db)
        self.settings = Settings(self.db, settings)
        self.auth = Auth(self.db, self.settings, self.clock.now_epoch)
        self.blobs = BlobStore(data_dir / "blobs", self.db, self.clock, self.settings)
        self.jobs = JobQueue(self.db, self.clock)
        self.counters = Counters(self.db, self.settings, self.jobs)
        self.retirement = Retirement(self.db, self.settings, self.jobs, self.counters)
        self.faults = Faults(self.db, self.settings)
        self.request_log = RequestLog(self.db, self.clock)
        self.users = Users(self)
        self.projects = Projects(self)
        self.workflows = Workflows(self)
        self.subject_sets = SubjectSets(self)
        self.subjects = Subjects(self)
        self.statuses = Statuses(self)
        self.exports = Exports(self)
        self.volunteers = Volunteers(self)

        self.router = Router()
        self.auth.register(self.router)
        for part in (self.users, self.projects, self.workflows, self.subject_sets, self.subjects, self.statuses,
                     self.exports, ClassificationApi(self)):
            part.register(self.router)
        self.blobs.register(self.router, self.faults.download_limit)
        self.admin_router = Router()
        AdminApi(self).register(self.admin_router)

    def now(self) -> float:
        """Sandbox time, as epoch seconds: what every stored timestamp uses."""
        return self.clock.now_epoch()

    def start(self) -> None:
        self.jobs.worker.start()
        self.exports.worker.start()
        self.volunteers.worker.start()

    def stop(self) -> None:
        self.volunteers.worker.stop()
        self.exports.worker.stop()
        self.jobs.worker.stop()
        self.db.close()

    def handle(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PREFIX + "/"):
            return self._dispatch(self.admin_router, request)
        self.faults.delay()
        response = self.faults.inject(request) or self._dispatch(self.router, request)
        self.request_log.record(request, response)
        return response

    def _dispatch(self, router: Router, request: Request) -> Response:
        try:
            api = request.path.startswith("/api/")
            if api and not API_ACCEPT.search(request.headers.get("Accept", "")):
                raise ApiError(404, "Not Found")
            found = router.match(request.method, request.path)
            if found is None:
                raise ApiError(404, "Not Found")
            handler, request.params = found
            if api:
                content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if request.method in ("POST", "PUT") and content_type not in JSON_CONTENT_TYPES:
                    raise ApiError(415, WRONG_CONTENT_TYPE)
                request.user = self.auth.api_user(request)
            return handler(request)
        except HttpError as exc:
            return exc.response()
        except Exception:  # noqa: BLE001 - answer 500 like a server would, and keep serving
            traceback.print_exc(file=sys.stderr)
            return ApiError(500, "Internal Server Error").response()

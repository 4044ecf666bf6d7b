"""The sandbox clock: wall-clock UTC plus an offset that the admin API moves.

Everything Panoptes does on its own schedule (export readiness, the 24-hour export limit, signed
URL expiry, timestamps on records) reads this clock, so a test can jump a day ahead instead of
waiting one. OAuth token expiry deliberately does not: the client measures it on the wall clock.
The offset lives in the database so a restart keeps the same sandbox time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from zooflow.sandbox.db import Database
from zooflow.sandbox.timeutil import to_datetime, to_epoch

OFFSET_KEY = "clock_offset_seconds"


class SandboxClock:
    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()
        self._offset = float(db.meta_get(OFFSET_KEY, 0.0))

    @property
    def offset_seconds(self) -> float:
        return self._offset

    def now_epoch(self) -> float:
        return time.time() + self._offset

    def now(self) -> datetime:
        return to_datetime(self.now_epoch())

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._store(self._offset + seconds)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        with self._lock:
            self._store(to_epoch(moment) - time.time())
        return self.now()

    def _store(self, offset: float) -> None:
        self._db.meta_set(OFFSET_KEY, offset)
        self._offset = offset

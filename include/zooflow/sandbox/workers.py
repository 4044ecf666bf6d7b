"""A background thread that calls one function every tick until the sandbox stops.

The export builder and the simulated volunteers both need exactly this: their own thread and
database connection, a tick small enough that tests never wait long, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Callable

from zooflow.sandbox.db import Database


class PeriodicWorker:
    def __init__(self, name: str, interval: float, tick: Callable[[], None], db: Database):
        self.name = name
        self._interval = interval
        self._tick = tick
        self._db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    self._tick()
                except Exception:  # noqa: BLE001 - one bad tick must not end the worker
                    print(f"{self.name}: tick failed", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
        finally:
            self._db.close_thread_connection()

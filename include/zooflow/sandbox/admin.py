"""``SandboxAdmin``: a Python client for the sandbox's ``/_sandbox`` control API.

Used by tests, the demo and benchmarks to move the clock, change settings, read the request log,
register ground truth, make volunteers classify and let the background jobs catch up, without
knowing the URL layout.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import time

import requests

from zooflow.errors import ZooflowError
from zooflow.sandbox.timeutil import parse_iso

TIMEOUT_SECONDS = 120
MOVING_STATE = frozenset({"last_request_id", "clock", "clock_offset_seconds", "jobs_pending", "jobs_due"})
SETTLE_POLL_SECONDS = 0.05


class SandboxAdminError(ZooflowError):
    """The sandbox refused an admin call; the message is the sandbox's reason."""


class SandboxAdmin:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")

    def _call(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        # A fresh connection per call: pooled keep-alive connections would go stale across sandbox restarts.
        response = requests.request(method, f"{self.endpoint}/_sandbox{path}", json=json, params=params,
                                    timeout=TIMEOUT_SECONDS, headers={"Connection": "close"})
        if response.status_code != 200:
            try:
                message = "; ".join(e.get("message", "") for e in response.json()["errors"])
            except (ValueError, KeyError, TypeError):
                message = response.text[:500]
            raise SandboxAdminError(f"sandbox admin {method} {path} failed ({response.status_code}): {message}")
        return response.json()

    def state(self) -> dict:
        return self._call("GET", "/state")

    def stable_state(self) -> dict:
        """``state()`` without what moves on its own (the clock, the request log, background jobs), so a
        test can check that an action changed nothing."""
        return {k: v for k, v in self.state().items() if k not in MOVING_STATE}

    def settle(self, timeout: float = 30) -> dict:
        """Let every background job the sandbox had waiting run, as minutes of real Panoptes time would.

        Moves the sandbox clock forward by the longest configured lag + 1 s (so every job enqueued
        before the call, and every follow-up it starts, is due), then polls until no job is due, and
        returns the state of that poll. Jobs enqueued meanwhile by new activity (volunteers at
        ``volunteer_rate``) are due later and do not hold it up. Raises SandboxAdminError when jobs
        are still due after ``timeout`` wall-clock seconds.
        """
        self.advance_clock(self.state()["longest_lag_seconds"] + 1)
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state["jobs_due"] == 0:
                return state
            if time.monotonic() > deadline:
                raise SandboxAdminError(f"sandbox jobs still due after {timeout}s: {state['jobs_due']} "
                                        f"of {state['jobs_pending']} waiting")
            time.sleep(SETTLE_POLL_SECONDS)

    def now(self) -> datetime:
        return parse_iso(self._call("GET", "/clock")["clock"])

    def advance_clock(self, seconds: float = 0, hours: float = 0) -> datetime:
        return parse_iso(self._call("POST", "/clock", json={"advance_seconds": seconds + hours * 3600})["clock"])

    def set_clock(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("set_clock needs a timezone-aware datetime (UTC)")
        return parse_iso(self._call("POST", "/clock", json={"now": moment.isoformat()})["clock"])

    def settings(self) -> dict:
        return self._call("GET", "/settings")

    def configure(self, **settings: Any) -> dict:
        return self._call("POST", "/settings", json=settings)

    def requests(self, since_id: int = 0) -> list[dict]:
        return self._call("GET", "/requests", params={"since_id": since_id})["requests"]

    def last_request_id(self) -> int:
        return self.state()["last_request_id"]

    def set_oracle(self, key: str, mapping: dict) -> int:
        truth = {str(value): label for value, label in mapping.items()}
        return self._call("POST", "/oracle", json={"key": key, "truth": truth})["count"]

    def run_volunteers(self, n: int, seed: int | None = None, workflow_id: int | str | None = None) -> int:
        body = {"classifications": n, "seed": seed, "workflow_id": workflow_id}
        return self._call("POST", "/volunteers/run", json=body)["classifications"]

    def volunteers(self) -> dict:
        """Each simulated account's skill (``login``, ``id``, ``profile``, ``error_rate``, ``favourite``),
        the pooled anonymous volunteers' (``anonymous``) and the ``gold_standard_fraction``."""
        return self._call("GET", "/volunteers")

    def add_classifications(self, rows: list[dict]) -> list[str]:
        """Rows of ``workflow_id, subject_id, answer, created_at`` (aware datetime or ISO) [, ``user_login``]."""
        body = [{**row, "created_at": row["created_at"].isoformat() if isinstance(row["created_at"], datetime)
                 else row["created_at"]} for row in rows]
        return self._call("POST", "/classifications", json=body)["ids"]

    def create_user(self, login: str, password: str) -> dict:
        return self._call("POST", "/users", json={"login": login, "password": password})

    def seed(self, name: str) -> dict:
        return self._call("POST", "/seed", json={"name": name})

    def install_export(self, resource: str, resource_id: int, export_type: str, path: str | Path) -> dict:
        """Serve an existing ``.csv.gz`` as the ready ``export_type`` export of a resource (for benchmarks)."""
        return self._call("POST", "/exports/install", json={
            "resource": resource, "id": resource_id, "export_type": export_type, "path": str(Path(path).resolve()),
        })

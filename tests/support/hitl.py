"""Answering a dag.test() run's Human-in-the-loop request through Airflow's public REST API, in-process:
the requests and answers a reviewer's browser sends, without starting an api-server."""

from __future__ import annotations

import logging
import threading
from typing import Any

WAITING = "Waiting for Human-in-the-loop input"  # dag.test() logs it once a parked task is settled


def hitl_client():
    """Airflow's public REST API (core app) in this process, as an admin with a JWT of its own."""
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    client = TestClient(create_app(apps="core"), base_url="http://testserver/api/v2")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="reviewer", role="ADMIN"))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


class _Signal(logging.Handler):
    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.INFO)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(WAITING):
            self.event.set()


class Answer:
    """Within ``with``, answers the one approval ``dag_id`` asks for with ``choice``, as a reviewer would.

    It answers only once dag.test() says it is waiting: answered earlier (the request written, the task
    not yet parked, or parked but dag.test() not yet done recording it), dag.test() overwrites the
    resume with ``awaiting_input`` and waits forever. ``detail`` is the request it answered (None if none
    was asked), ``response`` the API's answer."""

    def __init__(self, client, dag_id: str, choice: str, timeout: float = 120) -> None:
        self.client, self.dag_id, self.choice, self.timeout = client, dag_id, choice, timeout
        self.detail: dict[str, Any] | None = None
        self.response: dict[str, Any] | None = None
        self._waiting, self._done = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self._logger = logging.getLogger("airflow.sdk.definitions.dag")
        self._handler = _Signal(self._waiting)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Answer:
        self._level = self._logger.level
        if not self._logger.isEnabledFor(logging.INFO):
            self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join(10)
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)
        if self._error is not None and exc[0] is None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._waiting.wait(0.1):
                if self._done.is_set():
                    return  # the run asked nobody
            pending = self.client.get(f"/dags/{self.dag_id}/dagRuns/~/hitlDetails",
                                      params={"response_received": False, "state": "awaiting_input"})
            pending.raise_for_status()
            (self.detail,) = pending.json()["hitl_details"]
            ti = self.detail["task_instance"]
            answer = self.client.patch(
                f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/{ti['map_index']}"
                "/hitlDetails", json={"chosen_options": [self.choice], "params_input": {}})
            answer.raise_for_status()
            self.response = answer.json()
        except BaseException as exc:  # raised in the test's thread by __exit__
            self._error = exc

"""Airflow's REST API v2 as a user or a script calls it: log in, trigger, watch runs, read logs.

``zooflow up`` waits for the DAGs and runs the demo loop through it, and the tests drive the Celery
deployment through it, so both go through one client that logs in with SimpleAuthManager's
``/auth/token``, turns every error answer into a :class:`AirflowApiError` naming the call, and never
shows its token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from zooflow.errors import ZooflowError

FINISHED = ("success", "failed")


class AirflowApiError(ZooflowError):
    """An error answer of the REST API; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RunNotFinished(ZooflowError):
    """A DAG run still going at the timeout; ``state`` is its state then."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class DagSummary:
    """What Airflow has parsed, so a user sees import errors or paused DAGs before opening the UI."""

    dag_ids: list[str]
    paused: list[str]
    import_errors: list[str]
    unparsed: list[str]


class AirflowApi:
    """Airflow's REST API v2 with a JWT from SimpleAuthManager's ``/auth/token``."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        answer = requests.post(f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30)
        if answer.status_code != 201:
            raise AirflowApiError(f"Airflow refused a token for {username!r}: HTTP {answer.status_code}",
                                  answer.status_code)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def __repr__(self) -> str:  # never the token
        return f"AirflowApi({self.url})"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._session.request(method, f"{self.url}/api/v2/{path.lstrip('/')}", timeout=30, **kwargs)
        if answer.status_code >= 400:
            raise AirflowApiError(f"{method} /api/v2/{path} answered {answer.status_code}: {answer.text[:500]}",
                                  answer.status_code)
        return answer.json() if answer.content else None

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.call("GET", f"dags/{dag_id}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it; its import error if it cannot be parsed."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self._session.get(f"{self.url}/api/v2/dags/{dag_id}", timeout=30)
            if answer.status_code == 200:
                return answer.json()
            if time.monotonic() > deadline:
                errors = self.call("GET", "importErrors").get("import_errors", [])
                raise ZooflowError(f"DAG {dag_id} was not parsed within {timeout:.0f} s; import errors: {errors}")
            time.sleep(1)

    def wait_for_dag_files(self, dags_folder: Path, timeout: float) -> DagSummary:
        """What Airflow parsed, once every DAG file is a DAG or an import error (or at the timeout).

        A file still unparsed at the timeout is reported in the summary, not raised: Airflow itself is up.
        """
        files = {path.name for path in dags_folder.glob("*.py") if not path.name.startswith("_")}
        deadline = time.monotonic() + timeout
        while True:
            dags = self.call("GET", "dags", params={"limit": 1000})["dags"]
            errors = self.call("GET", "importErrors", params={"limit": 1000})["import_errors"]
            parsed = {Path(d["fileloc"]).name for d in dags} | {Path(e["filename"]).name for e in errors}
            waiting = sorted(files - parsed)
            if not waiting or time.monotonic() > deadline:
                return DagSummary(dag_ids=sorted(d["dag_id"] for d in dags),
                                  paused=sorted(d["dag_id"] for d in dags if d.get("is_paused")),
                                  import_errors=sorted(Path(e["filename"]).name for e in errors), unparsed=waiting)
            time.sleep(2)

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, conf: Mapping[str, Any], *, logical_date: str | None = None,
                note: str | None = None) -> str:
        """A manual run (by default now, with no logical date, as the UI's trigger form); returns its run id."""
        body = {"logical_date": logical_date, "conf": dict(conf)} | ({"note": note} if note else {})
        return self.call("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                         params={"limit": 100})["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The whole log of one try, as text (one line per event)."""
        answer = self.call("GET", f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}",
                           params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = answer.get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(line if isinstance(line, str) else " ".join(f"{k}={v}" for k, v in line.items()) for line in content)

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 300, poll: float = 1.0,
                     watch: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
        """The run once finished; ``watch`` sees its task instances at every poll (to catch passing states).

        Raises :class:`RunNotFinished` when it is still going after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if watch is not None:
                watch(self.task_instances(dag_id, run_id))
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise RunNotFinished(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s: {states}",
                                     run["state"])
            time.sleep(poll)

    def wait_for_new_run(self, dag_id: str, run_type: str, earlier: set[str], timeout: float) -> str | None:
        """The id of a run of ``run_type`` that is none of ``earlier``, once the scheduler has created it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [r for r in self.dag_runs(dag_id) if r.get("run_type") == run_type and r["dag_run_id"] not in earlier]
            if new:
                return new[0]["dag_run_id"]
            time.sleep(2)
        return None

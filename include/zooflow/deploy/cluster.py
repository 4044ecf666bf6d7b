"""The Celery deployment as native processes: what ``make test-distributed`` runs instead of docker-compose.

The api-server, scheduler, dag-processor, triggerer and two Celery workers are started as separate
processes, each in its own process group, on a private Postgres and Redis
(:mod:`zooflow.deploy.services`). Their settings are the deployment's own
(:func:`zooflow.deploy.environment.deployment_env`, shared with docker-compose.yaml) plus what only a
run on one machine needs: free ports, per-run secrets, and a distinct host name per worker so the
task instances say which worker ran them. Starting, health checks and stopping are
:class:`zooflow.local_airflow.LocalAirflow`'s; this module adds the workers and the REST API client.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from celery import Celery
from cryptography.fernet import Fernet

from zooflow.deploy.environment import Endpoints, deployment_env
from zooflow.deploy.hostname import CALLABLE as HOSTNAME_CALLABLE
from zooflow.deploy.hostname import HOSTNAME_ENV
from zooflow.deploy.services import PrivatePostgres, PrivateRedis
from zooflow.errors import ZooflowError
from zooflow.local_airflow import SERVICES, LocalAirflow, Service, free_port

ADMIN_USER = "zooflow-admin"
WORKERS = ("worker-1", "worker-2")
FINISHED = ("success", "failed")


class CeleryCluster(LocalAirflow):
    """Airflow on CeleryExecutor with ``workers`` Celery workers, on the given private Postgres and Redis.

    ``local_env`` is an :func:`zooflow.airflow_env.airflow_env` environment (AIRFLOW_HOME, dags folder,
    data root, the zooniverse connection); the deployment's settings replace its SQLite database.
    The JWT secret, the api secret key and the Fernet key are generated for each run and reach every
    component through its environment, never through a file: Airflow 3's components only trust
    each other's tokens when they share the JWT secret.
    """

    def __init__(self, local_env: Mapping[str, str], *, postgres: PrivatePostgres, redis: PrivateRedis,
                 workers: Sequence[str] = WORKERS, port: int | None = None) -> None:
        port = port or free_port()
        endpoints = Endpoints(postgres=postgres.address, redis=redis.address, api_server=f"127.0.0.1:{port}",
                              db_user=postgres.user, db_password=postgres.password, db_name=postgres.database)
        home = Path(local_env["AIRFLOW_HOME"])
        self._admin_password = secrets.token_urlsafe(18)
        self._passwords_file = home / "simple_auth_manager_passwords.json"
        env = dict(local_env) | deployment_env(endpoints) | {
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            # SimpleAuthManager knows users from this setting and passwords from this file only.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        }
        self._secrets = [env[k] for k in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
                                          "AIRFLOW__CORE__FERNET_KEY")] + [self._admin_password, postgres.password]
        self.workers = tuple(workers)
        # Task logs are written to AIRFLOW_HOME/logs, one disk for every process here, where the
        # api-server reads them; so the workers serve no logs (and need no log server ports).
        worker_services = [
            Service(f"celery-{name}", ("celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"),
                    env={HOSTNAME_ENV: name})
            for name in self.workers
        ]
        super().__init__(env, services=(*SERVICES, *worker_services), port=port, executor=None)

    def secret_values(self) -> list[str]:
        """The run's generated secrets, so a test can check that no log holds any of them."""
        return list(self._secrets)

    def start(self, timeout: float = 240) -> CeleryCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({ADMIN_USER: self._admin_password}, handle)
        super().start(timeout)
        return self

    def ready(self) -> bool:
        """Healthy components, and every worker answering a Celery ping through the broker."""
        if not super().ready():
            return False
        answering = self.workers_answering()
        return all(any(node.startswith(f"{name}@") for node in answering) for name in self.workers)

    def workers_answering(self) -> set[str]:
        """Celery node names (``worker-1@host``) of the workers that answer a ping within a second."""
        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        try:
            return {node for reply in app.control.ping(timeout=1.0) or [] for node in reply}
        finally:
            app.close()

    def api(self) -> AirflowApi:
        """A REST API v2 client logged in as the run's admin."""
        return AirflowApi(self.url, ADMIN_USER, self._admin_password)

    def __enter__(self) -> CeleryCluster:
        return self.start()


class AirflowApi:
    """Airflow's REST API v2 with a JWT from SimpleAuthManager's ``/auth/token``, as a user or a script would call it."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        answer = requests.post(f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30)
        if answer.status_code != 201:
            raise ZooflowError(f"Airflow refused a token for {username!r}: HTTP {answer.status_code}")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def __repr__(self) -> str:  # never the token
        return f"AirflowApi({self.url})"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._session.request(method, f"{self.url}/api/v2/{path.lstrip('/')}", timeout=30, **kwargs)
        if answer.status_code >= 400:
            raise ZooflowError(f"{method} /api/v2/{path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json() if answer.content else None

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

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """A manual run now (no logical date, as the UI's trigger form); returns its run id."""
        return self.call("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf)})["dag_run_id"]

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
        """The run once finished; ``watch`` sees its task instances at every poll (to catch passing states)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if watch is not None:
                watch(self.task_instances(dag_id, run_id))
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise ZooflowError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s: {states}")
            time.sleep(poll)

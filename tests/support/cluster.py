"""The Celery deployment as native processes: what ``make test-distributed`` runs instead of docker-compose.

The api-server, scheduler, dag-processor, triggerer and two Celery workers are started as separate
processes, each in its own process group, on a private Postgres and Redis
(:mod:`support.services`). Their settings are the deployment's own
(:func:`zooflow.deploy.environment.deployment_env`, shared with docker-compose.yaml) plus what only a
run on one machine needs: free ports, per-run secrets, and a distinct host name per worker so the
task instances say which worker ran them. Starting, health checks and stopping are
:class:`zooflow.dev.airflow.LocalAirflow`'s, the REST client is :class:`zooflow.dev.api.AirflowApi`;
this module adds the workers, the generated secrets and the admin login.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from celery import Celery
from cryptography.fernet import Fernet

from support.services import PrivatePostgres, PrivateRedis
from zooflow.deploy.environment import Endpoints, deployment_env
from zooflow.deploy.hostname import CALLABLE as HOSTNAME_CALLABLE
from zooflow.deploy.hostname import HOSTNAME_ENV
from zooflow.dev.airflow import SERVICES, LocalAirflow, Service
from zooflow.dev.api import AirflowApi
from zooflow.dev.processes import LOOPBACK, free_port

ADMIN_USER = "zooflow-admin"
WORKERS = ("worker-1", "worker-2")


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
        endpoints = Endpoints(postgres=postgres.address, redis=redis.address, api_server=f"{LOOPBACK}:{port}",
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

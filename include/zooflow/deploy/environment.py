"""The Celery deployment's environment: one file of shared settings plus the endpoints between services.

docker-compose.yaml and the native distributed run (``make test-distributed``) both start Airflow's
api-server, scheduler, dag-processor, triggerer and Celery workers. They differ only in where Postgres,
Redis and the api-server are found, so that part is a function of those addresses and everything else
comes from ``celery.env``; a test checks the compose file against this module, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

# The Airflow components of a Celery deployment, by their `airflow <command>` names.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")

ENV_FILE = "celery.env"


def shared_env() -> dict[str, str]:
    """The settings of ``celery.env``, in file order."""
    text = resources.files(__package__).joinpath(ENV_FILE).read_text(encoding="utf-8")
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{ENV_FILE} line {number}: expected KEY=value, got {line!r}")
        env[key.strip()] = value.strip()
    return env


@dataclass(frozen=True)
class Endpoints:
    """Where each service is reached, as ``host:port``, and the metadata database's credentials."""

    postgres: str
    redis: str
    api_server: str
    db_user: str = "airflow"
    db_password: str = "airflow"
    db_name: str = "airflow"


def endpoint_env(endpoints: Endpoints) -> dict[str, str]:
    """The settings that name other services: the only ones compose and the native run set differently."""
    database = f"{endpoints.db_user}:{endpoints.db_password}@{endpoints.postgres}/{endpoints.db_name}"
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
        # The driver is named: SQLAlchemy 2.1 takes a bare postgresql:// to mean psycopg 3, which is not installed.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{endpoints.redis}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{endpoints.api_server}/execution/",
    }


def deployment_env(endpoints: Endpoints) -> dict[str, str]:
    """Everything a component needs from the deployment (not the secrets, not the data root)."""
    return shared_env() | endpoint_env(endpoints)

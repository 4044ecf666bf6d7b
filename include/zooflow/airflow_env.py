"""The environment an Airflow process needs to run zooflow's DAGs, described once.

The demo, the tests and the deployments build their Airflow processes from :func:`airflow_env`,
so they cannot drift apart. Nothing here imports Airflow: it only writes environment variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from zooflow.paths import DATA_ROOT_ENV
from zooflow.panoptes import PanoptesConfig

DEFAULT_CONN_ID = "zooniverse_default"
SQLITE_LOCK_SECONDS = 60


def connection_env(config: PanoptesConfig, conn_id: str = DEFAULT_CONN_ID) -> dict[str, str]:
    """An ``AIRFLOW_CONN_<ID>`` variable holding a zooniverse connection, in Airflow's JSON form."""
    extra = {key: value for key, value in (("client_id", config.client_id), ("client_secret", config.client_secret)) if value}
    payload = {"conn_type": "zooniverse", "host": config.endpoint, "login": config.username, "password": config.password}
    if extra:
        payload["extra"] = extra
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({k: v for k, v in payload.items() if v is not None})}


def airflow_env(
    *,
    airflow_home: Path,
    dags_folder: Path,
    data_root: Path,
    panoptes: PanoptesConfig | None = None,
    plugins_folder: Path | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """A full environment for an Airflow command on a local SQLite metadata database.

    ``plugins_folder`` is zooflow's ``plugins/`` (the Zooniverse UI page) when the UI is wanted;
    without it Airflow looks in ``$AIRFLOW_HOME/plugins``, where the Docker image puts it.
    """
    env = dict(base)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "UTC",
            # SQLite lets one writer at a time; a CLI command (`backfill create`) writing while the
            # scheduler and dag-processor write waits for the lock up to this many seconds instead
            # of Python's 5 s default, which a busy machine can exceed ("database is locked").
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}?timeout={SQLITE_LOCK_SECONDS}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            DATA_ROOT_ENV: str(data_root),
        }
    )
    # zooflow's waits defer to the triggerer unless the caller's environment says otherwise
    env.setdefault("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    if plugins_folder is not None:
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins_folder)
    if panoptes is not None:
        env.update(connection_env(panoptes))
    env.update(extra or {})
    return env

"""How every ``zooflow`` command finds Panoptes: ``--conn-id`` or panoptes-client's variables.

``--conn-id`` names an Airflow connection, looked up the way Airflow does (``AIRFLOW_CONN_<ID>``,
a secrets backend, or the metadata database), so the CLI and the DAGs share one set of credentials.
"""

from __future__ import annotations

import argparse

from zooflow.errors import ConfigurationError
from zooflow.panoptes import PanoptesConfig


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conn-id",
        help="Airflow connection of type zooniverse (also read from AIRFLOW_CONN_<ID>); "
        "without it, PANOPTES_ENDPOINT, PANOPTES_USERNAME and PANOPTES_PASSWORD are used",
    )


def config_from_args(args: argparse.Namespace) -> PanoptesConfig:
    if not getattr(args, "conn_id", None):
        return PanoptesConfig.from_env()
    try:
        from zooflow.airflow.hooks.zooniverse import PanoptesHook
    except ImportError:
        raise ConfigurationError(
            "--conn-id needs Apache Airflow installed; without Airflow set PANOPTES_ENDPOINT, "
            "PANOPTES_USERNAME and PANOPTES_PASSWORD instead"
        ) from None
    try:
        return PanoptesHook(args.conn_id).get_config()
    except Exception as exc:  # Airflow raises its own NotFound type; keep the CLI free of it
        if type(exc).__name__ != "AirflowNotFoundException":
            raise
        env_name = "AIRFLOW_CONN_" + args.conn_id.upper()
        raise ConfigurationError(
            f"Airflow connection {args.conn_id!r} is not defined; create it in the UI "
            f"(type Zooniverse) or set {env_name}"
        ) from None

"""How every ``zooflow`` command finds Panoptes, and what it says when Panoptes cannot be reached.

In order: ``--conn-id`` names an Airflow connection, looked up the way Airflow does
(``AIRFLOW_CONN_<ID>``, a secrets backend, or the metadata database), so the CLI and the DAGs share one
set of credentials; else panoptes-client's PANOPTES_* variables; else the sandbox of a running
``zooflow up`` (its env file, see :mod:`zooflow.cli_settings`), so the CLI works right after ``make up``;
else www.zooniverse.org. A connection ``up`` defined (``zooniverse_default``) is found through its
env file too. Each source says what to change when its address does not answer (:func:`unreachable`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zooflow.errors import ConfigurationError

if TYPE_CHECKING:  # the command line's parsers use this module; panoptes_client is loaded only to connect
    from zooflow.panoptes import PanoptesConfig


@dataclass(frozen=True)
class Source:
    """Where the CLI's Panoptes settings came from, and what a user sets to change them."""

    what: str
    fix: str
    announce: bool = False  # said on stderr, since the user did not choose it on this command line


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conn-id",
        help="Airflow connection of type zooniverse (also read from AIRFLOW_CONN_<ID>); "
        "without it, PANOPTES_ENDPOINT, PANOPTES_USERNAME and PANOPTES_PASSWORD are used, "
        "else the sandbox of a running `zooflow up`",
    )


def add_changing_command(commands: argparse._SubParsersAction, name: str, *, help: str, description: str,
                         applies: str, func) -> argparse.ArgumentParser:
    """A command that changes Panoptes: a dry run that says what would change unless ``--apply`` (what
    ``applies`` does), ``--json`` for the report, and the connection arguments; the caller adds its own."""
    parser = commands.add_parser(name, help=f"{help} (dry run unless --apply)",
                                 description=f"{description} Dry run unless --apply.")
    parser.add_argument("--apply", action="store_true", help=f"{applies} (default: only say what would change)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_connection_args(parser)
    parser.set_defaults(func=func)
    return parser


def config_from_args(args: argparse.Namespace) -> PanoptesConfig:
    config, source = settings_from_args(args)
    if source.announce:
        print(f"zooflow: using {source.what}", file=sys.stderr)
    return config


def settings_from_args(args: argparse.Namespace) -> tuple[PanoptesConfig, Source]:
    from zooflow.cli_settings import running_up_settings
    from zooflow.panoptes import PanoptesConfig

    conn_id = getattr(args, "conn_id", None)
    running = running_up_settings()
    if conn_id:
        variable = "AIRFLOW_CONN_" + conn_id.upper()
        source = Source(f"Airflow connection {conn_id!r}",
                        f"fix the connection's host (Admin > Connections in the UI, or {variable})")
        if variable not in os.environ and running and variable in running[1]:
            return _from_connection(running[1][variable]), Source(
                f"the running `zooflow up`'s connection {conn_id!r} ({running[0]})",
                "start it again with `make up`, or pass another --conn-id", announce=True)
        return _from_airflow(conn_id), source
    if os.environ.get("PANOPTES_ENDPOINT"):
        return PanoptesConfig.from_env(), Source("PANOPTES_ENDPOINT",
                                                 "set PANOPTES_ENDPOINT to the API of a running Panoptes, or pass --conn-id")
    if running:
        return PanoptesConfig.from_env(running[1]), Source(
            f"the running `zooflow up`'s sandbox ({running[0]})",
            "start it again with `make up`, or set PANOPTES_ENDPOINT or --conn-id to use another Panoptes", announce=True)
    return PanoptesConfig.from_env(), Source(
        "the default endpoint (no --conn-id, no PANOPTES_ENDPOINT, no running `zooflow up`)",
        "set PANOPTES_ENDPOINT (with PANOPTES_USERNAME and PANOPTES_PASSWORD), pass --conn-id, "
        "or run `make up` for a local sandbox")


def unreachable(endpoint: str, args: argparse.Namespace, reason: str) -> str:
    """One line for a Panoptes that does not answer: the address tried, where it came from, what to set."""
    try:
        _, source = settings_from_args(args)
    except ConfigurationError:
        source = Source("the command's settings", "set PANOPTES_ENDPOINT or pass --conn-id")
    return f"cannot reach Panoptes at {endpoint} ({reason}); the address came from {source.what}: {source.fix}"


def _from_connection(uri_json: str) -> PanoptesConfig:
    from zooflow.panoptes import PanoptesConfig

    fields = json.loads(uri_json)
    return PanoptesConfig.from_connection(host=fields.get("host"), port=fields.get("port"), login=fields.get("login"),
                                          password=fields.get("password"), extra=fields.get("extra"))


def _from_airflow(conn_id: str) -> PanoptesConfig:
    try:
        from zooflow.airflow.hooks.zooniverse import PanoptesHook
    except ImportError:
        raise ConfigurationError(
            "--conn-id needs Apache Airflow installed; without Airflow set PANOPTES_ENDPOINT, "
            "PANOPTES_USERNAME and PANOPTES_PASSWORD instead"
        ) from None
    try:
        return PanoptesHook(conn_id).get_config()
    except Exception as exc:  # Airflow raises its own NotFound type; keep the CLI free of it
        if type(exc).__name__ != "AirflowNotFoundException":
            raise
        env_name = "AIRFLOW_CONN_" + conn_id.upper()
        raise ConfigurationError(
            f"Airflow connection {conn_id!r} is not defined; create it in the UI "
            f"(type Zooniverse) or set {env_name}, or start `make up`, which defines zooniverse_default"
        ) from None

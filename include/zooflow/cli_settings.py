"""The command line's Panoptes settings for the sandbox that ``zooflow up`` started.

``make up`` configures Airflow's ``zooniverse_default`` connection in the environment of Airflow's own
processes, which a shell never sees, so right after it ``zooflow check`` used to talk to
www.zooniverse.org. ``up`` therefore also writes the same settings to ``<state dir>/env`` (mode 0600:
it holds the demo user's password) as shell ``export`` lines, and the CLI reads that file while the
instance runs (its ``up.json`` exists). A user can also ``source`` it to give other tools the same settings.

PANOPTES_ENDPOINT and ``--conn-id`` given by the user still come first; this is the fallback before
panoptes-client's default endpoint.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from zooflow.airflow_env import connection_env
from zooflow.files import PRIVATE, atomic_write_bytes
from zooflow.panoptes import PanoptesConfig
from zooflow.dev.instance import Layout

ENV_FILE = "env"


def env_file(state_dir: Path) -> Path:
    return state_dir / ENV_FILE


def write_env_file(state_dir: Path, config: PanoptesConfig) -> Path:
    """PANOPTES_* and ``AIRFLOW_CONN_ZOONIVERSE_DEFAULT`` for ``config`` as ``export`` lines, readable by the owner only."""
    values = {"PANOPTES_ENDPOINT": config.endpoint, "PANOPTES_USERNAME": config.username,
              "PANOPTES_PASSWORD": config.password, **connection_env(config)}
    text = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items() if value)
    path = atomic_write_bytes(env_file(state_dir), text.encode())
    path.chmod(PRIVATE)  # mkstemp already made it 0600; said here so that no later change loosens it
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file this module wrote ({} when it is missing)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            values[name] = value
    return values


def running_up_settings() -> tuple[Path, dict[str, str]] | None:
    """(env file, its variables) of the ``zooflow up`` instance of this directory (or $ZOOFLOW_UP_DIR),
    or None when no instance is running there."""
    layout = Layout.resolve(None)
    if not layout.state_file.is_file():
        return None
    path = env_file(layout.root)
    values = read_env_file(path)
    return (path, values) if values else None

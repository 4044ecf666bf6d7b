"""``zooflow check``: the CLI reaches Panoptes through --conn-id, PANOPTES_* variables or a running
``zooflow up``, and a Panoptes that does not answer is one line naming the address and what to set."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from zooflow.airflow_env import connection_env
from zooflow.cli_settings import write_env_file
from zooflow.panoptes import PanoptesConfig
from zooflow.sandbox import seed


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=120)


def clean_env(up_dir: Path | None = None) -> dict[str, str]:
    """The caller's environment without Panoptes settings, and with no `zooflow up` to find unless ``up_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_", "ZOOFLOW_UP_DIR"))}
    return env | {"ZOOFLOW_UP_DIR": str(up_dir or Path("/nonexistent/zooflow-up"))}


def refused_endpoint() -> str:
    """An address where nothing listens: a port the kernel just handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def fake_up(folder: Path, config: PanoptesConfig) -> Path:
    """A state dir as a running `zooflow up` leaves it, for what the CLI reads: up.json and the env file."""
    (folder / "up.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "up.json").write_text("{}")
    write_env_file(folder, config)
    return folder


def test_check_with_panoptes_variables(demo_sandbox) -> None:
    env = clean_env() | {
        "PANOPTES_ENDPOINT": demo_sandbox.endpoint,
        "PANOPTES_USERNAME": seed.DEMO_USER,
        "PANOPTES_PASSWORD": seed.DEMO_PASSWORD,
    }
    result = zooflow("check", seed.DEMO_PROJECT_SLUG, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Project {seed.DEMO_PROJECT_SLUG} (id ")
    assert f"{seed.DEMO_WORKFLOW_NAME!r}" in result.stdout


def test_check_with_conn_id_from_environment(demo_config) -> None:
    env = clean_env() | {k.replace("ZOONIVERSE_DEFAULT", "MY_ZOO"): v for k, v in connection_env(demo_config).items()}
    result = zooflow("check", seed.DEMO_PROJECT_SLUG, "--conn-id", "my_zoo", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["project"]["slug"] == seed.DEMO_PROJECT_SLUG
    assert {"subjects_count", "retired_set_member_subjects_count"} <= set(report["workflows"][0])


def test_unknown_conn_id_is_one_clear_line(demo_sandbox) -> None:
    result = zooflow("check", seed.DEMO_PROJECT_SLUG, "--conn-id", "nope", env=clean_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "zooflow: error: Airflow connection 'nope' is not defined; create it in the UI (type Zooniverse) "
        "or set AIRFLOW_CONN_NOPE, or start `make up`, which defines zooniverse_default"
    )


def test_unknown_project_is_one_clear_line(demo_config) -> None:
    env = clean_env() | {
        "PANOPTES_ENDPOINT": demo_config.endpoint,
        "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password,
    }
    result = zooflow("check", "nobody/nothing", env=env)
    assert result.returncode == 2
    assert "project 'nobody/nothing' was not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_running_up_is_found_without_settings(demo_config, tmp_path) -> None:
    """Right after `make up`: no PANOPTES_* and no AIRFLOW_CONN_*, yet check reaches up's sandbox, and so
    does --conn-id zooniverse_default, which up defined for Airflow."""
    up = fake_up(tmp_path / "up", demo_config)
    env_file = up / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600, "the env file holds the demo password"
    for extra in ([], ["--conn-id", "zooniverse_default"]):
        result = zooflow("check", seed.DEMO_PROJECT_SLUG, *extra, env=clean_env(up))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Project {seed.DEMO_PROJECT_SLUG} (id ")
        assert f"zooflow: using the running `zooflow up`'s" in result.stderr and str(env_file) in result.stderr
    (up / "up.json").unlink()  # `zooflow down` removes it: the sandbox is no longer there to use
    stopped = zooflow("check", seed.DEMO_PROJECT_SLUG, "--conn-id", "zooniverse_default", env=clean_env(up))
    assert stopped.returncode == 2 and "'zooniverse_default' is not defined" in stopped.stderr


@pytest.mark.parametrize("how", ["PANOPTES_ENDPOINT", "with a login", "--conn-id", "zooflow up"])
def test_a_refused_connection_is_one_line_naming_the_address_and_the_fix(how, tmp_path) -> None:
    endpoint = refused_endpoint()
    login = {"PANOPTES_USERNAME": "someone", "PANOPTES_PASSWORD": "secret-word"}
    env, extra, fix = {
        "PANOPTES_ENDPOINT": (clean_env() | {"PANOPTES_ENDPOINT": endpoint}, [], "set PANOPTES_ENDPOINT"),
        "with a login": (clean_env() | {"PANOPTES_ENDPOINT": endpoint} | login, [], "set PANOPTES_ENDPOINT"),
        "--conn-id": (clean_env() | connection_env(PanoptesConfig(endpoint), "far"), ["--conn-id", "far"],
                      "fix the connection's host"),
        "zooflow up": (clean_env(fake_up(tmp_path / "up", PanoptesConfig(endpoint))), [], "`make up`"),
    }[how]
    result = zooflow("check", seed.DEMO_PROJECT_SLUG, *extra, env=env)
    assert result.returncode == 2
    # Importing Airflow (for --conn-id) logs where its config is; anything else is the error or a traceback.
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("zooflow: using ", "INFO:airflow."))]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(f"zooflow: error: cannot reach Panoptes at {endpoint} (connection refused)")
    assert fix in errors[0] and "secret-word" not in result.stderr

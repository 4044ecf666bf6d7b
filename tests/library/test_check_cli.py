"""``zooflow check``: the CLI reaches Panoptes through --conn-id or PANOPTES_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from zooflow.airflow_env import connection_env
from zooflow.sandbox import seed


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=120)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))}


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
        "or set AIRFLOW_CONN_NOPE"
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

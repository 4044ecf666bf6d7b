"""Shared fixtures: a private Airflow home on SQLite and a seeded sandbox over real HTTP.

Airflow reads its configuration when first imported, so the environment is set here, at import
time, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "dags"

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="zooflow-tests-"))

from zooflow.airflow_env import airflow_env  # noqa: E402  (no Airflow import inside)

os.environ.update(
    airflow_env(
        airflow_home=_SESSION_DIR / "airflow",
        dags_folder=DAGS_FOLDER,
        data_root=_SESSION_DIR / "data",
        base={},
    )
)
(_SESSION_DIR / "airflow").mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    return DAGS_FOLDER


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database, made once per test session."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    return Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"


@pytest.fixture(scope="session")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator["SandboxProcess"]:  # noqa: F821
    """One seeded sandbox shared by tests that only read the demo project or add to it."""
    from zooflow.sandbox.process import SandboxProcess

    with SandboxProcess(tmp_path_factory.mktemp("sandbox"), seed="demo") as sandbox:
        yield sandbox


@pytest.fixture()
def demo_config(demo_sandbox):
    from zooflow.sandbox.populate import demo_user_config

    return demo_user_config(demo_sandbox.endpoint)


@pytest.fixture()
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root for one test; tasks and the CLI read it from the environment."""
    root = tmp_path / "data"
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(root))
    return root


@pytest.fixture()
def zooniverse_conn(demo_config, monkeypatch: pytest.MonkeyPatch):
    """The default zooniverse connection pointed at the demo sandbox, as an environment variable."""
    from zooflow.airflow_env import connection_env

    for name, value in connection_env(demo_config).items():
        monkeypatch.setenv(name, value)
    return demo_config

"""Credentials never leave the connection: not in task logs, XCom, outputs or reports.

The password is a distinctive string, so finding it anywhere is a leak. The DAGs run for real
(dag.test prints every task's log), then the logs, the XCom table and every file under the data
root are searched. A deliberately careless task shows that Airflow masks the password in logs
once zooflow's hook has read the connection.
"""

from __future__ import annotations

import json

import pytest

from fault_support import EXPORTS_CONF, SLUG, al_conf
from zooflow.airflow_env import airflow_env, connection_env
from zooflow.dev.airflow import LocalAirflow
from zooflow.panoptes import PanoptesConfig

SECRET = "Zx9-credential-canary-4f1e"


def xcom_text() -> str:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return "\n".join(json.dumps(row.value, default=str) for row in session.query(XComModel).all())


def files_holding(root, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.fixture()
def canary_password(env, monkeypatch):
    """The project owner's password changed to the canary for one test, and the connection with it."""
    world = env
    world.admin.create_user(world.config.username, SECRET)
    for name, value in connection_env(PanoptesConfig(endpoint=world.config.endpoint, username=world.config.username,
                                                     password=SECRET)).items():
        monkeypatch.setenv(name, value)
    yield SECRET
    world.admin.create_user(world.config.username, world.config.password)


def test_the_password_appears_in_no_log_xcom_output_or_report(env, load, table, canary_password, capfd) -> None:
    world = env
    world.admin.advance_clock(hours=25)  # a new export is requested and downloaded with the canary too
    since = world.admin.last_request_id()
    capfd.readouterr()
    runs = {
        "zooniverse_connection_check": load("zooniverse_connection_check").test(run_conf={"project": SLUG}),
        "zooniverse_exports": load("zooniverse_exports").test(run_conf=EXPORTS_CONF),
        "zooniverse_active_learning": load("zooniverse_active_learning").test(run_conf=al_conf(world, dry_run=True)),
    }
    logs = capfd.readouterr()
    assert {name: run.state for name, run in runs.items()} == dict.fromkeys(runs, "success")
    logins = [r for r in world.admin.requests(since_id=since) if r["path"].startswith("/users/sign_in") and r["status"] < 400]
    assert logins  # the runs did log in with the canary password
    assert SECRET not in logs.out + logs.err
    assert SECRET not in xcom_text()
    assert files_holding(world.root, SECRET) == []
    table("credentials", "a distinctive password, through the check, exports and AL DAGs",
          "absent from every task log, every XCom value and every file and report under the data root", "nothing")


CARELESS_DAG = """
import logging
from datetime import datetime, timezone

from airflow.sdk import dag, task

from zooflow.airflow.hooks.zooniverse import PanoptesHook


@dag(dag_id="careless_logging", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
def careless():
    @task
    def leak() -> None:
        config = PanoptesHook().get_config()
        logging.getLogger("airflow.task").info("careless: the password is %s", config.password)

    leak()


careless()
"""


def test_a_task_that_logs_the_password_shows_it_masked(env, table, canary_password, tmp_path) -> None:
    """Masking happens where Airflow writes task logs, so this runs on Airflow's own services and reads
    the task's log file, as the UI shows it."""
    world = env
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "careless.py").write_text(CARELESS_DAG)
    canary = PanoptesConfig(endpoint=world.config.endpoint, username=world.config.username, password=canary_password)
    settings = airflow_env(airflow_home=tmp_path / "home", dags_folder=dags, data_root=tmp_path / "data", panoptes=canary)
    with LocalAirflow(settings, services=("api-server", "scheduler", "dag-processor")) as airflow:
        airflow.airflow("dags", "reserialize")
        airflow.airflow("dags", "unpause", "careless_logging")
        airflow.airflow("dags", "trigger", "careless_logging")
        (run,) = airflow.wait_for_runs("careless_logging", "manual", 1, timeout=180)
    logs = "\n".join(p.read_text() for p in (tmp_path / "home" / "logs").rglob("*.log"))
    assert run["state"] == "success", logs[-3000:]
    line = next(line for line in logs.splitlines() if "careless: the password is" in line)
    assert SECRET not in logs
    assert "careless: the password is ***" in line
    table("credentials", "a task that logs the connection's password (real scheduler, task log file)",
          "the log file reads 'careless: the password is ***'", "nothing")

"""The forms name YAML files only in the config folder: runs with dag.test() against a sandbox.

Anyone who may trigger a DAG fills in its form; a ``spec_file`` or ``config`` naming another file
(here a secret outside the folder) is refused before it is read, and its content reaches no log.
The form's first task also refuses a created_at window whose ``since`` is after its ``until``
before any request to Panoptes.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.param import ParamValidationError

import zooflow.al.round
import zooflow.exports.slice_spec
from support.sandboxes import demo_sandbox_with
from zooflow.airflow_env import connection_env
from zooflow.sandbox import seed

SLUG = seed.DEMO_PROJECT_SLUG
SECRET = "root:$6$form-files-secret-7f3a9c$Qx:19000:0:99999:7:::"
FAST = {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 0.5}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with demo_sandbox_with(tmp_path_factory.mktemp("form-sandbox"), subjects=4, classifications=10) as sb:
        yield sb


@pytest.fixture()
def folder(tmp_path, monkeypatch) -> Path:
    """An empty config folder (so the forms ask for a file name), and a secret file outside it."""
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("ZOOFLOW_CONFIG_DIR", str(config))
    (tmp_path / "shadow").write_text(SECRET + "\n")
    return config


@pytest.fixture()
def env(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(tmp_path / "data"))
    for name, value in connection_env(sandbox.config).items():
        monkeypatch.setenv(name, value)


@pytest.fixture()
def loads(monkeypatch) -> list[str]:
    """Every settings file the slice spec and AL config loaders are asked to read."""
    paths: list[str] = []
    for module in (zooflow.exports.slice_spec, zooflow.al.round):
        original = module.load_mapping
        monkeypatch.setattr(module, "load_mapping", lambda path, what, _load=original: paths.append(str(path)) or _load(path, what))
    return paths


def load(dags_folder: Path, name: str):
    """Parsed now, so the form sees the config folder the test set."""
    dag = DagBag(dag_folder=str(dags_folder / f"{name}.py")).dags[name]
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return dag


def states(run) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}


def assert_secret_nowhere(capfd) -> str:
    """The run's output (task logs included) and Airflow's log files hold no line of the secret."""
    output = capfd.readouterr()
    text = output.out + output.err
    assert SECRET not in text and "form-files-secret" not in text
    for log in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"):
        assert "form-files-secret" not in log.read_text(errors="replace"), log
    return text


def test_a_spec_file_path_is_refused_by_the_form(airflow_db, folder, dags_folder) -> None:
    dag = load(dags_folder, "zooniverse_exports")
    for outside in (str(folder.parent / "shadow"), "../shadow", "/etc/shadow"):
        with pytest.raises(ParamValidationError):
            dag.test(run_conf=FAST | {"spec_file": outside})


def test_a_spec_file_leading_out_of_the_folder_fails_before_it_is_read(
        airflow_db, env, sandbox, folder, dags_folder, loads, capfd) -> None:
    dag = load(dags_folder, "zooniverse_exports")
    (folder / "daily.yaml").symlink_to(folder.parent / "shadow")  # added after parsing: only the run can check it
    since = sandbox.admin.last_request_id()
    capfd.readouterr()
    run = dag.test(run_conf=FAST | {"spec_file": "daily.yaml"})
    assert run.state == "failed"
    assert states(run)["check_form"] == ("failed", 1)  # refused, not retried
    assert all(state == "upstream_failed" for task, (state, _) in states(run).items() if task != "check_form")
    assert sandbox.admin.requests(since_id=since) == []
    assert loads == []
    text = assert_secret_nowhere(capfd)
    assert f"it leads out of the config folder {folder}" in text and "copy it into that folder" in text


def test_an_al_config_leading_out_of_the_folder_fails_before_it_is_read(
        airflow_db, env, sandbox, folder, dags_folder, loads, capfd) -> None:
    dag = load(dags_folder, "zooniverse_active_learning")
    with pytest.raises(ParamValidationError):
        dag.test(run_conf=FAST | {"config": str(folder.parent / "shadow")})
    (folder / "al.yaml").symlink_to(folder.parent / "shadow")
    since = sandbox.admin.last_request_id()
    capfd.readouterr()
    run = dag.test(run_conf=FAST | {"config": "al.yaml"})
    assert run.state == "failed"
    assert states(run)["plan"] == ("failed", 1)
    assert sandbox.admin.requests(since_id=since) == []
    assert loads == []
    text = assert_secret_nowhere(capfd)
    assert "refused 'al.yaml'" in text and str(folder) in text


def test_a_spec_file_in_the_folder_is_used(airflow_db, env, sandbox, folder, dags_folder, loads) -> None:
    (folder / "with-gold.yaml").write_text(yaml.safe_dump({"gold": "include", "formats": ["csv"]}))
    dag = load(dags_folder, "zooniverse_exports")
    assert dag.params.get_param("spec_file").schema["enum"] == [None, "with-gold.yaml"]
    run = dag.test(run_conf=FAST | {"export_types": ["classifications"], "spec_file": "with-gold.yaml"})
    assert run.state == "success"
    (ti,) = [t for t in run.get_task_instances() if t.task_id == "classifications.slice"]
    report = ti.xcom_pull(task_ids="classifications.slice")
    assert report["spec"]["gold"] == "include" and report["spec"]["formats"] == ["csv"]
    assert loads.count(str(folder / "with-gold.yaml")) == 2  # checked first, then sliced with


def test_since_after_until_fails_in_the_first_task_before_any_request(
        airflow_db, env, sandbox, folder, dags_folder, capfd) -> None:
    dag = load(dags_folder, "zooniverse_exports")
    since = sandbox.admin.last_request_id()
    capfd.readouterr()
    run = dag.test(run_conf=FAST | {"since": "2025-02-01", "until": "2025-01-01"})
    assert run.state == "failed"
    assert states(run)["check_form"] == ("failed", 1)
    assert sandbox.admin.requests(since_id=since) == []
    output = capfd.readouterr()
    assert "the created_at window is empty: since 2025-02-01T00:00:00+00:00 is not before until" in output.out + output.err

"""zooniverse_connection_check run for real with dag.test() against the sandbox."""

from __future__ import annotations

import json

from airflow.dag_processing.dagbag import DagBag

from zooflow.paths import DataRoot
from zooflow.sandbox import seed


def load_dag(dags_folder):
    bag = DagBag(dag_folder=str(dags_folder / "zooniverse_connection_check.py"))
    assert bag.import_errors == {}
    return bag.dags["zooniverse_connection_check"]


def test_reports_project_and_workflow_counts(dags_folder, airflow_db, zooniverse_conn, data_root, demo_sandbox) -> None:
    dag = load_dag(dags_folder)
    run = dag.test(run_conf={"project": seed.DEMO_PROJECT_SLUG})
    assert run.state == "success"

    reports = list(DataRoot(data_root).reports_dir(seed.DEMO_PROJECT_SLUG, "connection_check").glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["project"]["slug"] == seed.DEMO_PROJECT_SLUG
    names = [w["display_name"] for w in report["workflows"]]
    assert seed.DEMO_WORKFLOW_NAME in names
    for workflow in report["workflows"]:
        assert workflow["subjects_count"] is not None
        assert workflow["retired_set_member_subjects_count"] is not None
    # The report is data, not credentials.
    assert seed.DEMO_PASSWORD not in reports[0].read_text()


def test_unknown_project_fails_without_retrying(dags_folder, airflow_db, zooniverse_conn, data_root) -> None:
    dag = load_dag(dags_folder)
    run = dag.test(run_conf={"project": "nobody/no-such-project"})
    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert ti.state == "failed"
    assert ti.try_number == 1  # a wrong slug fails fast instead of burning two retries
    assert not data_root.exists() or not any(data_root.rglob("*.json"))

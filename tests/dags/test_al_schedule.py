"""The AL DAG's schedule: export events of the deployment's project, and the AL config's cadence too,
whose runs look at the batch once and end (the sensor's look_once) instead of waiting."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
from airflow.utils.types import DagRunType

from zooflow.airflow import params

from support.dag_runs import load_dag

DAG_ID = "zooniverse_active_learning"


@pytest.fixture()
def al_config(tmp_path, monkeypatch):
    def write(extra: str = ""):
        path = tmp_path / "al.yaml"
        path.write_text("pool: pool.csv\nworkflow_id: 5\n" + extra)
        monkeypatch.setenv("ZOOFLOW_AL_CONFIG", str(path))
        return path
    return write


def test_a_cadence_adds_a_cron_schedule_to_the_export_events(al_config, monkeypatch, dags_folder) -> None:
    monkeypatch.setattr(params, "DEFAULT_PROJECT", "owner/name")
    al_config("cadence: '*/15 * * * *'\n")
    timetable = load_dag(dags_folder, DAG_ID).timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert timetable.timetable.expression == "*/15 * * * *"
    assert [asset.uri for asset in timetable.asset_condition.objects] == ["zooniverse://owner/name/classifications"]

    monkeypatch.setattr(params, "DEFAULT_PROJECT", "")
    timetable = load_dag(dags_folder, DAG_ID).timetable
    assert isinstance(timetable, CronTriggerTimetable) and timetable.expression == "*/15 * * * *"


def test_without_a_cadence_export_events_alone_start_a_round(al_config, monkeypatch, dags_folder) -> None:
    monkeypatch.setattr(params, "DEFAULT_PROJECT", "owner/name")
    al_config()
    dag = load_dag(dags_folder, DAG_ID)
    assert not isinstance(dag.timetable, AssetOrTimeSchedule)
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == ["zooniverse://owner/name/classifications"]


def test_a_bad_cadence_is_an_import_error_naming_the_file(al_config, dags_folder) -> None:
    from airflow.dag_processing.dagbag import DagBag

    path = al_config("cadence: 15\n")
    bag = DagBag(dag_folder=str(dags_folder / f"{DAG_ID}.py"))
    (error,) = bag.import_errors.values()
    assert f"cadence in {path} must be a cron expression" in error


@pytest.mark.parametrize("run_type, looks_once", [(DagRunType.SCHEDULED, True), (DagRunType.MANUAL, False),
                                                  (DagRunType.ASSET_TRIGGERED, False)])
def test_only_the_cadences_runs_look_once(al_config, dags_folder, run_type, looks_once) -> None:
    al_config()
    dag = load_dag(dags_folder, DAG_ID)
    template = dag.get_task("wait_for_batch").look_once
    assert dag.get_template_env().from_string(template).render(dag_run=SimpleNamespace(run_type=run_type)) is looks_once

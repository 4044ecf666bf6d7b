"""ExportReadySensor: defers to the trigger, reads its events, and waits in reschedule mode too."""

from __future__ import annotations

import time

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskreschedule import TaskReschedule
from airflow.utils.session import create_session
from sqlalchemy import select
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout, TaskDeferred

from zooflow.airflow.sensors.export import ExportReadySensor
from zooflow.airflow.triggers.panoptes import PanoptesCheckTrigger
from zooflow.exports.export_requests import ExportTarget, describe, export_complete, parse_time, request_export
from zooflow.panoptes import connect
from zooflow.sandbox import seed

TARGET = {"resource": "project", "resource_id": 1, "export_type": "subjects"}


@pytest.fixture()
def fresh_request(zooniverse_conn, demo_sandbox, tmp_path):
    demo_sandbox.admin.configure(export_delay=1.0, export_stuck=False)
    demo_sandbox.admin.advance_clock(hours=25)
    target = ExportTarget(**TARGET)
    with connect(zooniverse_conn):
        outcome = request_export(target, tmp_path / "last_request.json")
    assert outcome.action == "requested"
    yield outcome.to_dict()
    # Let the build finish before the next test moves the clock, or its completion would count as
    # a request made after the jump (and the 24-hour rule would rightly refuse the next one).
    with connect(zooniverse_conn):
        deadline = time.monotonic() + 15
        while not export_complete(describe(target), parse_time(outcome.requested_at)) and time.monotonic() < deadline:
            time.sleep(0.1)


def test_defers_to_the_trigger_while_the_export_is_building(fresh_request) -> None:
    sensor = ExportReadySensor(task_id="wait", request=fresh_request, poke_interval=5, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, PanoptesCheckTrigger) and deferred.value.method_name == "execute_complete"
    assert trigger.check == "zooflow.exports.export_requests.export_ready_check"
    assert trigger.check_kwargs == {"target": TARGET, "requested_at": fresh_request["requested_at"], "outcome": fresh_request}
    assert 590 < trigger.end_time - time.time() <= 600 and trigger.poll_interval == 5


def test_form_values_override_timeout_and_interval(fresh_request) -> None:
    sensor = ExportReadySensor(task_id="wait", request=fresh_request, wait_timeout_seconds=30, poll_seconds=2)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    assert deferred.value.trigger.poll_interval == 2 and deferred.value.trigger.end_time - time.time() <= 30


def test_a_backfill_has_nothing_to_wait_for() -> None:
    sensor = ExportReadySensor(task_id="wait", request={"action": "backfill"})
    assert sensor.execute(context={}) is None


def test_events_become_results_or_clear_failures(fresh_request) -> None:
    sensor = ExportReadySensor(task_id="wait", request=fresh_request, timeout=7200)
    ok = {"status": "success", "done": True, "state": "ready", "detail": {"media_id": "3"}}
    assert sensor.execute_complete({}, ok) == {"done": True, "state": "ready", "detail": {"media_id": "3"}}
    with pytest.raises(AirflowSensorTimeout, match=r"still 'creating' after 2\.0 h\. Panoptes' rate limiter may have dropped"):
        sensor.execute_complete({}, {"status": "timeout", "state": "creating"})
    with pytest.raises(AirflowFailException, match="^the project 1 subjects export requested at .* ended 'failed'"):
        sensor.execute_complete({}, {"status": "ended", "message": "the project 1 subjects export requested at "
                                                                   "2026-01-01 00:00 UTC ended 'failed'"})
    with pytest.raises(AirflowException, match="waiting on Panoptes failed: ConnectionError"):
        sensor.execute_complete({}, {"status": "error", "message": "ConnectionError: refused"})


def test_reschedule_mode_on_the_real_dag(airflow_db, dags_folder, zooniverse_conn, demo_sandbox, data_root, monkeypatch) -> None:
    """With Airflow's default_deferrable off the exports DAG waits by rescheduling: no trigger, no held slot."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    demo_sandbox.admin.configure(export_delay=2.0, export_stuck=False)
    demo_sandbox.admin.advance_clock(hours=25)
    dag = DagBag(dag_folder=str(dags_folder / "zooniverse_exports.py")).dags["zooniverse_exports"]
    wait = dag.get_task("subjects.wait")
    assert wait.deferrable is False and wait.mode == "reschedule"
    run = dag.test(run_conf={"project": seed.DEMO_PROJECT_SLUG, "export_types": ["subjects"], "poll_seconds": 1,
                             "wait_timeout_minutes": 1})
    assert run.state == "success"
    (ti,) = [t for t in run.get_task_instances() if t.task_id == "subjects.wait"]
    assert ti.state == "success" and ti.try_number == 1 and ti.next_method is None
    with create_session() as session:
        reschedules = session.scalars(select(TaskReschedule).where(TaskReschedule.ti_id == ti.id)).all()
    assert reschedules, "the sensor should have rescheduled at least once while the export was building"

"""BatchRetiredSensor: a run on the AL DAG's cadence looks once and skips; any other run defers."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred
from panoptes_client import Project

from zooflow.airflow.sensors.retirement import BatchRetiredSensor
from zooflow.airflow_env import connection_env
from zooflow.panoptes import connect
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config
from zooflow.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A demo project of its own: four subjects in its set, which nobody has classified."""
    with SandboxProcess(tmp_path_factory.mktemp("sandbox"), seed="demo") as sandbox:
        with connect(demo_user_config(sandbox.endpoint)):
            add_demo_subjects(4)
        sandbox.admin.settle()
        yield sandbox


@pytest.fixture()
def batch(sandbox, monkeypatch):
    config = demo_user_config(sandbox.endpoint)
    for name, value in connection_env(config).items():
        monkeypatch.setenv(name, value)
    with connect(config):
        workflow = Project.find(slug=seed.DEMO_PROJECT_SLUG).links.workflows[0]
        return {"workflow_id": int(workflow.id), "subject_set_ids": [int(s.id) for s in workflow.links.subject_sets]}


def sensor(batch, **kwargs) -> BatchRetiredSensor:
    return BatchRetiredSensor(task_id="wait_for_batch", retirement_mode="precise", poke_interval=1, deferrable=True,
                              **batch, **kwargs)


def test_a_look_once_run_skips_when_the_batch_is_not_done(batch) -> None:
    with pytest.raises(AirflowSkipException, match="0 of 4 subjects .* retired; nothing to do until it is"):
        sensor(batch, look_once=True).execute(context={})
    with pytest.raises(TaskDeferred):
        sensor(batch, look_once=False).execute(context={})


def test_a_look_once_run_goes_on_when_refill_says_the_batch_is_nearly_done(batch) -> None:
    result = sensor(batch, look_once=True, refill_below=10**6).execute(context={})
    assert result["done"] and result["detail"]["refill_below"] == 10**6

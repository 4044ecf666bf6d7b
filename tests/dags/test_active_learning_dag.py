"""zooniverse_active_learning run for real with dag.test() against the sandbox: two rounds with
simulated volunteers in between, a dry run, and an upload that fails half-way and is retried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from panoptes_client import Subject, Workflow

from zooflow.al.learner import DEFAULT_STRATEGY
from zooflow.al.state import RoundState
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed

from support.dag_runs import load_dag
from support.digits_world import world_fixture

SLUG = seed.DEMO_PROJECT_SLUG


world = world_fixture("al")


@pytest.fixture()
def env(world, monkeypatch):
    """The AL config is both in the config folder (the form names it) and the deployment's default."""
    world.use_in_dag_runs(monkeypatch)
    monkeypatch.setenv("ZOOFLOW_AL_CONFIG", world.al_config)
    world.admin.configure(fail_next=[])


def conf(world, **extra):
    return {"project": SLUG, "config": Path(world.al_config).name, "poll_seconds": 1, "wait_timeout_minutes": 0.5} | extra


def state(world) -> RoundState:
    return RoundState(DataRoot(world.root).al_dir(SLUG, world.workflow_id))


def test_first_round_uploads_a_cold_start_batch(airflow_db, env, world, dags_folder, capfd) -> None:
    run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=conf(world))
    assert run.state == "success"
    output = capfd.readouterr()
    assert "round 1 upload: 9 of 9 subjects (100%)" in output.out + output.err  # the upload's last progress line
    (first,) = state(world).completed()
    assert len(first["picked"]) == 9 and first["labelled"] == 0
    with connect(world.config):
        members = list(Subject.where(subject_set_id=first["set_id"], page_size=100))
        linked = Workflow.find(world.workflow_id).raw["links"]["subject_sets"]
    assert str(first["set_id"]) in linked
    assert sorted(s.metadata["#pool_id"] for s in members) == sorted(first["picked"])
    metadata = members[0].metadata
    assert set(metadata) == {"#pool_id", "#al_round", "#query_reason", "#model_probability"}  # no features shown
    assert metadata["#al_round"] == 1 and metadata["#query_reason"] == "cold_start"


def test_second_round_learns_from_the_first_batchs_consensus(airflow_db, env, world, dags_folder) -> None:
    """No export is waited for: the round pulls the classifications made since the last pull."""
    for _ in range(20):  # the volunteers label the batch until it retires
        if not world.admin.run_volunteers(10, seed=7, workflow_id=world.workflow_id):
            break
    world.admin.settle()  # Panoptes' counter jobs catch up with the retirements
    since = world.admin.last_request_id()

    run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=conf(world))
    assert run.state == "success"
    (pull,) = [t for t in run.get_task_instances() if t.task_id == "pull_classifications"]
    pulled = pull.xcom_pull(task_ids="pull_classifications")
    assert pulled["fetched"] >= 27 and pulled["total"] == pulled["fetched"]  # 9 subjects, 3 votes each at least
    paths = [r["path"] for r in world.admin.requests(since_id=since)]
    assert "/api/classifications/project" in paths and not any("export" in p for p in paths)
    first, second = state(world).completed()
    assert second["metrics"]["labelled_by_volunteers"] >= 6  # consensus from 3 votes each, 10% error rate
    consensus = json.loads((Path(second["folder"]) / "consensus.json").read_text())
    assert set(consensus["labels"]) <= set(first["picked"])  # the labels are the first batch's
    assert not set(first["picked"]) & set(second["picked"])
    assert DEFAULT_STRATEGY in json.loads((Path(second["folder"]) / "selection.json").read_text())["reasons"]
    counts = world.pool_ids()
    assert set(counts.values()) == {1} and len(counts) == len(first["picked"]) + len(second["picked"])
    assert (state(world).folder / "learning_curve.png").stat().st_size > 5000


def test_dry_run_writes_the_manifest_and_changes_nothing(airflow_db, env, world, dags_folder) -> None:
    before, rounds = world.admin.state(), state(world).rounds
    # config left empty: the deployment's $ZOOFLOW_AL_CONFIG
    run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=conf(world, dry_run=True, k=4, m=0, config=None))
    assert run.state == "success"
    (upload,) = [t for t in run.get_task_instances() if t.task_id == "upload"]
    assert upload.state == "skipped"
    after = world.admin.state()
    assert (after["subjects"], after["subject_sets"]) == (before["subjects"], before["subject_sets"])
    assert state(world).rounds == rounds
    (dry,) = list((state(world).folder / "dry-runs").iterdir())
    assert len((dry / "manifest.csv").read_text().splitlines()) == 1 + 4 and len(list((dry / "images").glob("*.png"))) == 4


def test_an_upload_failing_half_way_is_retried_to_one_subject_per_item(airflow_db, env, world, dags_folder) -> None:
    world.label_until_retired(seed_=8)
    world.admin.configure(fail_next=[{"method": "PUT", "path_regex": "^/uploads/", "status": 500, "count": 16}])
    run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=conf(world))
    assert run.state == "success"
    (upload,) = [t for t in run.get_task_instances() if t.task_id == "upload"]
    assert upload.try_number == 2  # the first try failed part-way; Airflow's retry finished the job
    third = state(world).completed()[-1]
    assert third["round"] == 3
    counts = world.pool_ids()
    assert all(counts[pool_id] == 1 for pool_id in third["picked"]) and set(counts.values()) == {1}

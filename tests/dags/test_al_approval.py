"""approve_before_upload, run for real: dag.test() parks the round at its approval step and a reviewer
answers through Airflow's HITL REST API — approving one round, rejecting the next — and the sandbox
shows what was uploaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zooflow.al.state import RoundState
from zooflow.paths import DataRoot
from zooflow.sandbox import seed

from support.dag_runs import load_dag
from support.digits_world import world_fixture
from support.hitl import Answer, hitl_client

SLUG = seed.DEMO_PROJECT_SLUG
DAG_ID = "zooniverse_active_learning"


world = world_fixture("approval")


@pytest.fixture()
def env(world, monkeypatch):
    world.use_in_dag_runs(monkeypatch)
    world.admin.configure(fail_next=[])


@pytest.fixture(scope="module")
def approving(world) -> str:
    """The world's AL config with approve_before_upload, beside it in the config folder."""
    config = Path(world.al_config)
    settings = yaml.safe_load(config.read_text()) | {"approve_before_upload": True}
    path = config.with_name("approving.yaml")
    path.write_text(yaml.safe_dump(settings))
    return path.name


def run_round(dags_folder: Path, config: str, choice: str):
    with Answer(hitl_client(), DAG_ID, choice) as answer:
        run = load_dag(dags_folder, DAG_ID).test(run_conf={"project": SLUG, "config": config, "poll_seconds": 1,
                                              "wait_timeout_minutes": 0.5})
    return run, answer, {t.task_id: t.state for t in run.get_task_instances()}


def state(world) -> RoundState:
    return RoundState(DataRoot(world.root).al_dir(SLUG, world.workflow_id))


def test_a_reviewer_approves_one_round_and_rejects_the_next(airflow_db, env, world, approving, dags_folder) -> None:
    run, answer, tasks = run_round(dags_folder, approving, "Approve")
    assert run.state == "success" and tasks["approve"] == tasks["upload"] == "success"
    assert answer.detail["subject"] == f"Upload round 1 (9 subjects) to workflow {world.workflow_id}?"
    body = answer.detail["body"]
    assert "| cold_start |" in body and "/zooniverse/files/projects/" in body and ".png)" in body
    (first,) = state(world).completed()
    assert len(first["picked"]) == 9 and set(world.pool_ids()) == set(first["picked"])

    world.label_until_retired(seed_=5)
    subject_sets = world.admin.state()["subject_sets"]
    run, answer, tasks = run_round(dags_folder, approving, "Reject")
    assert run.state == "success"  # a rejection is an answer, not a failure
    assert (tasks["approve"], tasks["upload"]) == ("success", "skipped")
    assert answer.response["chosen_options"] == ["Reject"]
    rejected = state(world).rounds[1]
    assert rejected["round"] == 2 and rejected["rejected_at"] and not rejected.get("uploaded_at")
    assert world.admin.state()["subject_sets"] == subject_sets  # nothing uploaded
    assert state(world).pending() is None and not set(rejected["picked"]) & state(world).uploaded_pool_ids()

    # the next round may choose the rejected items again; off by default, nobody is asked
    run, answer, tasks = run_round(dags_folder, Path(world.al_config).name, "Approve")
    assert tasks["upload"] == "success" and answer.detail is None
    third = state(world).completed()[-1]
    assert third["round"] == 3
    chosen_by_margin = [p for p in rejected["picked"] if p in third["picked"]]
    assert chosen_by_margin, "the rejected round's items were not free for the next round"
    counts = world.pool_ids()
    assert set(counts.values()) == {1} and set(counts) == set(first["picked"]) | set(third["picked"])

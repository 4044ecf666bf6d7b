"""retire_confidence, run for real with dag.test() on the sandbox: the round's first step lists the
subjects whose label is already clear in a dry run (nothing retired), then retires them through the
API with reason ``consensus``, each logged with the votes that justified it."""

from __future__ import annotations

from pathlib import Path

import yaml
from panoptes_client import SubjectWorkflowStatus

from zooflow.al.state import RoundState
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed

from support.dag_runs import load_dag
from support.digits_world import world_fixture

SLUG = seed.DEMO_PROJECT_SLUG
DAG_ID = "zooniverse_active_learning"
world = world_fixture("retire")


def retiring_config(world) -> str:
    config = Path(world.al_config)
    settings = yaml.safe_load(config.read_text()) | {"consensus": "weighted", "retire_confidence": 0.8, "min_votes": 2}
    path = config.with_name("retiring.yaml")
    path.write_text(yaml.safe_dump(settings))
    return path.name


def run(world, dags_folder, **conf):
    config = retiring_config(world)  # before the DAG is parsed: the form lists the config folder's files
    run = load_dag(dags_folder, DAG_ID).test(run_conf={"project": SLUG, "config": config, "poll_seconds": 1,
                                                       "wait_timeout_minutes": 0.5} | conf)
    (retire,) = [t for t in run.get_task_instances() if t.task_id == "retire_early"]
    return run, retire.xcom_pull(task_ids="retire_early")


def statuses(world, subject_ids) -> dict[int, dict]:
    with connect(world.config):
        return {int(s.raw["links"]["subject"]): s.raw for s in
                SubjectWorkflowStatus.where(workflow_id=world.workflow_id, subject_id=",".join(map(str, subject_ids)))}


def test_clear_subjects_are_listed_in_a_dry_run_and_then_retired_with_reason_consensus(
        airflow_db, world, dags_folder, monkeypatch) -> None:
    world.use_in_dag_runs(monkeypatch)
    first, report = run(world, dags_folder)
    assert first.state == "success" and report["retired"] == []  # nothing uploaded yet: nothing to retire
    state = RoundState(DataRoot(world.root).al_dir(SLUG, world.workflow_id))
    uploaded = [int(s) for s in state.subject_pool()]
    # two votes each on most subjects: below the workflow's three, so none retires by count
    for step in range(12):
        world.admin.run_volunteers(1, seed=40 + step, workflow_id=world.workflow_id)
    world.admin.settle()

    dry, report = run(world, dags_folder, dry_run=True)  # the round previews; the retire step is a dry run by default
    listed = {entry["subject_id"] for entry in report["retired"]}
    assert dry.state == "success" and report["dry_run"] and listed
    assert all(entry["votes_used"] >= 2 and entry["confidence"] >= 0.8 for entry in report["retired"])
    world.admin.settle()
    assert not [s for s in statuses(world, uploaded).values() if s.get("retirement_reason") == "consensus"]
    assert state.retired_early() == []

    real, report = run(world, dags_folder, dry_run=True, retire_dry_run=False)
    assert real.state == "success" and not report["dry_run"]
    retired = {entry["subject_id"] for entry in report["retired"]}
    assert retired == listed
    world.admin.settle()
    found = statuses(world, retired)
    assert {s for s, raw in found.items() if raw["retired_at"] and raw["retirement_reason"] == "consensus"} == retired
    journal = state.retired_early()
    assert {entry["subject_id"] for entry in journal} == retired
    assert all(len(entry["votes"]) == entry["votes_used"] for entry in journal)  # the votes behind each

    again, report = run(world, dags_folder, dry_run=True, retire_dry_run=False)
    assert again.state == "success" and not {e["subject_id"] for e in report["retired"]} & retired  # never twice

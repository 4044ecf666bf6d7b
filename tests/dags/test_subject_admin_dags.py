"""zooniverse_remove_duplicates and zooniverse_update_metadata run for real with dag.test() against the sandbox."""

from __future__ import annotations

import json

import pytest
from airflow.dag_processing.dagbag import DagBag
from panoptes_client import Project, Subject, SubjectSet

from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.populate import demo_subject_set



def load_dag(dags_folder, dag_id):
    bag = DagBag(dag_folder=str(dags_folder / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


@pytest.fixture()
def client(demo_config, demo_sandbox):
    demo_sandbox.admin.configure(fail_next=[], fault_rate=0)
    with connect(demo_config) as client:
        yield client


def snapshot(admin):
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    return {
        "state": admin.stable_state(),
        "members": {int(ss.id): sorted(int(s.id) for s in Subject.where(subject_set_id=ss.id, page_size=100))
                    for ss in SubjectSet.where(project_id=project.id)},
        "metadata": {int(s.id): dict(s.metadata or {}) for s in Subject.where(project_id=project.id, page_size=100)},
    }


def reports(data_root, kind):
    folder = DataRoot(data_root).reports_dir(seed.DEMO_PROJECT_SLUG, kind)
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda r: (r["applied"], r.get("removed", r.get("updated"))))


def test_remove_duplicates_dry_run_apply_and_rerun(dags_folder, airflow_db, zooniverse_conn, data_root, demo_sandbox, client) -> None:
    set_id, ids = demo_subject_set([{"filename": "x"}, {"filename": "x"}, {"filename": "y"}, {"nope": 1}, {"filename": "x"}])
    dag = load_dag(dags_folder, "zooniverse_remove_duplicates")
    before = snapshot(demo_sandbox.admin)
    run = dag.test(run_conf={"subject_set_id": set_id, "field": "filename"})  # dry run is the default
    assert run.state == "success"
    assert snapshot(demo_sandbox.admin) == before
    (dry,) = reports(data_root, "remove_duplicates")
    assert (dry["applied"], dry["unique"], dry["duplicates"], dry["removed"], dry["missing_field"]) == (False, 2, 2, 0, 1)
    assert dry["groups"] == {"x": {"kept": ids[0], "removed": [ids[1], ids[4]]}}

    run = dag.test(run_conf={"subject_set_id": set_id, "field": "filename", "dry_run": False})
    assert run.state == "success"
    after = snapshot(demo_sandbox.admin)
    assert after["members"][set_id] == sorted(set(before["members"][set_id]) - set(dry["groups"]["x"]["removed"]))
    assert after["metadata"] == before["metadata"]  # unlinked, not deleted
    assert {k: v for k, v in after["members"].items() if k != set_id} == {k: v for k, v in before["members"].items() if k != set_id}
    applied = [r for r in reports(data_root, "remove_duplicates") if r["applied"]]
    assert applied[0]["removed"] == 2

    run = dag.test(run_conf={"subject_set_id": set_id, "field": "filename", "dry_run": False})
    assert run.state == "success"
    assert snapshot(demo_sandbox.admin)["members"] == after["members"]
    assert min(r["removed"] for r in reports(data_root, "remove_duplicates") if r["applied"]) == 0


def test_remove_duplicates_unknown_set_fails_fast(dags_folder, airflow_db, zooniverse_conn, data_root, demo_sandbox, client) -> None:
    dag = load_dag(dags_folder, "zooniverse_remove_duplicates")
    before = snapshot(demo_sandbox.admin)
    run = dag.test(run_conf={"subject_set_id": 987654, "field": "filename", "dry_run": False})
    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1
    assert snapshot(demo_sandbox.admin) == before


def test_update_metadata_dry_run_apply_and_rerun(dags_folder, airflow_db, zooniverse_conn, data_root, demo_sandbox, client, tmp_path) -> None:
    set_id, ids = demo_subject_set([{"filename": "p.png", "keep": "me"}, {"filename": "q.png"}, {"filename": "r.png"}])
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text("filename,label\np.png,Cosmic Ray\nq.png,Other\nmissing.png,x\n", encoding="utf-8")
    dag = load_dag(dags_folder, "zooniverse_update_metadata")
    conf = {"subject_set_id": set_id, "csv_path": str(csv_path), "match": "filename=filename"}
    before = snapshot(demo_sandbox.admin)
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    assert snapshot(demo_sandbox.admin) == before
    (dry,) = reports(data_root, "update_metadata")
    assert dry["to_change"] == 2 and dry["updated"] == 0
    assert dry["unmatched_rows"] == [{"line": 4, "filename": "missing.png"}]
    assert dry["unmatched_subjects"] == [ids[2]]

    run = dag.test(run_conf={**conf, "dry_run": False})
    assert run.state == "success"
    after = snapshot(demo_sandbox.admin)
    expected = dict(before["metadata"])
    for sid, diff in dry["changes"].items():
        expected[int(sid)] = {**before["metadata"][int(sid)], **diff["added"], **{k: n for k, (o, n) in diff["changed"].items()}}
    assert after["metadata"] == expected
    assert after["metadata"][ids[0]] == {"filename": "p.png", "keep": "me", "label": "Cosmic Ray"}
    assert after["members"] == before["members"]

    run = dag.test(run_conf={**conf, "dry_run": False})
    assert run.state == "success"
    assert snapshot(demo_sandbox.admin)["metadata"] == after["metadata"]
    assert min(r["updated"] for r in reports(data_root, "update_metadata") if r["applied"]) == 0


def test_update_metadata_missing_csv_fails_fast(dags_folder, airflow_db, zooniverse_conn, data_root, demo_sandbox, client, tmp_path) -> None:
    set_id, _ = demo_subject_set([{"filename": "p.png"}])
    dag = load_dag(dags_folder, "zooniverse_update_metadata")
    before = snapshot(demo_sandbox.admin)
    run = dag.test(run_conf={"subject_set_id": set_id, "csv_path": str(tmp_path / "nope.csv"),
                             "match": "filename=filename", "dry_run": False})
    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1
    assert snapshot(demo_sandbox.admin) == before

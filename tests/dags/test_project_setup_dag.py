"""zooniverse_project_setup with dag.test() against the sandbox: a dry run changes nothing, the
applied run creates exactly what the dry run announced, a rerun creates nothing, and a bad manifest
stops the run before any change (checked on the sandbox's request log: no write of any kind)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag
from panoptes_client import Project, Subject, SubjectSet, Workflow

from zooflow.errors import ConfigurationError
from zooflow.panoptes import connect
from zooflow.subjects.manifest import read_manifest

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a4944415408d763f80f00010101001b0a1e3f"
    "0000000049454e44ae426082"
)
NAME = "Setup Test Project"


@pytest.fixture()
def manifest(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    lines = ["image,#secret,!ra,label"]
    for i in range(3):
        (folder / f"img{i}.png").write_bytes(PNG)
        lines.append(f"img{i}.png,s{i},{10 + i},item {i}")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def conf(manifest, **extra):
    return {"display_name": NAME, "description": "made by a test", "workflow_name": "Is it round?",
            "question": "Is it round?", "answers": ["Yes", "No"], "retirement_count": 2,
            "manifest": str(manifest), "subject_set": "first batch"} | extra


@pytest.fixture()
def dag(dags_folder):
    dag = DagBag(dag_folder=str(dags_folder / "zooniverse_project_setup.py")).dags["zooniverse_project_setup"]
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return dag


def writes(sandbox, since: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.admin.requests(since_id=since)
            if r["method"] in ("POST", "PUT", "DELETE") and r["path"] != "/users/sign_in" and r["path"] != "/oauth/token"]


def test_dry_run_then_apply_then_rerun(airflow_db, zooniverse_conn, data_root, demo_sandbox, dag, manifest) -> None:
    since = demo_sandbox.admin.last_request_id()
    dry = dag.test(run_conf=conf(manifest))
    assert dry.state == "success"
    (ti,) = dry.get_task_instances()
    plan = ti.xcom_pull(task_ids="set_up_project")
    assert plan["dry_run"] and not plan["project"]["exists"] and plan["subject_set"]["to_upload"] == 3
    assert writes(demo_sandbox, since) == []

    applied = dag.test(run_conf=conf(manifest, dry_run=False))
    assert applied.state == "success"
    (ti,) = applied.get_task_instances()
    report = ti.xcom_pull(task_ids="set_up_project")
    assert report["project"]["created"] and report["workflow"]["created"]
    assert (report["subject_set"]["created"], report["subject_set"]["linked"]) == (3, 3)
    with connect(zooniverse_conn):
        project = Project.find(report["project"]["id"])
        assert project.display_name == NAME and project.raw["private"] is True
        workflow = Workflow.find(report["workflow"]["id"])
        assert [a["label"] for a in workflow.raw["tasks"]["T0"]["answers"]] == ["Yes", "No"]
        subject_set = SubjectSet.find(report["subject_set"]["subject_set_id"])
        assert str(subject_set.id) in workflow.raw["links"]["subject_sets"]
        subjects = sorted(Subject.where(subject_set_id=subject_set.id), key=lambda s: s.metadata["image"])
        assert [s.metadata for s in subjects] == [
            {"image": f"img{i}.png", "#secret": f"s{i}", "!ra": f"{10 + i}", "label": f"item {i}"} for i in range(3)]

    since = demo_sandbox.admin.last_request_id()
    again = dag.test(run_conf=conf(manifest, dry_run=False))
    assert again.state == "success"
    (ti,) = again.get_task_instances()
    rerun = ti.xcom_pull(task_ids="set_up_project")
    assert not rerun["project"]["created"] and not rerun["workflow"]["created"]
    assert (rerun["subject_set"]["created"], rerun["subject_set"]["already_linked"]) == (0, 3)
    assert writes(demo_sandbox, since) == []  # a rerun creates nothing new


def test_a_bad_manifest_stops_the_run_before_any_change(airflow_db, zooniverse_conn, data_root, demo_sandbox, dag,
                                                          manifest) -> None:
    (manifest.parent / "img1.png").unlink()
    (manifest.parent / "img2.png").unlink()
    since = demo_sandbox.admin.last_request_id()
    run = dag.test(run_conf=conf(manifest, display_name="Never Made", dry_run=False))
    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1  # bad input fails at once, without retries
    assert writes(demo_sandbox, since) == []
    with pytest.raises(ConfigurationError, match=r"2 file\(s\) are missing .*line 3: img1.png; line 4: img2.png"):
        read_manifest(manifest)


def test_manifest_checks(tmp_path, manifest) -> None:
    allowed = read_manifest(manifest, allow_missing=True)
    assert (len(allowed.items), allowed.key_column) == (3, "image")
    (manifest.parent / "img0.png").unlink()
    partial = read_manifest(manifest, allow_missing=True)
    assert len(partial.items) == 2 and partial.skipped_missing == ("img0.png",)

    (tmp_path / "secret.png").write_bytes(PNG)
    escaping = manifest.parent / "escape.csv"
    escaping.write_text("image,label\n../secret.png,x\n")
    with pytest.raises(ConfigurationError, match=r"outside the manifest's folder .*line 2: \.\./secret\.png"):
        read_manifest(escaping)

    (manifest.parent / "huge.png").write_bytes(PNG + b"\0" * 1_100_000)
    big = manifest.parent / "big.csv"
    big.write_text("image\nhuge.png\n")
    with pytest.raises(ConfigurationError, match=r"exceed the 1\.0 MB upload limit.*huge\.png \(1\.1 MB\)"):
        read_manifest(big)

    no_media = manifest.parent / "plain.csv"
    no_media.write_text("name,size\na,1\n")
    with pytest.raises(ConfigurationError, match="has no column of media files or URLs"):
        read_manifest(no_media)

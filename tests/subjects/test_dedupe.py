"""plan_dedupe / apply_dedupe and `zooflow subjects dedupe` against the sandbox."""

from __future__ import annotations

import json

import pytest
from panoptes_client import Project, Subject, SubjectSet

from zooflow.cli import main
from zooflow.errors import ConfigurationError
from zooflow.panoptes import connect
from zooflow.sandbox import seed
from zooflow.sandbox.populate import demo_subject_set
from zooflow.subjects.dedupe import apply_dedupe, plan_dedupe

def make_set(metadatas: list[dict]) -> tuple[int, list[int]]:
    return demo_subject_set(metadatas, prefix="admin-test")


def snapshot(admin, set_ids) -> dict:
    """Counts from the sandbox plus every subject's metadata and every set's membership, read through the client."""
    state = admin.stable_state()
    members = {sid: sorted(int(s.id) for s in Subject.where(subject_set_id=sid, page_size=100)) for sid in set_ids}
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    metadata = {int(s.id): dict(s.metadata or {}) for s in Subject.where(project_id=project.id, page_size=100)}
    return {"state": state, "members": members, "metadata": metadata}


def all_set_ids() -> list[int]:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    return [int(s.id) for s in SubjectSet.where(project_id=project.id)]


@pytest.fixture()
def client(demo_config, demo_sandbox):
    demo_sandbox.admin.configure(fail_next=[], fault_rate=0)
    with connect(demo_config) as client:
        yield client


def test_plan_changes_nothing_apply_unlinks_exactly_the_extras_and_a_rerun_finds_none(client, demo_sandbox) -> None:
    set_id, ids = make_set([
        {"filename": "a.png"}, {"filename": "b.png"}, {"filename": "a.png"}, {"other": "x"},
        {"filename": "a.png"}, {"filename": 7}, {"filename": "7"}, {"filename": "b.png"},
    ])
    admin = demo_sandbox.admin
    before = snapshot(admin, all_set_ids())
    plan = plan_dedupe(set_id, "filename")
    assert snapshot(admin, all_set_ids()) == before
    report = plan.report()
    assert report["subjects"] == 8
    assert report["unique"] == 3  # a.png, b.png, 7 (7 and "7" are the same text)
    assert report["duplicates"] == 4
    assert report["removed"] == 0
    assert report["missing_field"] == 1 and report["missing_field_ids"] == [ids[3]]
    assert report["groups"]["a.png"] == {"kept": ids[0], "removed": [ids[2], ids[4]]}
    assert report["groups"]["b.png"] == {"kept": ids[1], "removed": [ids[7]]}
    assert report["groups"]["7"] == {"kept": ids[5], "removed": [ids[6]]}

    start = admin.last_request_id()
    applied = apply_dedupe(plan)
    assert applied["removed"] == 4 and applied["applied"] is True
    deletes = [r for r in admin.requests(start) if r["method"] == "DELETE"]
    assert len(deletes) == 1  # one batched unlink, no per-subject membership GETs
    remaining = sorted(int(s.id) for s in Subject.where(subject_set_id=set_id, page_size=100))
    assert remaining == sorted([ids[0], ids[1], ids[3], ids[5]])
    # Unlinked, not deleted: the subjects still exist.
    assert all(Subject.find(sid) for sid in (ids[2], ids[4], ids[6], ids[7]))

    again = plan_dedupe(set_id, "filename").report()
    assert again["duplicates"] == 0 and again["unique"] == 3 and again["missing_field"] == 1


def test_keep_newest_keeps_the_latest_subject(client) -> None:
    set_id, ids = make_set([{"k": "v"}, {"k": "v"}, {"k": "v"}])
    plan = plan_dedupe(set_id, "k", keep="newest")
    # The sandbox may give several subjects the same created_at; the newest (or, on a tie, the lowest id) stays.
    subjects = {int(s.id): s.raw["created_at"] for s in Subject.where(subject_set_id=set_id, page_size=100)}
    newest = max(subjects.values())
    expected = min(sid for sid, created in subjects.items() if created == newest)
    assert plan.groups["v"].kept == expected
    assert sorted([plan.groups["v"].kept, *plan.groups["v"].removed]) == sorted(ids)


def test_more_than_one_page_and_more_than_one_batch(client, demo_sandbox) -> None:
    set_id, ids = make_set([{"filename": f"f{i % 3}"} for i in range(105)] + [{"filename": f"u{i}"} for i in range(100)])
    admin = demo_sandbox.admin
    plan = plan_dedupe(set_id, "filename")
    assert plan.total == 205
    assert len(plan.to_remove) == 102
    start = admin.last_request_id()
    apply_dedupe(plan)
    assert len([r for r in admin.requests(start) if r["method"] == "DELETE"]) == 2
    assert len(list(Subject.where(subject_set_id=set_id, page_size=100))) == 103
    assert plan_dedupe(set_id, "filename").to_remove == []


@pytest.mark.parametrize("args, message", [
    ({"subject_set_id": 987654, "field": "filename"}, "subject set 987654 does not exist"),
    ({"subject_set_id": "abc", "field": "filename"}, "is not a number"),
    ({"subject_set_id": None, "field": "filename", "keep": "middle"}, "keep must be one of oldest, newest"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(client, demo_sandbox, args, message) -> None:
    set_ids = all_set_ids()
    before = snapshot(demo_sandbox.admin, set_ids)
    with pytest.raises(ConfigurationError, match=message):
        plan_dedupe(args["subject_set_id"], args["field"], keep=args.get("keep", "oldest"))
    assert snapshot(demo_sandbox.admin, set_ids) == before


def test_cli_dry_run_then_apply(client, demo_config, demo_sandbox, monkeypatch, capsys) -> None:
    set_id, ids = make_set([{"filename": "a"}, {"filename": "a"}])
    monkeypatch.setenv("PANOPTES_ENDPOINT", demo_config.endpoint)
    monkeypatch.setenv("PANOPTES_USERNAME", demo_config.username)
    monkeypatch.setenv("PANOPTES_PASSWORD", demo_config.password)
    before = snapshot(demo_sandbox.admin, [set_id])
    assert main(["subjects", "dedupe", "--subject-set", str(set_id), "--field", "filename", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicates"] == 1 and report["removed"] == 0
    assert snapshot(demo_sandbox.admin, [set_id]) == before
    assert main(["subjects", "dedupe", "--subject-set", str(set_id), "--field", "filename", "--apply"]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert [int(s.id) for s in Subject.where(subject_set_id=set_id, page_size=100)] == [ids[0]]
    assert main(["subjects", "dedupe", "--subject-set", "987654", "--field", "filename"]) == 2
    assert "does not exist" in capsys.readouterr().err

"""upload_subjects against the sandbox: parallel, resumable after a failure, never twice, no empty set left."""

from __future__ import annotations

import collections

import panoptes_client.panoptes
import panoptes_client.subject
import pytest
import requests
from panoptes_client import Project, Subject, Workflow

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.panoptes import connect
from zooflow.sandbox import seed
from zooflow.subjects.upload import UploadItem, find_subject_set, upload_subjects

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a4944415408d763f80f00010101001b0a1e3f"
    "0000000049454e44ae426082"
)


@pytest.fixture()
def items(tmp_path) -> list[UploadItem]:
    out = []
    for i in range(12):
        image = tmp_path / f"item-{i}.png"
        image.write_bytes(PNG)
        out.append(UploadItem(key=f"k{i}", metadata={"#pool_id": f"k{i}", "!hidden": i, "shown": "yes"}, files=(image,)))
    return out


@pytest.fixture()
def client(demo_config, demo_sandbox, monkeypatch):
    monkeypatch.setattr(panoptes_client.panoptes, "RETRY_BACKOFF_INTERVAL", 1)
    monkeypatch.setattr(panoptes_client.subject, "RETRY_BACKOFF_INTERVAL", 1)
    demo_sandbox.admin.configure(fail_next=[], fault_rate=0)
    with connect(demo_config) as client:
        yield client
    demo_sandbox.admin.configure(fail_next=[])


def members(set_id: int) -> collections.Counter:
    return collections.Counter(s.metadata["#pool_id"] for s in Subject.where(subject_set_id=set_id, page_size=100))


def test_a_failure_mid_upload_then_a_rerun_gives_exactly_one_subject_per_item(client, demo_sandbox, items, tmp_path) -> None:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    workflow = next(Workflow.where(project_id=project.id))
    journal = tmp_path / "journal.jsonl"
    # 20 refused media PUTs: each failing item burns 4 attempts, so about 5 of the 12 fail for good.
    demo_sandbox.admin.configure(fail_next=[{"method": "PUT", "path_regex": "^/uploads/", "status": 500, "count": 20}])
    with pytest.raises(PanoptesError, match=r"could not be uploaded .* kept for the rerun"):
        upload_subjects(project, "al round A", items, key_field="#pool_id", journal_path=journal, workflow=workflow)
    assert find_subject_set(project, "al round A") is None  # no empty set left behind
    survivors = len(journal.read_text().splitlines())
    assert 0 < survivors < len(items)

    report = upload_subjects(project, "al round A", items, key_field="#pool_id", journal_path=journal, workflow=workflow)
    assert (report.resumed, report.created, report.linked) == (survivors, len(items) - survivors, len(items))
    assert members(report.subject_set_id) == collections.Counter({item.key: 1 for item in items})
    assert str(report.subject_set_id) in Workflow.find(workflow.id).raw["links"]["subject_sets"]

    again = upload_subjects(project, "al round A", items, key_field="#pool_id", journal_path=journal, workflow=workflow)
    assert (again.created_set, again.already_linked, again.created, again.linked) == (False, len(items), 0, 0)
    assert again.subject_ids == report.subject_ids
    subject = Subject.find(report.subject_ids["k3"])
    assert subject.metadata == {"#pool_id": "k3", "!hidden": 3, "shown": "yes"}
    assert requests.get(next(iter(subject.locations[0].values())), timeout=10).content == PNG


def test_a_rerun_after_the_set_was_half_linked_links_only_the_rest(client, items, tmp_path) -> None:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    first = upload_subjects(project, "al round B", items[:5], key_field="#pool_id", journal_path=tmp_path / "j.jsonl")
    report = upload_subjects(project, "al round B", items, key_field="#pool_id", journal_path=tmp_path / "j.jsonl")
    assert (report.subject_set_id, report.already_linked, report.created) == (first.subject_set_id, 5, 7)
    assert sum(members(report.subject_set_id).values()) == 12


def test_repeated_keys_and_unknown_media_are_refused_before_any_change(client, demo_sandbox, items, tmp_path) -> None:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    before = demo_sandbox.admin.state()
    with pytest.raises(ConfigurationError, match="must be unique; repeated: \\['k0'\\]"):
        upload_subjects(project, "al round C", [items[0], items[0]], key_field="#pool_id", journal_path=tmp_path / "j")
    odd = tmp_path / "notes.docx"
    odd.write_bytes(b"x")
    with pytest.raises(ConfigurationError, match="notes.docx: Panoptes does not accept"):
        upload_subjects(project, "al round C", [UploadItem("z", {}, (odd,))], key_field="#pool_id", journal_path=tmp_path / "j")
    after = demo_sandbox.admin.state()
    assert (after["subjects"], after["subject_sets"]) == (before["subjects"], before["subject_sets"])
    assert find_subject_set(project, "al round C") is None


def test_server_errors_creating_the_set_are_retried_to_exactly_one_set(client, demo_sandbox, items, tmp_path) -> None:
    demo_sandbox.admin.configure(fail_next=[{"method": "POST", "path_regex": "^/api/subject_sets$", "status": 503, "count": 3}])
    before = demo_sandbox.admin.state()["subject_sets"]
    report = upload_subjects(Project.find(slug=seed.DEMO_PROJECT_SLUG), "retried set", items, key_field="#pool_id",
                             journal_path=tmp_path / "journal.jsonl")
    assert demo_sandbox.admin.settings()["fail_next"] == []  # all three 503s were served
    assert demo_sandbox.admin.state()["subject_sets"] == before + 1
    assert report.created_set and report.linked == len(items)

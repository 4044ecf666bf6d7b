"""E1-E3: export requests, descriptions, the 24-hour rule, signed downloads, ranges and CSV layouts."""

from __future__ import annotations

import gzip
import json
import re

import pytest
import requests
from contract_support import (
    csv_rows, linked_workflow_with_subjects, make_set, make_subjects, make_workflow, raw_bytes, stays_creating,
    unique, wait_ready,
)
from panoptes_client import Panoptes, Project, SubjectSet, Workflow
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed
from zooflow.sandbox.csv_export import CLASSIFICATION_COLUMNS, SUBJECT_COLUMNS, WORKFLOW_COLUMNS


def _classified_project(project, admin, login):
    workflow, subject_set, subjects = linked_workflow_with_subjects(
        project, 2, lambda i: {"#pool_id": i, "name": f"s{i}"})
    rows = [{"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": "Cosmic Ray",
             "created_at": f"2024-03-0{day}T08:00:0{day}Z", "user_login": login} for day in (1, 2)]
    rows.append({"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": "Other",
                 "created_at": "2024-03-03T09:30:00Z"})
    rows.append({"workflow_id": workflow.id, "subject_id": subjects[1].id, "answer": "Point Source",
                 "created_at": "2024-03-04T10:00:00Z"})
    ids = admin.add_classifications(rows)
    return workflow, subject_set, subjects, ids


EXPORTS = [("projects", "classifications"), ("projects", "subjects"), ("projects", "workflows"),
           ("workflows", "classifications"), ("subject_sets", "classifications")]
COLUMNS = {"classifications": CLASSIFICATION_COLUMNS, "subjects": SUBJECT_COLUMNS, "workflows": WORKFLOW_COLUMNS}


@pytest.mark.parametrize("resource, export_type", EXPORTS)
def test_every_export_is_requested_described_and_downloaded(owner, project, admin, resource, export_type) -> None:
    """E1-E3 for each export the project needs: 404 before, 201 creating, 200 ready with meta, a gzip CSV."""
    workflow, subject_set, _ = linked_workflow_with_subjects(project, 1)
    exportable = {"projects": project, "workflows": workflow, "subject_sets": subject_set}[resource]
    singular, path = resource[:-1], f"{exportable.id}/{export_type}_export"
    with pytest.raises(PanoptesAPIException, match=f"^No {export_type}_export exists for {singular} #{exportable.id}$"):
        exportable.describe_export(export_type)

    since = admin.last_request_id()
    requested, post_etag = type(exportable).http_post(path, json={"media": {"content_type": "text/csv"}})
    (post,) = [r for r in admin.requests(since_id=since) if r["method"] == "POST"]
    assert (post["path"], post["status"]) == (f"/api/{resource}/{path}", 201)
    (medium,) = requested["media"]
    assert post_etag
    assert (medium["media_type"], medium["href"], medium["content_type"]) == (
        f"{singular}_{export_type}_export", f"/{resource}/{path}", "text/csv")
    assert medium["metadata"] == {"recipients": [owner.logged_in_user_id], "state": "creating"}
    assert medium["links"]["linked"] == {"href": f"/{resource}/{exportable.id}", "id": exportable.id, "type": resource}
    assert medium["src"].startswith(owner.endpoint + "/blob/exports/")

    wait_ready(exportable, export_type)
    described, describe_etag = type(exportable).http_get(path)
    (ready,) = described["media"]
    assert (ready["id"], ready["metadata"]["state"]) == (medium["id"], "ready")
    assert ready["updated_at"] > medium["updated_at"] and describe_etag and describe_etag != post_etag
    meta = described["meta"]["media"]
    assert (meta["count"], meta["page"], meta["next_href"]) == (1, 1, None)

    download = raw_bytes(ready["src"])
    assert download.status_code == 200
    assert (download.headers["Content-Type"], download.headers["Content-Encoding"]) == ("text/csv", "gzip")
    assert int(download.headers["Content-Length"]) == len(download.raw_bytes)
    disposition = download.headers["Content-Disposition"]
    assert re.fullmatch(rf'attachment; filename="[a-z0-9-]+-{export_type}\.csv"', disposition)
    header = gzip.decompress(download.raw_bytes).decode("utf-8").split("\n", 1)[0]
    assert header.split(",") == COLUMNS[export_type]


def test_the_24_hour_rule_counts_per_resource_and_type(owner, project, admin) -> None:
    workflow = make_workflow(project)
    project.generate_export("classifications")
    wait_ready(project, "classifications")
    since = admin.last_request_id()
    project.generate_export("subjects")  # another type of the same project
    workflow.generate_export("classifications")  # the same type of another resource
    project.generate_export("classifications")  # a repeat: accepted, then dropped
    assert wait_ready(project, "subjects") and wait_ready(workflow, "classifications")
    assert stays_creating(project, "classifications", seconds=0.5)
    details = [(r["path"].rsplit("/", 2)[-2:], r["detail"]) for r in admin.requests(since_id=since)
               if r["method"] == "POST"]
    assert details == [([project.id, "subjects_export"], "export accepted"),
                       ([workflow.id, "classifications_export"], "export accepted"),
                       ([project.id, "classifications_export"], "export silently cancelled (rate limit)")]


def test_describe_before_any_request_is_404(owner, project) -> None:
    workflow = make_workflow(project)
    subject_set = make_set(project)
    for exportable, kind in ((project, "project"), (workflow, "workflow"), (subject_set, "subject_set")):
        with pytest.raises(PanoptesAPIException, match=f"No classifications_export exists for {kind} #{exportable.id}"):
            exportable.describe_export("classifications")


def test_classification_export_content(owner, project, admin) -> None:
    login = unique("volunteer").replace(" ", "-")
    workflow, _, subjects, ids = _classified_project(project, admin, login)
    requested = project.generate_export("classifications")
    (medium,) = requested["media"]
    assert medium["metadata"] == {"recipients": [owner.logged_in_user_id], "state": "creating"}
    assert (medium["media_type"], medium["href"], medium["content_type"]) == (
        "project_classifications_export", f"/projects/{project.id}/classifications_export", "text/csv")
    assert medium["links"]["linked"] == {"href": f"/projects/{project.id}", "id": project.id, "type": "projects"}
    wait_ready(project, "classifications")

    download = project.get_export("classifications")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/csv"
    assert download.headers["Content-Encoding"] == "gzip"
    slug_name = project.slug.split("/")[1]
    assert download.headers["Content-Disposition"] == f'attachment; filename="{slug_name}-classifications.csv"'
    assert download.headers["Accept-Ranges"] == "bytes" and download.headers["ETag"]
    exact = raw_bytes(download.url)
    assert exact.raw_bytes[:3] == b"\x1f\x8b\x08"  # gzip on the wire
    assert int(download.headers["Content-Length"]) == len(exact.raw_bytes) < len(gzip.decompress(exact.raw_bytes))
    rows = csv_rows(download)
    assert list(rows[0]) == CLASSIFICATION_COLUMNS
    assert [r["classification_id"] for r in rows] == ids
    named, _, anonymous, other = rows
    user = next(iter(owner.get("/users", params={"login": login})[0]["users"]))
    assert (named["user_name"], named["user_id"]) == (login, user["id"])
    assert re.fullmatch(r"[0-9a-f]{20}", named["user_ip"])
    assert anonymous["user_name"] == f"not-logged-in-{anonymous['user_ip']}" and anonymous["user_id"] == ""
    assert (named["workflow_id"], named["workflow_name"], named["workflow_version"]) == (
        workflow.id, workflow.display_name, "1.1")
    assert (named["created_at"], anonymous["created_at"]) == ("2024-03-01 08:00:01 UTC", "2024-03-03 09:30:00 UTC")
    assert named["gold_standard"] == named["expert"] == ""
    assert json.loads(named["annotations"]) == [
        {"task": "T0", "task_label": seed.DEMO_QUESTION, "value": "Cosmic Ray"}]
    assert json.loads(other["annotations"])[0]["value"] == "Point Source"
    metadata = json.loads(named["metadata"])
    assert {"started_at", "finished_at", "user_agent", "viewport", "source"} <= set(metadata)
    retired_data = json.loads(named["subject_data"])
    assert list(retired_data) == [subjects[0].id]
    assert list(retired_data[subjects[0].id]) == ["retired", "#pool_id", "name"]
    assert retired_data[subjects[0].id]["retired"]["retirement_reason"] == "classification_count"
    assert retired_data[subjects[0].id]["retired"]["classifications_count"] == 3
    assert json.loads(other["subject_data"]) == {subjects[1].id: {"retired": None, "#pool_id": 1, "name": "s1"}}
    assert named["subject_ids"] == subjects[0].id
    assert ', "' not in named["metadata"] and "\n" not in named["annotations"]  # compact JSON, one line


def test_the_24_hour_rule_and_the_reused_medium(owner, project, admin) -> None:
    workflow, _, subjects, _ = _classified_project(project, admin, unique("v").replace(" ", "-"))
    first = project.generate_export("classifications")["media"][0]
    wait_ready(project, "classifications")
    before = csv_rows(project.get_export("classifications"))
    admin.add_classifications([{"workflow_id": workflow.id, "subject_id": subjects[1].id, "answer": "Other",
                                "created_at": "2024-03-05T00:00:00Z"}])

    since = admin.last_request_id()
    again = project.generate_export("classifications")["media"][0]
    assert again["id"] == first["id"] and again["updated_at"] > first["updated_at"]
    assert again["metadata"]["state"] == "creating"
    assert stays_creating(project, "classifications", seconds=1.0)  # silently cancelled
    assert len(csv_rows(project.get_export("classifications"))) == len(before)  # src still serves the old file
    (post,) = [r for r in admin.requests(since_id=since) if r["method"] == "POST"]
    assert (post["status"], post["detail"]) == (201, "export silently cancelled (rate limit)")

    admin.advance_clock(hours=25)
    project.generate_export("classifications")
    wait_ready(project, "classifications")
    assert len(csv_rows(project.get_export("classifications"))) == len(before) + 1


def test_stuck_exports_never_finish(owner, project, configure, admin) -> None:
    workflow = make_workflow(project)
    configure(export_stuck=True)
    workflow.generate_export("classifications")
    assert stays_creating(workflow, "classifications", seconds=0.8)
    configure(export_stuck=False)
    workflow.generate_export("classifications")  # within 24 h of the stuck (but accepted) request
    assert stays_creating(workflow, "classifications", seconds=0.5)
    admin.advance_clock(hours=24)
    workflow.generate_export("classifications")
    assert wait_ready(workflow, "classifications")["media"][0]["media_type"] == "workflow_classifications_export"


def test_src_urls_expire_and_a_fresh_describe_fixes_them(owner, project, admin, configure) -> None:
    configure(url_lifetime=60)
    project.generate_export("workflows")
    src = wait_ready(project, "workflows")["media"][0]["src"]
    assert re.fullmatch(rf"{owner.endpoint}/blob/exports/[0-9a-f-]{{36}}\.csv\?se=\d+&sig=[0-9a-f]{{64}}", src)
    assert requests.get(src).status_code == 200
    forged = requests.get(re.sub(r"se=(\d+)", lambda m: f"se={int(m[1]) + 1000}", src))
    assert forged.status_code == 403 and b"<Code>AuthenticationFailed</Code>" in forged.content
    admin.advance_clock(seconds=61)
    expired = project.get_export("workflows", generate=False)  # describes again: a fresh URL
    assert expired.status_code == 200
    stale = requests.get(src)
    assert stale.status_code == 403 and stale.headers["Content-Type"] == "application/xml"
    assert b"Signed expiry time" in stale.content


def test_range_requests_concatenate_to_the_whole_file(owner, project, admin) -> None:
    _classified_project(project, admin, unique("r").replace(" ", "-"))
    project.generate_export("classifications")
    src = wait_ready(project, "classifications")["media"][0]["src"]
    whole = raw_bytes(src).raw_bytes
    assert whole[:3] == b"\x1f\x8b\x08" and len(whole) > 300
    head = raw_bytes(src, {"Range": "bytes=0-99"})
    middle = raw_bytes(src, {"Range": "bytes=100-199"})
    tail = raw_bytes(src, {"Range": "bytes=200-"})
    assert (head.status_code, head.headers["Content-Range"]) == (206, f"bytes 0-99/{len(whole)}")
    assert head.headers["Content-Length"] == "100"
    assert head.raw_bytes + middle.raw_bytes + tail.raw_bytes == whole
    assert raw_bytes(src, {"Range": "bytes=-50"}).raw_bytes == whole[-50:]
    unsatisfiable = requests.get(src, headers={"Range": f"bytes={len(whole)}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert gzip.decompress(whole).decode("utf-8").startswith("classification_id,user_name,")


def test_subjects_export_has_a_row_per_subject_set_and_workflow(owner, project) -> None:
    first, second = make_workflow(project), make_workflow(project)
    linked, unlinked = make_set(project), make_set(project)
    in_both, only_unlinked, loose = make_subjects(project, 3, lambda i: {"i": i})
    linked.add([in_both])
    unlinked.add([in_both, only_unlinked])
    first.add_subject_sets(linked)
    second.add_subject_sets(linked)
    first.retire_subjects(in_both, reason="nothing_here")
    project.generate_export("subjects")
    wait_ready(project, "subjects")
    download = project.get_export("subjects")
    assert download.headers["Content-Disposition"].endswith('-subjects.csv"')
    rows = csv_rows(download)
    assert list(rows[0]) == SUBJECT_COLUMNS
    placements = [(r["subject_id"], r["subject_set_id"], r["workflow_id"], r["retirement_reason"]) for r in rows]
    assert placements == [
        (in_both.id, linked.id, first.id, "nothing_here"), (in_both.id, linked.id, second.id, ""),
        (in_both.id, unlinked.id, "", ""), (only_unlinked.id, unlinked.id, "", ""), (loose.id, "", "", ""),
    ]
    assert json.loads(rows[0]["metadata"]) == {"i": 0}
    assert list(json.loads(rows[0]["locations"])) == ["0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows[0]["retired_at"])
    assert rows[1]["retired_at"] == "" and rows[1]["classifications_count"] == "0"


def test_workflows_export_has_a_row_per_version_with_the_clients_own_wait(owner, project) -> None:
    workflow = Workflow.find(make_workflow(project, name="Versioned").id)
    workflow.tasks = {seed.DEMO_TASK: {**seed.DEMO_TASKS[seed.DEMO_TASK], "required": False}}
    workflow.save()
    download = project.get_export("workflows", generate=True, wait_timeout=15)
    rows = csv_rows(download)
    assert list(rows[0]) == WORKFLOW_COLUMNS
    assert [(r["workflow_id"], r["version"], r["minor_version"]) for r in rows] == [
        (workflow.id, "1", "1"), (workflow.id, "2", "1")]
    tasks = json.loads(rows[0]["tasks"])
    strings = json.loads(rows[0]["strings"])
    assert tasks["T0"]["question"] == "T0.question" and strings["T0.question"] == seed.DEMO_QUESTION
    assert strings["T0.answers.2.label"] == "Cosmic Ray"
    assert json.loads(rows[0]["retirement"]) == {"criteria": "classification_count", "options": {"count": 3}}
    assert (rows[0]["active"], rows[0]["display_name"], rows[0]["first_task"]) == ("true", "Versioned", "T0")


def test_workflow_and_subject_set_exports_are_scoped(owner, project, admin) -> None:
    workflow, subject_set, subjects, ids = _classified_project(project, admin, unique("w").replace(" ", "-"))
    other_set = make_set(project)
    other_set.add(subjects[1])
    workflow.generate_export("classifications")
    SubjectSet.find(other_set.id).generate_export("classifications")
    wait_ready(workflow, "classifications")
    workflow_rows = csv_rows(Workflow.find(workflow.id).get_export("classifications"))
    assert [r["classification_id"] for r in workflow_rows] == ids
    set_export = wait_ready(SubjectSet.find(other_set.id), "classifications")
    assert set_export["media"][0]["media_type"] == "subject_set_classifications_export"
    set_rows = csv_rows(requests.get(set_export["media"][0]["src"]))
    assert [r["subject_ids"] for r in set_rows] == [subjects[1].id]


def test_exports_need_the_owner(sandbox, owner, project, stranger) -> None:
    project.generate_export("classifications")
    with Panoptes(endpoint=sandbox.endpoint):
        with pytest.raises(PanoptesAPIException, match="You must be logged in"):
            Project(project.raw, project.etag).generate_export("classifications")
    with stranger:
        with pytest.raises(PanoptesAPIException, match=f"Could not find project with id='{project.id}'"):
            Project(project.raw, project.etag).generate_export("classifications")
        with pytest.raises(PanoptesAPIException, match=f"No classifications_export exists for project #{project.id}"):
            Project(project.raw, project.etag).describe_export("classifications")


def test_workflow_contents_exports_are_gone(owner, project, admin) -> None:
    since = admin.last_request_id()
    assert project.generate_export("workflow_contents") is None
    assert [r["status"] for r in admin.requests(since_id=since)] == [410]

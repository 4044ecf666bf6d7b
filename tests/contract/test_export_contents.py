"""E3: what the export files hold: the CSV layouts, the rows each dump scope selects, and byte ranges.

Each test names the Panoptes source it follows; the layouts are those of the real samples in
shared/fixtures/real-exports.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3

import requests
from contract_support import (
    csv_rows, linked_workflow_with_subjects, make_set, make_subjects, make_workflow, raw_bytes, unique, wait_ready,
)
from panoptes_client import SubjectSet, Workflow

from zooflow.sandbox import seed
from zooflow.sandbox.app import DATABASE_FILE
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


def test_subjects_export_has_a_row_per_subject_set_and_workflow(sandbox, owner, project, admin) -> None:
    """app/models/csv_dumps/subject_scope.rb: subjects joined to the project's sets; none outside a set,
    and no filter on deletion. Metadata JSON is escaped as Rails' to_json does."""
    first, second = make_workflow(project), make_workflow(project)
    linked, unlinked = make_set(project), make_set(project)
    in_both, only_unlinked, loose, deleted = make_subjects(project, 4, lambda i: {"i": i, "html": "<b>&"})
    linked.add([in_both])
    unlinked.add([in_both, only_unlinked, deleted])
    first.add_subject_sets(linked)
    second.add_subject_sets(linked)
    first.retire_subjects(in_both, reason="nothing_here")
    # Panoptes deactivates a deleted subject and leaves it in its sets; the sandbox's DELETE also takes it
    # out of them, so the deletion is made in its database.
    with sqlite3.connect(sandbox.data_dir / DATABASE_FILE, timeout=30) as db:
        db.execute("UPDATE subjects SET deleted_at = updated_at WHERE id = ?", (int(deleted.id),))
    admin.settle()  # the statuses and the retirement come from background jobs
    project.generate_export("subjects")
    wait_ready(project, "subjects")
    download = project.get_export("subjects")
    assert download.headers["Content-Disposition"].endswith('-subjects.csv"')
    rows = csv_rows(download)
    assert list(rows[0]) == SUBJECT_COLUMNS
    placements = [(r["subject_id"], r["subject_set_id"], r["workflow_id"], r["retirement_reason"]) for r in rows]
    assert placements == [
        (in_both.id, linked.id, first.id, "nothing_here"), (in_both.id, linked.id, second.id, ""),
        (in_both.id, unlinked.id, "", ""), (only_unlinked.id, unlinked.id, "", ""), (deleted.id, unlinked.id, "", ""),
    ]
    assert loose.id not in {r["subject_id"] for r in rows}
    assert rows[0]["metadata"] == '{"i":0,"html":"\\u003cb\\u003e\\u0026"}'
    assert json.loads(rows[0]["metadata"]) == {"i": 0, "html": "<b>&"}
    assert list(json.loads(rows[0]["locations"])) == ["0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows[0]["retired_at"])
    assert rows[1]["retired_at"] == "" and rows[1]["classifications_count"] == "0"


def test_workflows_export_has_a_row_per_version_with_the_clients_own_wait(owner, project) -> None:
    """lib/formatter/csv/workflow.rb: 16 headers (no aggregation); display_name read from the workflow."""
    workflow = Workflow.find(make_workflow(project, name="Versioned").id)
    workflow.tasks = {seed.DEMO_TASK: {**seed.DEMO_TASKS[seed.DEMO_TASK], "required": False}}
    workflow.save()
    workflow = Workflow.find(workflow.id)
    workflow.display_name = "Renamed"
    workflow.save()
    download = project.get_export("workflows", generate=True, wait_timeout=15)
    rows = csv_rows(download)
    assert list(rows[0]) == WORKFLOW_COLUMNS and len(WORKFLOW_COLUMNS) == 16 and "aggregation" not in rows[0]
    assert [(r["workflow_id"], r["version"], r["minor_version"]) for r in rows][:2] == [
        (workflow.id, "1", "1"), (workflow.id, "2", "1")]
    assert {r["display_name"] for r in rows} == {"Renamed"}  # the current name, on the old versions too
    tasks = json.loads(rows[0]["tasks"])
    strings = json.loads(rows[0]["strings"])
    assert tasks["T0"]["question"] == "T0.question" and strings["T0.question"] == seed.DEMO_QUESTION
    assert strings["T0.answers.2.label"] == "Cosmic Ray"
    assert json.loads(rows[0]["retirement"]) == {"criteria": "classification_count", "options": {"count": 3}}
    assert (rows[0]["active"], rows[0]["first_task"]) == ("true", "T0")


def test_workflow_and_subject_set_exports_are_scoped(sandbox, owner, project, admin) -> None:
    """app/models/subject_set.rb#classifications: the classifications of the workflows linked to the set now,
    joined to its members, so a classification naming two members appears twice."""
    workflow, subject_set, subjects, ids = _classified_project(project, admin, unique("w").replace(" ", "-"))
    # No route makes multi-subject classifications, so the last one is given a second subject in the database.
    with sqlite3.connect(sandbox.data_dir / DATABASE_FILE, timeout=30) as db:
        db.execute("INSERT INTO classification_subjects (classification_id, subject_id) VALUES (?, ?)",
                   (int(ids[3]), int(subjects[0].id)))
    other_set = make_set(project)
    other_set.add(subjects[1])
    workflow.generate_export("classifications")
    subject_set.generate_export("classifications")
    SubjectSet.find(other_set.id).generate_export("classifications")
    wait_ready(workflow, "classifications")
    workflow_rows = csv_rows(Workflow.find(workflow.id).get_export("classifications"))
    assert [r["classification_id"] for r in workflow_rows] == ids
    set_rows = csv_rows(requests.get(wait_ready(subject_set, "classifications")["media"][0]["src"]))
    assert [r["classification_id"] for r in set_rows] == [*ids, ids[3]]
    assert set_rows[-1]["subject_ids"] == f"{subjects[0].id};{subjects[1].id}"
    unlinked = wait_ready(SubjectSet.find(other_set.id), "classifications")
    assert unlinked["media"][0]["media_type"] == "subject_set_classifications_export"
    assert csv_rows(requests.get(unlinked["media"][0]["src"])) == []  # no workflow is linked to it

    workflow.add_subject_sets(other_set)
    admin.advance_clock(hours=25)
    SubjectSet.find(other_set.id).generate_export("classifications")
    linked = wait_ready(SubjectSet.find(other_set.id), "classifications")
    assert [r["classification_id"] for r in csv_rows(requests.get(linked["media"][0]["src"]))] == [ids[3]]


def test_classification_exports_hold_completed_classifications_only(owner, project, admin) -> None:
    """app/models/csv_dumps/classification_scope.rb exports ``classifications.complete`` only; the
    incremental API (classifications_controller.rb#project) serves the incomplete ones as well."""
    workflow, _, subjects, ids = _classified_project(project, admin, seed.DEMO_USER)
    (incomplete,) = admin.add_classifications([{"workflow_id": workflow.id, "subject_id": subjects[1].id,
                                                "answer": "Other", "created_at": "2024-03-05T11:00:00Z",
                                                "user_login": seed.DEMO_USER, "completed": False}])
    served = {r["id"] for r in owner.get("/classifications/project", params={"project_id": project.id})[0]
              ["classifications"]}
    assert incomplete in served
    for resource in (project, workflow):
        resource.generate_export("classifications")
        wait_ready(resource, "classifications")
        exported = {row["classification_id"] for row in csv_rows(resource.get_export("classifications"))}
        assert exported == set(ids), resource

"""E1-E3: export requests, descriptions, the rate limiter, failed jobs, signed downloads and headers.

The limiter and cleanup tests follow the current Panoptes server: app/workers/concerns/rate_limit_dump_worker.rb,
config/initializers/rate_limit_dump_worker.rb, app/workers/requeue_export_job_worker.rb and config/schedule.yml.
They move the sandbox clock instead of sleeping; the short waits left are for the sandbox's worker thread.
"""

from __future__ import annotations

import gzip
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from contract_support import (
    csv_rows, linked_workflow_with_subjects, make_set, make_workflow, raw_bytes, stays_creating, wait_ready,
)
from panoptes_client import Panoptes, Project, SubjectSet
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox.csv_export import CLASSIFICATION_COLUMNS, SUBJECT_COLUMNS, WORKFLOW_COLUMNS

CLEANUP_SECONDS = 12 * 3600


def judged(exportable, export_type: str) -> dict:
    """The medium once the limiter has judged the newest job: a started job has written its job_id;
    a refused one is cancelled silently and leaves the metadata the request wrote."""
    deadline = time.monotonic() + 1.0
    while True:
        metadata = exportable.describe_export(export_type)["media"][0]["metadata"]
        if "job_id" in metadata or time.monotonic() > deadline:
            return metadata
        time.sleep(0.05)


def refused(exportable, export_type: str) -> bool:
    return stays_creating(exportable, export_type, seconds=0.5) and "job_id" not in judged(exportable, export_type)


def wait_state(exportable, export_type: str, state: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while (medium := exportable.describe_export(export_type)["media"][0])["metadata"]["state"] != state:
        assert time.monotonic() < deadline, f"{export_type} export not {state} after {timeout}s: {medium}"
        time.sleep(0.05)
    return medium


def next_cleanup(moment: datetime) -> datetime:
    """The first 00:00 or 12:00 UTC after ``moment`` (config/schedule.yml: "0 0,12 * * *")."""
    return datetime.fromtimestamp((moment.timestamp() // CLEANUP_SECONDS + 1) * CLEANUP_SECONDS, tz=timezone.utc)


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


def test_the_limit_counts_per_resource_and_type(owner, project, admin) -> None:
    workflow = make_workflow(project)
    project.generate_export("classifications")
    wait_ready(project, "classifications")
    since = admin.last_request_id()
    project.generate_export("subjects")  # another type of the same project
    workflow.generate_export("classifications")  # the same type of another resource
    project.generate_export("classifications")  # a repeat: queued, then cancelled when its job starts
    assert wait_ready(project, "subjects") and wait_ready(workflow, "classifications")
    assert refused(project, "classifications")
    posts = [(r["path"].rsplit("/", 2)[-2:], r["status"], r["detail"]) for r in admin.requests(since_id=since)
             if r["method"] == "POST"]
    assert posts == [([project.id, "subjects_export"], 201, "export job queued"),
                     ([workflow.id, "classifications_export"], 201, "export job queued"),
                     ([project.id, "classifications_export"], 201, "export job queued")]


def test_the_limiter_judges_jobs_at_start_and_counts_refused_attempts(owner, project, admin) -> None:
    """rate_limit_dump_worker.rb: 1 per 86,400 s, 43,200 s apart, rejected attempts tracked (cancel)."""
    workflow, _, subjects = linked_workflow_with_subjects(project, 1)
    one = {"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": "Other"}
    admin.add_classifications([one | {"created_at": "2024-03-04T00:00:00Z"}])
    first = project.generate_export("classifications")["media"][0]
    assert first["metadata"] == {"recipients": [owner.logged_in_user_id], "state": "creating"}  # no job yet
    started = judged(project, "classifications")
    assert re.fullmatch(r"[0-9a-f]{24}", started["job_id"]) and started["state"] in ("creating", "ready")
    wait_ready(project, "classifications")
    before = csv_rows(project.get_export("classifications"))
    admin.add_classifications([one | {"created_at": "2024-03-05T00:00:00Z"}])

    admin.advance_clock(hours=13)  # past the 12 h gap, inside the 24 h window
    again = project.generate_export("classifications")["media"][0]
    assert again["id"] == first["id"] and again["updated_at"] > first["updated_at"]
    assert again["metadata"] == {"recipients": [owner.logged_in_user_id], "state": "creating"}
    assert refused(project, "classifications")
    assert len(csv_rows(project.get_export("classifications"))) == len(before)  # src still serves the old file

    admin.advance_clock(hours=12)  # 25 h after the export that ran, 12 h after the refused attempt
    project.generate_export("classifications")
    assert refused(project, "classifications")  # the refused attempt counts: the window runs from it

    admin.advance_clock(hours=24)
    project.generate_export("classifications")
    assert "job_id" in judged(project, "classifications")
    wait_ready(project, "classifications")
    assert len(csv_rows(project.get_export("classifications"))) == len(before) + 1


def test_attempts_must_be_the_minimum_gap_apart(owner, project, admin, configure) -> None:
    """rate_limit_dump_worker.rb's min_delay, seen alone by shortening the interval to an hour."""
    configure(export_interval=3600)
    project.generate_export("workflows")
    wait_ready(project, "workflows")
    admin.advance_clock(hours=2)  # out of the 1 h window, but under the 12 h gap
    project.generate_export("workflows")
    assert refused(project, "workflows")
    admin.advance_clock(hours=11, seconds=60)
    project.generate_export("workflows")
    assert refused(project, "workflows")  # 13 h after the export that ran, 11 h after the refused attempt
    admin.advance_clock(hours=12)  # 12 h after that refused attempt too: each one counted
    project.generate_export("workflows")
    assert "job_id" in judged(project, "workflows")
    assert wait_ready(project, "workflows")


def test_a_dead_job_is_marked_failed_at_the_cleanup_and_the_old_file_stays(owner, project, admin, configure) -> None:
    """requeue_export_job_worker.rb at "0 0,12 * * *" (schedule.yml): a job in the dead set fails its medium;
    its EXPORT_MEDIA_TYPES have no subject-set export, which stays 'creating'."""
    _, subject_set, _ = linked_workflow_with_subjects(project, 1)
    project.generate_export("workflows")
    good = raw_bytes(wait_ready(project, "workflows")["media"][0]["src"]).raw_bytes
    cleanup = next_cleanup(admin.now() + timedelta(hours=25))
    admin.set_clock(cleanup - timedelta(minutes=10))
    configure(export_failure_rate=1)
    project.generate_export("workflows")
    subject_set.generate_export("classifications")
    dead = judged(project, "workflows")
    assert dead["state"] == "creating" and "job_id" in dead
    assert "job_id" in judged(subject_set, "classifications")
    assert stays_creating(project, "workflows", seconds=0.3)  # nothing says so before the cleanup runs

    admin.set_clock(cleanup + timedelta(seconds=1))
    failed = wait_state(project, "workflows", "failed")
    assert failed["metadata"] == {"recipients": [owner.logged_in_user_id], "state": "failed", "job_id": dead["job_id"]}
    assert failed["updated_at"].startswith(cleanup.strftime("%Y-%m-%dT%H:%M"))
    assert raw_bytes(failed["src"]).raw_bytes == good  # the last good file is still served
    assert stays_creating(SubjectSet.find(subject_set.id), "classifications", seconds=0.3)

    configure(export_failure_rate=0)
    project.generate_export("workflows")  # 10 minutes after the dead job's attempt
    assert refused(project, "workflows")
    admin.advance_clock(hours=24)
    project.generate_export("workflows")
    assert wait_ready(project, "workflows")


def test_describe_before_any_request_is_404(owner, project) -> None:
    workflow = make_workflow(project)
    subject_set = make_set(project)
    for exportable, kind in ((project, "project"), (workflow, "workflow"), (subject_set, "subject_set")):
        with pytest.raises(PanoptesAPIException, match=f"No classifications_export exists for {kind} #{exportable.id}"):
            exportable.describe_export("classifications")


def test_stuck_exports_never_finish(owner, project, configure, admin) -> None:
    workflow = make_workflow(project)
    configure(export_stuck=True)
    workflow.generate_export("classifications")
    assert "job_id" in judged(workflow, "classifications")  # it started, and counts
    assert stays_creating(workflow, "classifications", seconds=0.8)
    configure(export_stuck=False)
    workflow.generate_export("classifications")  # within 24 h of the stuck (but started) job
    assert refused(workflow, "classifications")
    admin.advance_clock(hours=25)
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


def test_exports_need_the_owner(sandbox, owner, project, stranger, admin) -> None:
    """Without a login the request meets projects_controller.rb's ``require_authentication``: Doorkeeper's empty 401,
    which the client returns as None."""
    project.generate_export("classifications")
    since = admin.last_request_id()
    with Panoptes(endpoint=sandbox.endpoint):
        assert Project(project.raw, project.etag).generate_export("classifications") is None
    assert [(r["status"], r["bytes"]) for r in admin.requests(since_id=since)] == [(401, 0)]
    with stranger:
        with pytest.raises(PanoptesAPIException, match=f"Could not find project with id='{project.id}'"):
            Project(project.raw, project.etag).generate_export("classifications")
        with pytest.raises(PanoptesAPIException, match=f"No classifications_export exists for project #{project.id}"):
            Project(project.raw, project.etag).describe_export("classifications")


def test_workflow_contents_exports_are_gone(owner, project, admin) -> None:
    since = admin.last_request_id()
    assert project.generate_export("workflow_contents") is None
    assert [r["status"] for r in admin.requests(since_id=since)] == [410]

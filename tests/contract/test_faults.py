"""Fault injection: one-shot rules, random faults, latency and cut downloads, as the client meets them."""

from __future__ import annotations

import time

import pytest
import requests
from contract_support import make_set, raw_bytes, wait_ready
from panoptes_client import Panoptes, Project, SubjectSet
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdminError


def test_fail_next_breaks_a_save_once(owner, project, admin, configure) -> None:
    before = admin.state()["faults_injected"]
    configure(fail_next=[{"method": "POST", "path_regex": "^/api/subject_sets$", "count": 1}])
    with pytest.raises(PanoptesAPIException, match="Received HTTP status code 503 from API"):
        make_set(project)  # save() does not retry
    assert make_set(project).id
    assert admin.settings()["fail_next"] == []
    assert admin.state()["faults_injected"] == before + 1


def test_reads_retry_through_transient_errors(owner, project, admin, configure, fast_retries) -> None:
    configure(fail_next=[{"method": "GET", "path_regex": rf"^/api/projects/{project.id}$", "status": 502, "count": 2}])
    since = admin.last_request_id()
    assert Project.find(project.id).id == project.id
    statuses = [(r["status"], r["detail"]) for r in admin.requests(since_id=since)]
    assert statuses == [(502, "injected fault"), (502, "injected fault"), (200, None)]


def test_fault_rate_hits_api_but_never_admin(owner, project, admin, configure) -> None:
    configure(fault_rate=1.0, fault_status=500)
    with pytest.raises(PanoptesAPIException, match="Received HTTP status code 500 from API"):
        Project.http_get(project.id, retry=False)
    assert admin.state()["projects"] >= 1  # admin calls are exempt
    configure(fault_rate=0.0)
    assert Project.http_get(project.id, retry=False)[0]["projects"][0]["id"] == project.id


def test_a_failing_token_request_surfaces_as_an_api_error(sandbox, configure) -> None:
    configure(fail_next=[{"path_regex": "^/oauth/token$", "count": 1}])
    with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD):
        with pytest.raises(PanoptesAPIException, match="Injected fault"):
            Project.find(slug=seed.DEMO_PROJECT_SLUG)
        assert Project.find(slug=seed.DEMO_PROJECT_SLUG).slug == seed.DEMO_PROJECT_SLUG


def test_latency_slows_requests(owner, project, configure) -> None:
    configure(latency_ms=300)
    started = time.monotonic()
    SubjectSet.where(project_id=project.id)
    assert time.monotonic() - started >= 0.3


def test_cut_downloads_resume_with_a_range(owner, project, admin, configure) -> None:
    project.generate_export("workflows")
    src = wait_ready(project, "workflows")["media"][0]["src"]
    whole = raw_bytes(src).raw_bytes
    configure(drop_download_after_bytes=64, drop_download_count=1)
    before = admin.state()["faults_injected"]
    cut = requests.get(src, stream=True)
    assert cut.headers["Content-Length"] == str(len(whole))
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        b"".join(cut.iter_content(chunk_size=1024))
    assert admin.state()["faults_injected"] == before + 1
    assert admin.settings()["drop_download_count"] == 0
    rest = raw_bytes(src, {"Range": "bytes=64-"})
    assert whole[:64] + rest.raw_bytes == whole


def test_blob_faults_reach_get_export_unraised(owner, project, configure) -> None:
    project.generate_export("workflows")
    wait_ready(project, "workflows")
    configure(fail_next=[{"method": "GET", "path_regex": "^/blob/exports/", "count": 1}])
    assert project.get_export("workflows").status_code == 503  # the client does not check the status
    assert project.get_export("workflows").status_code == 200


def test_bad_settings_are_refused(admin) -> None:
    for bad in ({"fault_rate": 2}, {"fail_next": [{"path_regex": "("}]}, {"no_such_setting": 1}):
        with pytest.raises(SandboxAdminError):
            admin.configure(**bad)
    assert admin.settings()["fault_rate"] == 0.0

"""The server around the routes: unknown routes, bad bodies and headers, start-up errors, signals,
and a restart that must lose nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import requests
from contract_support import (
    eventually, make_project, make_set, make_subjects, make_workflow, png_bytes, raw_bytes, stays_creating, unique,
    wait_ready, write_png,
)
from panoptes_client import Panoptes, Project, Subject, SubjectSet, SubjectWorkflowStatus, User, Workflow
from panoptes_client.panoptes import PanoptesAPIException
from panoptes_client.set_member_subject import SetMemberSubject

from zooflow.sandbox import seed
from zooflow.sandbox.process import SandboxProcess

API = {"Accept": "application/vnd.api+json; version=1"}
API_CONTENT_TYPE = "application/vnd.api+json; version=1; charset=utf-8"


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zooflow", "sandbox", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("path, headers", [
    ("/api/no_such_things", API), ("/api/projects/1/no_such_link", API), ("/nothing/here", {}),
    ("/api/projects", {"Accept": "application/json"}),  # /api routes need the versioned Accept header
])
def test_unknown_routes_are_json_404(sandbox, path, headers) -> None:
    response = requests.get(sandbox.endpoint + path, headers=headers)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == API_CONTENT_TYPE
    assert response.json() == {"errors": [{"message": "Not Found"}]}


@pytest.mark.parametrize("method, path", [
    ("OPTIONS", "/api/projects"), ("OPTIONS", "/nothing/here"), ("HEAD", "/api/no_such_things"),
])
def test_methods_without_any_route_are_json_404_too(sandbox, method, path) -> None:
    """Spec 9: every error is JSON, never HTML; a method no route serves is an unknown route."""
    response = requests.request(method, sandbox.endpoint + path, headers=API)
    assert (response.status_code, response.headers["Content-Type"]) == (404, API_CONTENT_TYPE)
    if method != "HEAD":
        assert response.json() == {"errors": [{"message": "Not Found"}]}


def _api(owner: Panoptes, method: str, path: str, *, token: bool = True, **kwargs) -> requests.Response:
    headers = {**API, **({"Authorization": f"Bearer {owner.get_bearer_token()}"} if token else {}),
               **kwargs.pop("headers", {})}
    return requests.request(method, f"{owner.endpoint}/api{path}", headers=headers, **kwargs)


def test_every_rejection_is_a_json_api_error_and_changes_nothing(owner, project, configure) -> None:
    (subject,) = make_subjects(project, 1, lambda i: {"kept": True})
    show_etag = Subject.find(subject.id).etag
    taken = project.display_name
    orphan = unique("orphan")
    json_type = {"Content-Type": "application/json"}
    rejected = {  # case -> (status, response, start of the message)
        "400 malformed": (400, _api(owner, "POST", "/subject_sets", data=b"{not json", headers=json_type),
                          "There was a problem in the JSON you submitted: "),
        "400 invalid": (400, _api(owner, "POST", "/projects", json={"projects": {
            "display_name": taken, "description": "d", "primary_language": "en", "private": True}}),
            "Validation failed: Display name Must be unique for owner"),
        "401": (401, _api(owner, "POST", "/subject_sets", token=False, json={"subject_sets": {
            "display_name": orphan, "links": {"project": project.id}}}),
            "You must be logged in to access this resource."),
        "404 id": (404, _api(owner, "GET", "/workflows/987654"), "Could not find workflow with id='987654'"),
        "404 export": (404, _api(owner, "GET", f"/projects/{project.id}/subjects_export"),
                       f"No subjects_export exists for project #{project.id}"),
        "412": (412, _api(owner, "PUT", f"/subjects/{subject.id}", headers={"If-Match": '"stale"'},
                          json={"subjects": {"metadata": {"kept": False}}}), "JsonApiController::PreconditionFailed"),
        "415": (415, _api(owner, "POST", "/subject_sets", data=b"{}", headers={"Content-Type": "text/plain"}),
                "Only requests with Content-Type: application/json or application/vnd.api+json are allowed"),
        "422": (422, _api(owner, "POST", "/subject_sets", json={"subject_sets": {"display_name": orphan}}),
                '{"links"=>"did not contain a required property of \'project\'"}'),
        "428 put": (428, _api(owner, "PUT", f"/subjects/{subject.id}", json={"subjects": {"metadata": {}}}),
                    "Request requires If-Match header to be present"),
        "428 delete": (428, _api(owner, "DELETE", f"/subjects/{subject.id}"),
                       "Request requires If-Match header to be present"),
    }
    configure(subject_limit=0)
    rejected["403"] = (403, _api(owner, "POST", "/subjects", json={"subjects": {
        "locations": ["image/png"], "links": {"project": project.id}}}), "User has uploaded ")
    for case, (status, response, message) in rejected.items():
        assert response.status_code == status, case
        assert response.headers["Content-Type"] == API_CONTENT_TYPE, case
        body = response.json()
        assert list(body) == ["errors"] and len(body["errors"]) == 1, case
        assert list(body["errors"][0]) == ["message"], case
        assert body["errors"][0]["message"].startswith(message), (case, body)
    # ... and none of them changed anything
    found = Subject.find(subject.id)
    assert (found.metadata, found.etag) == ({"kept": True}, show_etag)
    assert [s.display_name for s in SubjectSet.where(project_id=project.id)] == []
    assert [p.id for p in Project.where(display_name=taken)] == [project.id]
    assert [s.id for s in Subject.where(project_id=project.id)] == [subject.id]


@pytest.mark.parametrize("type_name, kind", [
    ("projects", "project"), ("workflows", "workflow"), ("subject_sets", "subject_set"), ("subjects", "subject"),
    ("users", "user"), ("set_member_subjects", "set_member_subject"),
    ("subject_workflow_statuses", "subject_workflow_status"),
])
def test_unknown_ids_of_every_type_are_404(owner, admin, type_name, kind) -> None:
    since = admin.last_request_id()
    for missing in ("987654321", "not-a-number"):
        with pytest.raises(PanoptesAPIException, match=f"^Could not find {kind} with id='{missing}'$"):
            owner.get(f"/{type_name}/{missing}")
    assert [(r["path"], r["status"]) for r in admin.requests(since_id=since) if r["path"].startswith("/api/")] == [
        (f"/api/{type_name}/987654321", 404), (f"/api/{type_name}/not-a-number", 404)]


def test_bodies_must_be_json(sandbox, owner) -> None:
    auth = {**API, "Authorization": f"Bearer {owner.get_bearer_token()}"}
    malformed = requests.post(f"{sandbox.endpoint}/api/projects", data=b"{not json",
                              headers={**auth, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and "problem in the JSON" in malformed.json()["errors"][0]["message"]
    wrong_type = requests.post(f"{sandbox.endpoint}/api/projects", data=b"{}",
                               headers={**auth, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert wrong_type.json()["errors"][0]["message"] == (
        "Only requests with Content-Type: application/json or application/vnd.api+json are allowed")
    sign_in = requests.post(f"{sandbox.endpoint}/users/sign_in", data=b"[",
                            headers={"Content-Type": "application/json"})
    assert sign_in.status_code == 400 and sign_in.json()["errors"]


def test_responses_are_versioned_json_api_with_keep_alive(sandbox, owner) -> None:
    with requests.Session() as session:
        first = session.get(f"{sandbox.endpoint}/api/projects", headers=API)
        second = session.get(f"{sandbox.endpoint}/api/projects", headers=API)
    assert first.headers["Content-Type"] == API_CONTENT_TYPE
    assert first.headers["Content-Length"] == str(len(first.content))
    assert first.raw.version == 11 and second.status_code == 200
    assert first.headers.get("Connection", "keep-alive").lower() != "close"


def test_start_up_problems_stop_with_one_line_and_exit_2(tmp_path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = {  # in parallel: each start pays the interpreter's import time
            "cannot listen on 127.0.0.1:": _serve("--data-dir", str(tmp_path / "a"),
                                                  "--port", str(taken.getsockname()[1])),
            "is not writable": _serve("--data-dir", str(not_a_dir / "data")),
            "is not writable: ": _serve("--data-dir", str(not_a_dir)),  # the data dir is a file
            "fault_rate must be at most 1": _serve("--data-dir", str(tmp_path / "b"), "--set", "fault_rate=7"),
        }
        results = {reason: (process.communicate(timeout=20), process.returncode) for reason, process in started.items()}
    for reason, ((stdout, stderr), returncode) in results.items():
        assert returncode == 2
        assert stdout == ""
        assert len(stderr.strip().splitlines()) == 1 and reason in stderr
        assert "Traceback" not in stderr


def test_sigterm_stops_cleanly_after_exactly_one_ready_line(tmp_path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "zooflow", "sandbox", "serve", "--data-dir", str(tmp_path),
                                "--port", "0", "--volunteer-rate", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready = process.stdout.readline()
        assert ready.startswith("zooflow sandbox ready: http://127.0.0.1:")
        assert requests.get(ready.split(": ", 1)[1].strip() + "/_sandbox/state").status_code == 200
        os.kill(process.pid, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0
    assert stdout == "" and "Traceback" not in stderr


EXPORTS = (("projects", "classifications"), ("projects", "subjects"), ("projects", "workflows"),
           ("workflows", "classifications"), ("subject_sets", "classifications"))


def _everything(endpoint: str, project_id: str) -> dict:
    """All the client can read about a project, its media and its exports; signed URLs aside (they carry a time)."""
    project = Project.find(project_id)
    workflows = list(Workflow.where(project_id=project_id))
    sets = list(SubjectSet.where(project_id=project_id))
    subjects = list(Subject.where(project_id=project_id))
    exports = {}
    for resource, kind in EXPORTS:
        for exportable in {"projects": [project], "workflows": workflows, "subject_sets": sets}[resource]:
            try:
                medium = exportable.describe_export(kind)["media"][0]
            except PanoptesAPIException:
                continue  # never requested
            download = raw_bytes(medium.pop("src"))
            exports[f"{resource}/{exportable.id}/{kind}"] = (
                medium, download.raw_bytes if download.status_code == 200 else download.status_code)
    return {
        "me": User.me().raw,
        "project": project.raw,
        "workflows": [w.raw for w in workflows],
        "subject_sets": [s.raw for s in sets],
        "members": [m.raw for s in sets for m in SetMemberSubject.where(subject_set_id=s.id)],
        "subjects": [s.raw for s in subjects],
        "media": {url: requests.get(url).content for s in subjects for location in s.locations
                  for url in location.values() if url.startswith(endpoint)},
        "statuses": [st.raw for w in workflows for st in SubjectWorkflowStatus.where(workflow_id=w.id)],
        "exports": exports,
    }


def test_restart_loses_nothing(tmp_path) -> None:
    sandbox = SandboxProcess(tmp_path / "data", seed="demo", settings={"export_delay": 0.1})
    with sandbox:
        admin = sandbox.admin
        with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD) as client:
            project = make_project()
            workflow = make_workflow(project, retire_after=2)
            linked, loose = make_set(project), make_set(project)
            uploaded = Subject()
            uploaded.links.project = project
            uploaded.add_location(str(write_png(tmp_path, 99)))
            uploaded.metadata["kept"] = True
            uploaded.save()
            external = make_subjects(project, 3, lambda i: {"i": i})
            linked.add([uploaded, *external[:2]])
            loose.add(external[1:])
            workflow.add_subject_sets(linked)
            admin.add_classifications([{"workflow_id": workflow.id, "subject_id": uploaded.id, "answer": "Other",
                                        "created_at": f"2024-06-0{day}T00:00:00Z"} for day in (1, 2)])
            workflow.retire_subjects(external[0], reason="flagged")
            admin.settle()  # the retirement, statuses and counters, before the exports read them
            edited = Subject.find(external[1].id)
            edited.metadata["edited"] = True
            edited.save()
            renamed = Workflow.find(workflow.id)
            renamed.display_name = "renamed"  # a second workflow version
            renamed.save()
            exportables = {"projects": project, "workflows": workflow, "subject_sets": linked}
            for resource, kind in EXPORTS:
                exportables[resource].generate_export(kind)
            for resource, kind in EXPORTS:
                wait_ready(exportables[resource], kind)
            admin.configure(export_delay=6 * 3600)
            loose.generate_export("classifications")  # still queued when the sandbox restarts
            # the job starts on the worker's next tick and writes its job id: snapshot after that, not during it
            eventually(lambda: "job_id" in loose.describe_export("classifications")["media"][0]["metadata"], True)
            before = _everything(sandbox.endpoint, project.id)
        assert (len(before["subjects"]), len(before["subject_sets"]), len(before["members"])) == (4, 2, 5)
        assert len(before["exports"]) == 6 and before["media"]
        progress = before["workflows"][0]
        assert (progress["subjects_count"], progress["retired_set_member_subjects_count"]) == (3, 2)
        admin.advance_clock(hours=3)
        admin.configure(url_lifetime=77)
        port, clock_offset = sandbox.port, admin.state()["clock_offset_seconds"]

        sandbox.restart()

        assert sandbox.port == port
        with client:  # the bearer token issued before the restart still works
            since = sandbox.admin.last_request_id()
            assert Project.find(slug=project.slug).id == project.id
            assert [r["path"] for r in sandbox.admin.requests(since_id=since)] == ["/api/projects"]
            after = _everything(sandbox.endpoint, project.id)
            for part in before:
                assert after[part] == before[part], part
            (url,) = Subject.find(uploaded.id).locations[0].values()
            assert requests.get(url).content == png_bytes(99)

            queued = f"subject_sets/{loose.id}/classifications"
            assert after["exports"][queued][0]["metadata"]["state"] == "creating"
            sandbox.admin.advance_clock(hours=4)  # past the queued job's time: it still runs
            assert wait_ready(SubjectSet.find(loose.id), "classifications")

            project.generate_export("classifications")  # within 24 h of the request made before the restart
            assert stays_creating(project, "classifications", seconds=0.5)
            src = project.describe_export("classifications")["media"][0]["src"]
            assert raw_bytes(src).raw_bytes == before["exports"][f"projects/{project.id}/classifications"][1]
        assert sandbox.admin.settings()["url_lifetime"] == 77
        assert sandbox.admin.state()["clock_offset_seconds"] >= clock_offset + 4 * 3600
        assert (sandbox.admin.now() - datetime.now(timezone.utc)).total_seconds() > 7 * 3600 - 60
    assert not sandbox.running

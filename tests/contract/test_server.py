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
from contract_support import make_project, make_set, png_bytes, raw_bytes, wait_ready, write_png
from panoptes_client import Panoptes, Project, Subject, SubjectSet

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


def test_restart_loses_nothing(tmp_path) -> None:
    sandbox = SandboxProcess(tmp_path / "data", seed="demo", settings={"export_delay": 0.1})
    with sandbox:
        with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD) as client:
            project = make_project()
            subject_set = make_set(project)
            subject = Subject()
            subject.links.project = project
            subject.add_location(str(write_png(tmp_path, 99)))
            subject.metadata["kept"] = True
            subject.save()
            subject_set.add([subject])
            project.generate_export("subjects")
            medium = wait_ready(project, "subjects")["media"][0]
            export_bytes = raw_bytes(medium["src"]).raw_bytes
        sandbox.admin.advance_clock(hours=3)
        sandbox.admin.configure(url_lifetime=77)
        port, clock_offset = sandbox.port, sandbox.admin.state()["clock_offset_seconds"]

        sandbox.restart()

        assert sandbox.port == port
        with client:  # the bearer token issued before the restart still works
            since = sandbox.admin.last_request_id()
            found = Project.find(slug=project.slug)
            assert [r["path"] for r in sandbox.admin.requests(since_id=since)] == ["/api/projects"]
            assert found.id == project.id
            assert [s.id for s in SubjectSet.find(subject_set.id).subjects] == [subject.id]
            (url,) = Subject.find(subject.id).locations[0].values()
            assert requests.get(url).content == png_bytes(99)
            assert Subject.find(subject.id).metadata == {"kept": True}
            again = project.describe_export("subjects")["media"][0]
            assert (again["id"], again["metadata"]["state"], again["updated_at"]) == (
                medium["id"], "ready", medium["updated_at"])
            assert raw_bytes(again["src"]).raw_bytes == export_bytes
        assert sandbox.admin.settings()["url_lifetime"] == 77
        assert sandbox.admin.state()["clock_offset_seconds"] == clock_offset
        assert (sandbox.admin.now() - datetime.now(timezone.utc)).total_seconds() > 3 * 3600 - 60
    assert not sandbox.running

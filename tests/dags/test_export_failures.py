"""zooniverse_exports against an export that ends 'failed' and one dropped silently by Panoptes' limiter.

One sandbox, runs in order, driven with dag.test() and the sandbox clock: the limiter and the
00:00/12:00 UTC cleanup both run on it (panoptes-realism.md §3). Each failing run must say which of
the two happened and when a new request will be allowed; the next runs must not ask before that
time and must ask after it; the last good download and its slices must stay untouched.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from panoptes_client import Project
from support.sandboxes import demo_sandbox_with

from zooflow.airflow_env import connection_env
from zooflow.exports.limits import JOB_START_MARGIN, WINDOW, parse_time, utc
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed

CONF = {"project": seed.DEMO_PROJECT_SLUG, "export_types": ["classifications"], "poll_seconds": 1,
        "wait_timeout_minutes": 5}
SHORT_WAIT = CONF | {"wait_timeout_minutes": 0.05}
PROJECT_ID = 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with demo_sandbox_with(tmp_path_factory.mktemp("failures-sandbox"), subjects=6, classifications=12) as sb:
        sb.root = tmp_path_factory.mktemp("failures-data")
        yield sb


@pytest.fixture()
def run(world, dags_folder, airflow_db, monkeypatch):
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(world.root))
    for name, value in connection_env(world.config).items():
        monkeypatch.setenv(name, value)
    dag = DagBag(dag_folder=str(dags_folder / "zooniverse_exports.py")).dags["zooniverse_exports"]
    for task in dag.tasks:
        task.retry_delay = timedelta(0)

    def at(moment: datetime, conf: dict = CONF):
        """One run with the sandbox clock set to ``moment``: its state, request XCom and export POSTs."""
        world.admin.set_clock(moment)
        since = world.admin.last_request_id()
        started = time.monotonic()
        dag_run = dag.test(run_conf=conf)
        (ti,) = [t for t in dag_run.get_task_instances() if t.task_id == "classifications.request"]
        posts = [r for r in world.admin.requests(since_id=since) if r["method"] == "POST" and r["path"].endswith("_export")]
        return dag_run, ti.xcom_pull(task_ids="classifications.request"), posts, time.monotonic() - started

    return at


def kept_files(root: Path) -> dict[str, str]:
    """Every file of the last good download and its slices, with its content hash."""
    data = DataRoot(root)
    folders = (data.exports_dir(seed.DEMO_PROJECT_SLUG, "classifications"), data.slices_dir(seed.DEMO_PROJECT_SLUG, "classifications"))
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders for p in folder.rglob("*")
            if p.is_file() and p.name != "last_request.json"}


def message(capfd, marker: str) -> str:
    output = capfd.readouterr()
    return next(line for line in (output.out + output.err).splitlines() if marker in line and "Traceback" not in line)


def wait_state(dag_run) -> tuple[str, int]:
    (ti,) = [t for t in dag_run.get_task_instances() if t.task_id == "classifications.wait"]
    return ti.state, ti.try_number


def day_at(world, days: int, hour: int) -> datetime:
    today = world.admin.now().date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, tzinfo=timezone.utc)


def test_failed_export_stops_the_wait_and_the_next_run_waits_for_the_limiter(world, run, capfd) -> None:
    start = day_at(world, 2, 2)
    good_run, first, posts, _ = run(start)
    assert good_run.state == "success" and first["action"] == "requested" and len(posts) == 1
    good = kept_files(world.root)

    world.admin.configure(export_failure_rate=1)
    dying, request, posts, _ = run(start + timedelta(hours=32), SHORT_WAIT)  # 10:00 UTC: the job dies at once
    assert dying.state == "failed" and request["action"] == "requested" and len(posts) == 1
    next_at = parse_time(request["requested_at"]) + WINDOW + JOB_START_MARGIN
    assert parse_time(request["next_request_at"]) == next_at
    assert abs(parse_time(posts[0]["sandbox_time"]) - parse_time(request["requested_at"])) < timedelta(seconds=1)
    creating = message(capfd, "is still 'creating'")
    assert f"A new request will be allowed from {utc(next_at)}" in creating
    assert "the cleanup at 00:00 or 12:00 UTC will mark it 'failed'" in creating

    failed_run, reused, posts, seconds = run(start + timedelta(hours=34, seconds=1))  # just past 12:00 UTC
    assert failed_run.state == "failed" and reused["action"] == "reused" and posts == []
    assert wait_state(failed_run) == ("failed", 1) and seconds < 120  # stopped at once, not after 5 minutes
    failed = message(capfd, "ended 'failed'")
    assert f"the project {PROJECT_ID} classifications export requested at {utc(parse_time(request['requested_at']))}" in failed
    assert "the server's cleanup (00:00 and 12:00 UTC) marked it failed" in failed
    assert f"A new request will be allowed from {utc(next_at)} (server clock" in failed
    assert "No newer good export exists: Panoptes reports none ready, so the last good download, classifications-" in failed
    assert kept_files(world.root) == good

    world.admin.configure(export_failure_rate=0)
    early, _, posts, _ = run(next_at - timedelta(hours=2))  # too far off to wait for: the failed export is used
    assert posts == [] and early.state == "failed" and kept_files(world.root) == good
    due, asked, posts, _ = run(next_at + timedelta(seconds=1))
    assert due.state == "success" and asked["action"] == "requested" and len(posts) == 1


def test_a_request_inside_the_window_is_dropped_and_reported(world, run, capfd) -> None:
    ours = max(parse_time(r["sandbox_time"]) for r in world.admin.requests()
               if r["method"] == "POST" and r["path"].endswith("classifications_export"))  # the last good export
    teammate = ours + timedelta(hours=2)
    world.admin.set_clock(teammate)
    with connect(world.config):
        Project.find(PROJECT_ID).generate_export("classifications")  # a click in the Lab: accepted, then dropped
    good = kept_files(world.root)

    dropped, reused, posts, _ = run(teammate + timedelta(hours=1), SHORT_WAIT)
    assert dropped.state == "failed" and reused["action"] == "reused" and posts == []
    assert abs(parse_time(reused["previous_request_at"]) - ours) < timedelta(seconds=1)  # the log is ms later
    next_at = parse_time(reused["requested_at"]) + WINDOW + JOB_START_MARGIN
    assert abs(parse_time(reused["requested_at"]) - teammate) < timedelta(seconds=5)
    assert parse_time(reused["next_request_at"]) == next_at
    creating = message(capfd, "is still 'creating'")
    assert f"came 2.0 h after the one at {utc(parse_time(reused['previous_request_at']))}, inside Panoptes' 24 h limit, so the rate limiter dropped it" in creating
    assert f"A new request will be allowed from {utc(next_at)}" in creating
    assert "the last good download, classifications-" in creating and kept_files(world.root) == good

    _, _, posts, _ = run(next_at - timedelta(hours=2), SHORT_WAIT)
    assert posts == [] and kept_files(world.root) == good
    # A daily run starts a little before the allowed time: it waits for it, then asks (never skipping a day).
    due, asked, posts, seconds = run(next_at - timedelta(seconds=8))
    assert due.state == "success" and asked["action"] == "requested" and len(posts) == 1
    assert parse_time(posts[0]["sandbox_time"]) >= next_at and seconds >= 8

"""Faults from the server during real DAG runs: 5xx bursts in every phase, a stuck export, a sandbox
restarted mid-run, tokens expiring in the middle of a threaded upload. Each run must end in success
(or a clear failure), with every classification kept and every subject uploaded exactly once.

The tests share one sandbox and run in order: exports follow Panoptes' 24-hour rule, so each one
moves the sandbox clock past it first.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path

from zooflow.paths import DataRoot

from fault_support import EXPORTS_CONF, SLUG, al_conf, task, write_classifications_export


def export_run(world, load, dag=None, **conf):
    world.admin.advance_clock(hours=25)
    return (dag or load("zooniverse_exports")).test(run_conf=EXPORTS_CONF | conf)


def inject(world, **fault) -> int:
    """Sets ``fault`` on the sandbox; returns the id its request log had reached, where the test's
    reading of what the run asked starts (admin calls are not logged)."""
    world.admin.configure(**fault)
    return world.admin.last_request_id()


def injected(world, since: int) -> list[dict]:
    return [r for r in world.admin.requests(since_id=since) if r["detail"] == "injected fault"]


def retries(run) -> int:
    return sum(max(ti.try_number - 1, 0) for ti in run.get_task_instances())


def record_nothing_lost(table, world, run, tried: str, seen: str) -> None:
    """Asserts that the sliced export holds every classification the project has, then adds the row."""
    report = task(run, "classifications.slice").xcom_pull(task_ids="classifications.slice")
    expected = world.admin.state()["classifications"]
    kept = report["rows_kept"] + sum(report["rows_filtered"].values())
    lost = "nothing" if kept == expected and report["rows_quarantined"] == 0 else f"{expected - kept} classifications"
    assert lost == "nothing"
    table("fault", tried, seen, lost)


def accepted_export_posts(world, since: int) -> list[str]:
    return [r["path"] for r in world.admin.requests(since_id=since)
            if r["method"] == "POST" and r["path"].endswith("_export") and r["status"] < 300]


def test_5xx_bursts_in_every_export_phase(env, load, table) -> None:
    world = env
    since = inject(world, fail_next=[
        {"method": "POST", "path_regex": "^/oauth/token", "status": 502, "count": 1},
        {"method": "POST", "path_regex": "_export$", "status": 503, "count": 1},
        {"method": "GET", "path_regex": "_export$", "status": 503, "count": 2},
        {"method": "GET", "path_regex": "^/blob/", "status": 500, "count": 2},
        {"method": "GET", "path_regex": "^/api/projects", "status": 504, "count": 2},
    ])
    run = export_run(world, load)
    assert run.state == "success"
    assert world.admin.settings()["fail_next"] == []  # every burst was served
    assert len(injected(world, since)) == 8
    posts = accepted_export_posts(world, since)
    assert sorted(p.rsplit("/", 1)[1] for p in posts) == ["classifications_export", "subjects_export", "workflows_export"]
    record_nothing_lost(table, world, run, "5xx bursts at login, export request, poll, project lookup and download",
                        f"run succeeded; {retries(run)} task retries, client retries for the rest; one export request per type")


def test_dropped_downloads_resume(env, load, table) -> None:
    world = env
    since = inject(world, drop_download_after_bytes=600, drop_download_count=3)
    run = export_run(world, load, export_types=["classifications"])
    assert run.state == "success"
    download = task(run, "classifications.download").xcom_pull(task_ids="classifications.download")
    blobs = [r["status"] for r in world.admin.requests(since_id=since) if r["path"].startswith("/blob/")]
    assert blobs == [200, 206, 206, 206] and download["attempts"] == 4
    record_nothing_lost(table, world, run, "download cut after 600 bytes, three times",
                        "download resumed 3 times with Range requests (206), gzip checked, one file")


def test_export_stuck_in_creating_fails_clearly_and_keeps_the_last_good_export(env, load, table, capfd) -> None:
    world = env
    latest = DataRoot(world.root).exports_dir(SLUG, "classifications")
    # The request record changes (the stuck request counts for Panoptes' limit); the export files must not.
    good = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in latest.rglob("*")
            if p.is_file() and p.name != "last_request.json"}
    world.admin.configure(export_stuck=True)
    run = export_run(world, load, export_types=["classifications"], wait_timeout_minutes=0.05)
    assert run.state == "failed"
    output = capfd.readouterr()
    message = next(line for line in (output.out + output.err).splitlines() if "is still 'creating'" in line)
    assert "A new request will be allowed from " in message and "the next run asks again then, not before" in message
    assert "the last good download, classifications-" in message
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in latest.rglob("*") if p.is_file()}
    assert good and {name: after.get(name) for name in good} == good  # the last good export is untouched
    table("fault", "export stuck in 'creating' (never completes)",
          message[message.index("Panoptes"):] if "Panoptes" in message else message, "nothing")


def test_sandbox_restarted_mid_run(env, load, table) -> None:
    world = env
    since = inject(world, export_delay=4.0)
    restarted = threading.Event()

    def restart_once_the_export_is_requested() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if accepted_export_posts(world, since):
                world.sandbox.restart()
                restarted.set()
                return
            time.sleep(0.2)

    dag = load("zooniverse_exports")
    for each in dag.tasks:  # a retry waits, as in production (2 min there), long enough for the restart
        each.retry_delay = timedelta(seconds=5)
    thread = threading.Thread(target=restart_once_the_export_is_requested, daemon=True)
    thread.start()
    try:
        run = export_run(world, load, dag, export_types=["classifications"])
    finally:
        thread.join(timeout=90)
        world.admin.configure(export_delay=0.3)
    assert restarted.is_set()
    assert run.state == "success"
    assert len(accepted_export_posts(world, since)) == 1  # the restart did not cost a second request
    record_nothing_lost(table, world, run, "sandbox (the API) restarted while the export was generating",
                        f"run succeeded; {retries(run)} task retries; the one export request was kept, not repeated")


def test_tokens_expiring_during_a_threaded_upload(env, load, table) -> None:
    world = env
    since = inject(world, token_lifetime=1, latency_ms=60)
    run = load("zooniverse_active_learning").test(run_conf=al_conf(world, k=20, m=0))
    assert run.state == "success"
    log = world.admin.requests(since_id=since)
    uploads = [r for r in log if r["method"] == "POST" and r["path"] == "/api/subjects"]
    grants = [r for r in log if r["path"].startswith("/oauth/token")]
    first, last = uploads[0]["id"], uploads[-1]["id"]
    assert any(first < g["id"] < last for g in grants)  # tokens were renewed while subjects were being created
    counts = world.pool_ids()
    assert counts and set(counts.values()) == {1}
    table("fault", "access tokens lasting 1 s while 20 subjects upload on threads",
          f"round succeeded; {sum(first < g['id'] < last for g in grants)} token renewals mid-upload, "
          f"no KeyError; each item once", "nothing")


def test_5xx_bursts_during_the_upload(env, load, table) -> None:
    world = env
    world.label_until_retired(seed_=11)
    world.admin.configure(fail_next=[
        {"method": "POST", "path_regex": "^/api/subjects$", "status": 503, "count": 2},
        {"method": "PUT", "path_regex": "^/uploads/", "status": 500, "count": 2},
        {"method": "POST", "path_regex": "links/subjects$", "status": 502, "count": 2},
        {"method": "POST", "path_regex": "^/api/subject_sets$", "status": 503, "count": 1},
    ])
    before = world.admin.state()
    run = load("zooniverse_active_learning").test(run_conf=al_conf(world))
    assert run.state == "success"
    assert world.admin.settings()["fail_next"] == []
    after = world.admin.state()
    counts = world.pool_ids()
    assert set(counts.values()) == {1}
    assert after["subject_sets"] == before["subject_sets"] + 1  # one new set, no half-made leftovers
    table("fault", "5xx bursts creating the set, the subjects, their media and the links",
          f"round succeeded after {retries(run)} task retries; one new subject set; each item once", "nothing")


def test_worker_killed_mid_download_resumes_from_the_part_file(env, load, table, tmp_path) -> None:
    """A real process is killed with SIGKILL part-way through the download; the next run resumes.
    Downloads write 64 KB at a time and the export is paced at 4 MB/s, so the kill lands mid-file."""
    import os
    import signal
    import subprocess
    import sys

    world = env
    world.admin.advance_clock(hours=25)
    rows = 100_000
    world.admin.install_export("project", 1, "classifications", write_classifications_export(tmp_path / "big.csv.gz", rows, padding=96))
    world.admin.configure(download_rate_mb_s=4.0)
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"dag = DagBag(dag_folder={str(Path(__file__).parents[2] / 'dags' / 'zooniverse_exports.py')!r})"
        ".dags['zooniverse_exports']\n"
        f"dag.test(run_conf={EXPORTS_CONF | {'export_types': ['classifications']}!r})\n"
    )
    since = world.admin.last_request_id()
    worker = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exports = DataRoot(world.root).exports_dir(SLUG, "classifications")
    part_size = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and part_size == 0 and worker.poll() is None:
            parts = list(exports.rglob("*.part"))
            part_size = parts[0].stat().st_size if parts else 0
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert part_size > 0
    world.admin.configure(download_rate_mb_s=None)
    run = load("zooniverse_exports").test(run_conf=EXPORTS_CONF | {"export_types": ["classifications"]})
    assert run.state == "success"
    download = task(run, "classifications.download").xcom_pull(task_ids="classifications.download")
    assert download["resumed_from"] >= part_size
    assert not accepted_export_posts(world, since)  # an installed export is fresh: nothing is requested
    report = task(run, "classifications.slice").xcom_pull(task_ids="classifications.slice")
    kept = report["rows_kept"] + sum(report["rows_filtered"].values())
    lost = "nothing" if kept == rows and report["rows_quarantined"] == 0 else f"{rows - kept} rows"
    assert lost == "nothing"
    table("fault", "worker process killed (SIGKILL) mid-download of a 20 MB export",
          f"next run resumed from byte {download['resumed_from']:,} of the .part file; all {rows:,} rows sliced", lost)

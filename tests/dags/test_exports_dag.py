"""zooniverse_exports run for real with dag.test() against one sandbox, in order: the 24-hour rule
is state, so each test starts from where the previous one left the sandbox and the data root."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from airflow.dag_processing.dagbag import DagBag

from zooflow.airflow_env import connection_env
from zooflow.exports.export_requests import ExportTarget, describe
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config
from zooflow.sandbox.process import SandboxProcess

SLUG = seed.DEMO_PROJECT_SLUG
FAST = {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 0.5}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("exports-sandbox"), seed="demo", settings={"export_delay": 0.3}) as sb:
        config = demo_user_config(sb.endpoint)
        with connect(config):
            subjects = add_demo_subjects(12)
        sb.config = config
        sb.subjects = subjects
        yield sb


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports-data")


@pytest.fixture()
def env(sandbox, root, monkeypatch):
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(root))
    for name, value in connection_env(sandbox.config).items():
        monkeypatch.setenv(name, value)
    sandbox.admin.configure(export_stuck=False, drop_download_after_bytes=None, fail_next=[])


@pytest.fixture(scope="module")
def dag(dags_folder):
    bag = DagBag(dag_folder=str(dags_folder / "zooniverse_exports.py"))
    assert bag.import_errors == {}
    dag = bag.dags["zooniverse_exports"]
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return dag


def export_calls(sandbox, since: int, method: str) -> list[dict]:
    return [r for r in sandbox.admin.requests(since_id=since) if r["method"] == method and r["path"].endswith("_export")]


def xcom(run, task_id: str):
    (ti,) = [t for t in run.get_task_instances() if t.task_id == task_id]
    return ti, ti.xcom_pull(task_ids=task_id)


def test_first_export_end_to_end(airflow_db, env, sandbox, root, dag) -> None:
    since = sandbox.admin.last_request_id()
    sandbox.admin.run_volunteers(30, seed=3)
    run = dag.test(run_conf=FAST)
    assert run.state == "success"
    posts = export_calls(sandbox, since, "POST")
    assert sorted(p["path"].rsplit("/", 1)[1] for p in posts) == [
        "classifications_export", "subjects_export", "workflows_export"]
    _, request = xcom(run, "classifications.request")
    assert request["action"] == "requested" and "first export" in request["reason"]

    _, report = xcom(run, "classifications.slice")
    assert report["rows_read"] == 30 and report["rows_kept"] == 30 and report["rows_quarantined"] == 0
    today = sandbox.admin.now().date().isoformat()
    partition = DataRoot(root).slices_dir(SLUG, "classifications") / f"created_date={today}"
    assert sorted(p.suffix for p in partition.iterdir()) == [".csv", ".parquet"]
    flat = DataRoot(root).flat_dir(SLUG) / f"created_date={today}" / "part-00000.csv"
    header = flat.read_text().splitlines()[0]
    assert header.startswith("classification_id,user_name") and "task_type" in header
    _, subjects = xcom(run, "subjects.slice")
    assert subjects["rows_kept"] == 12  # one row per subject x set x workflow: one set, one workflow
    reports = list(DataRoot(root).reports_dir(SLUG, "slice-classifications").glob("*.json"))
    assert json.loads(reports[0].read_text())["rows_kept"] == 30


def test_rerun_within_24_hours_requests_nothing(airflow_db, env, sandbox, dag) -> None:
    sandbox.admin.advance_clock(hours=23)
    since = sandbox.admin.last_request_id()
    run = dag.test(run_conf=FAST)
    assert run.state == "success"
    assert export_calls(sandbox, since, "POST") == []
    _, request = xcom(run, "classifications.request")
    assert request["action"] == "reused" and "23.0 h ago" in request["reason"]
    _, download = xcom(run, "classifications.download")
    assert download["already_downloaded"] is True


def test_after_25_hours_a_new_export_is_requested(airflow_db, env, sandbox, dag) -> None:
    sandbox.admin.advance_clock(hours=2)
    sandbox.admin.run_volunteers(6, seed=4)
    since = sandbox.admin.last_request_id()
    run = dag.test(run_conf=FAST)
    assert run.state == "success"
    assert len(export_calls(sandbox, since, "POST")) == 3
    _, download = xcom(run, "classifications.download")
    assert download["already_downloaded"] is False
    with gzip.open(download["path"], "rt") as handle:
        assert sum(1 for _ in handle) == 1 + 36


def test_stuck_export_times_out_with_the_clear_message(airflow_db, env, sandbox, dag, capfd) -> None:
    sandbox.admin.advance_clock(hours=25)
    sandbox.admin.configure(export_stuck=True)
    run = dag.test(run_conf=FAST | {"export_types": ["classifications"], "wait_timeout_minutes": 0.05})
    assert run.state == "failed"
    wait, _ = xcom(run, "classifications.wait")
    assert wait.state == "failed" and wait.try_number == 1  # a timeout is final: no retries
    output = capfd.readouterr()
    assert "is still 'creating' after 0.0 h. Panoptes' rate limiter may have dropped it" in output.out + output.err
    assert "A new request will be allowed from " in output.out + output.err


def blob_sha(sandbox) -> str:
    """The bytes Panoptes serves now, fetched plainly, to compare with what the DAG kept."""
    with connect(sandbox.config):
        media = describe(ExportTarget("project", 1, "classifications"))
    with requests.get(media.src, stream=True, timeout=30) as response:
        return hashlib.sha256(response.raw.read(decode_content=False)).hexdigest()


def test_dropped_download_resumes_to_identical_bytes(airflow_db, env, sandbox, dag) -> None:
    sandbox.admin.advance_clock(hours=25)
    sandbox.admin.configure(drop_download_after_bytes=700, drop_download_count=2)
    since = sandbox.admin.last_request_id()
    run = dag.test(run_conf=FAST | {"export_types": ["classifications"]})
    assert run.state == "success"
    blobs = [r for r in sandbox.admin.requests(since_id=since) if r["path"].startswith("/blob/")]
    assert [r["status"] for r in blobs][:3] == [200, 206, 206]
    sandbox.admin.configure(drop_download_after_bytes=None)
    _, download = xcom(run, "classifications.download")
    assert download["attempts"] == 3
    assert hashlib.sha256(Path(download["path"]).read_bytes()).hexdigest() == blob_sha(sandbox)


def test_refused_signed_url_is_described_again(airflow_db, env, sandbox, dag) -> None:
    """The blob store refuses the URL once (as it does an expired one); the DAG describes and resumes.
    tests/exports/test_download.py shows the same with a URL that really expired."""
    sandbox.admin.advance_clock(hours=25)
    sandbox.admin.configure(fail_next=[{"method": "GET", "path_regex": "^/blob/", "status": 403, "count": 1}])
    since = sandbox.admin.last_request_id()
    run = dag.test(run_conf=FAST | {"export_types": ["classifications"]})
    assert run.state == "success"
    log = [(r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1] if r["path"].startswith("/api") else "blob", r["status"])
           for r in sandbox.admin.requests(since_id=since)]
    blob_403 = log.index(("GET", "blob", 403))
    assert ("GET", "classifications_export", 200) in log[blob_403 + 1:]
    assert ("GET", "blob", 200) in log[blob_403 + 1:]


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_a_truncated_download_is_fetched_again_and_nothing_sliced_before(airflow_db, env, sandbox, root, dag, capfd) -> None:
    """The issue's case: the kept .csv.gz cut to 0 bytes. A backfill refuses it, naming the file and the fix;
    a run whose re-fetch fails leaves it, latest.json and the good slices alone; the next run repairs it."""
    exports = DataRoot(root).exports_dir(SLUG, "classifications")
    record = (exports / "latest.json").read_text()
    download = exports / json.loads(record)["path"]
    good = download.read_bytes()
    slices = file_hashes(DataRoot(root).slices_dir(SLUG, "classifications"))
    download.write_bytes(b"")
    conf = FAST | {"export_types": ["classifications"], "request_new": True}  # else dag.test carries the backfill's over

    backfill = dag.test(run_conf=conf | {"request_new": False})
    ti, _ = xcom(backfill, "classifications.download")
    assert backfill.state == "failed" and ti.state == "failed" and ti.try_number == 1  # no retries: it will not mend
    output = capfd.readouterr()
    said = output.out + output.err
    assert f"the last download {download} is damaged: {download.name} has 0 bytes where {len(good)} were downloaded" in said
    assert "run the exports DAG normally (request_new on, not as a backfill) to download it again" in said

    sandbox.admin.configure(fail_next=[{"method": "GET", "path_regex": "^/blob/", "status": 500, "count": 10}])
    broken = dag.test(run_conf=conf)
    sandbox.admin.configure(fail_next=[])
    ti, _ = xcom(broken, "classifications.download")
    assert broken.state == "failed" and ti.state == "failed"
    sliced, _ = xcom(broken, "classifications.slice")
    assert sliced.state == "upstream_failed"
    assert (exports / "latest.json").read_text() == record and download.read_bytes() == b""
    assert file_hashes(DataRoot(root).slices_dir(SLUG, "classifications")) == slices

    since = sandbox.admin.last_request_id()
    repaired = dag.test(run_conf=conf)
    assert repaired.state == "success"
    blobs = [r["status"] for r in sandbox.admin.requests(since_id=since) if r["path"].startswith("/blob/")]
    assert blobs == [200] and export_calls(sandbox, since, "POST") == []
    _, result = xcom(repaired, "classifications.download")
    assert result["already_downloaded"] is False and result["repaired"].startswith(f"{download.name} has 0 bytes")
    assert download.read_bytes() == good and json.loads((exports / "latest.json").read_text())["bytes"] == len(good)
    assert [p.name for p in exports.iterdir() if p.name.endswith((".part", ".tmp"))] == []
    assert file_hashes(DataRoot(root).slices_dir(SLUG, "classifications")) == slices  # the same bytes slice the same

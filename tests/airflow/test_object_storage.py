"""A data root in object storage: moto's S3 server stands in for S3, reached only through an Airflow
connection. The storage layer's pull and push on their own, then the exports DAG writing to the bucket
and the active-learning DAG reading from it with an empty cache."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import socket
import time
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from zooflow.airflow.storage import DataStore
from zooflow.airflow_env import connection_env
from zooflow.errors import ConfigurationError
from zooflow.paths import DataRoot
from zooflow.sandbox import seed

from support.dag_runs import load_dag
from support.digits_world import world_fixture

BUCKET = "zooflow-bucket"
CONN_ID = "aws_zooflow"
ACCESS_KEY = "AKIAZOOFLOWTEST0001"
SECRET_KEY = "zooflow-moto-secret-never-logged"
SLUG = seed.DEMO_PROJECT_SLUG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a loopback port, with one bucket; boto3 looks at it from outside Airflow."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.create_bucket(Bucket=BUCKET)
    yield {"endpoint": endpoint, "client": client}
    server.stop()


@pytest.fixture()
def aws_conn(s3, monkeypatch):
    """The Airflow connection the data root URL names: the only place the keys are."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
        "extra": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"},
    }))


def keys(s3, prefix: str) -> dict[str, bytes]:
    """Every object under a prefix, with its bytes, as S3 holds them."""
    client = s3["client"]
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# -- the storage layer ------------------------------------------------------------------------------


def test_a_local_root_is_used_in_place(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZOOFLOW_CACHE_DIR", str(tmp_path / "cache"))
    for setting in (str(tmp_path / "data"), (tmp_path / "data").as_uri()):
        store = DataStore(setting)
        assert not store.is_remote and store.root.root == tmp_path / "data"
        report = store.root.report(SLUG, "slice", "run-1")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("{}")
        assert store.pull(report.parent).moved == [] and store.push(report.parent).moved == []
        assert store.url(report) == str(report)
        report.unlink()
    assert not (tmp_path / "cache").exists()  # nothing copied anywhere


def test_credentials_never_go_in_the_url(monkeypatch) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DataStore(f"s3://{ACCESS_KEY}:{SECRET_KEY}@{BUCKET}/zooflow")
    assert SECRET_KEY not in str(caught.value) and "Airflow connection" in str(caught.value)
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", f"s3://{CONN_ID}@{BUCKET}/zooflow")
    with pytest.raises(ConfigurationError, match="only the Airflow tasks reach"):
        DataRoot()  # the library (and the CLI) never pretend an S3 root is a folder


def test_push_and_pull_move_only_what_changed(aws_conn, s3, tmp_path) -> None:
    url = f"s3://{CONN_ID}@{BUCKET}/unit-{uuid.uuid4().hex[:8]}"
    prefix = url.split(f"{BUCKET}/", 1)[1]
    worker_a = DataStore(url, cache_dir=tmp_path / "a")
    worker_b = DataStore(url, cache_dir=tmp_path / "b")
    assert worker_a.is_remote and worker_a.root.root != worker_b.root.root
    slices = worker_a.root.slices_dir(SLUG, "classifications") / "created_date=2026-11-20"
    slices.mkdir(parents=True)
    (slices / "part-00000.csv").write_text("id,value\n1,aaaa\n")
    (slices / "part-00001.csv").write_text("id,value\n2,bbbb\n")
    (slices / "part-00002.csv.part").write_text("half a down")  # a download in progress
    (slices / ".part-00003.csv.x1.tmp").write_text("half an atomic write")

    pushed = worker_a.push(slices)
    assert sorted(Path(m).name for m in pushed.moved) == ["part-00000.csv", "part-00001.csv"]
    in_bucket = keys(s3, prefix)
    key = f"{prefix}/{relative(slices, worker_a.root.root)}"
    assert sorted(in_bucket) == [f"{key}/part-00000.csv", f"{key}/part-00001.csv"]
    assert in_bucket[f"{key}/part-00000.csv"] == b"id,value\n1,aaaa\n"
    again = worker_a.push(slices)
    assert again.moved == [] and again.unchanged == 2

    # Another worker, empty cache: everything comes down once, then nothing.
    slices_b = worker_b.root.root / relative(slices, worker_a.root.root)
    assert len(worker_b.pull(slices_b).moved) == 2
    assert (slices_b / "part-00001.csv").read_text() == "id,value\n2,bbbb\n"
    assert worker_b.pull(slices_b).moved == []

    # Worker B rewrites one part (same size: only the ETag tells), and pushes it.
    (slices_b / "part-00001.csv").write_text("id,value\n2,cccc\n")
    assert worker_b.push(slices_b).moved == [f"{relative(slices_b, worker_b.root.root)}/part-00001.csv"]
    # Worker A's copy is stale but unchanged here: its push does not put the old bytes back.
    assert worker_a.push(slices).moved == []
    assert keys(s3, f"{key}/part-00001.csv")[f"{key}/part-00001.csv"] == b"id,value\n2,cccc\n"
    # And its pull brings just the changed part.
    assert worker_a.pull(slices).moved == [f"{relative(slices, worker_a.root.root)}/part-00001.csv"]
    assert (slices / "part-00001.csv").read_text() == "id,value\n2,cccc\n"

    # A folder rewritten whole is mirrored: a part that is gone locally is removed remotely.
    (slices / "part-00001.csv").unlink()
    mirrored = worker_a.push(slices, mirror=True)
    assert mirrored.removed == [f"{relative(slices, worker_a.root.root)}/part-00001.csv"]
    assert sorted(keys(s3, key)) == [f"{key}/part-00000.csv"]


def test_a_pull_replaces_a_file_whole_or_not_at_all(aws_conn, s3, tmp_path) -> None:
    url = f"s3://{CONN_ID}@{BUCKET}/atomic-{uuid.uuid4().hex[:8]}"
    prefix = url.split(f"{BUCKET}/", 1)[1]
    store = DataStore(url, cache_dir=tmp_path / "cache")
    state = store.root.al_dir(SLUG, 7) / "state.json"
    s3["client"].put_object(Bucket=BUCKET, Key=f"{prefix}/{relative(state, store.root.root)}", Body=b'{"rounds": [1]}')
    store.pull(state)
    assert state.read_bytes() == b'{"rounds": [1]}'

    with open(state, "rb") as reader:  # a reader that opened the old file keeps reading all of it
        s3["client"].put_object(Bucket=BUCKET, Key=f"{prefix}/{relative(state, store.root.root)}", Body=b'{"rounds": [1, 2]}')
        assert store.pull(state.parent).moved == [relative(state, store.root.root)]
        assert reader.read() == b'{"rounds": [1]}'
    assert state.read_bytes() == b'{"rounds": [1, 2]}'
    assert [p.name for p in state.parent.iterdir()] == ["state.json"]  # no temporary left behind

    # A download that cannot be put in place leaves what was there, and no temporary.
    s3["client"].put_object(Bucket=BUCKET, Key=f"{prefix}/{relative(state.parent / 'round-001', store.root.root)}",
                            Body=b"a file where the cache has a folder")
    (state.parent / "round-001").mkdir()
    with pytest.raises(OSError):
        store.pull(state.parent)
    assert (state.parent / "round-001").is_dir()
    assert sorted(p.name for p in state.parent.iterdir()) == ["round-001", "state.json"]


def test_prune_keeps_the_newest_downloads(aws_conn, s3, tmp_path) -> None:
    url = f"s3://{CONN_ID}@{BUCKET}/prune-{uuid.uuid4().hex[:8]}"
    store = DataStore(url, cache_dir=tmp_path / "cache")
    exports = store.root.exports_dir(SLUG, "classifications")
    exports.mkdir(parents=True)
    for name in ("classifications-1.csv.gz", "classifications-2.csv.gz", "classifications-3.csv.gz", "latest.json"):
        (exports / name).write_bytes(name.encode())
        store.push(exports / name)
        time.sleep(1.1)  # S3 keeps LastModified to the second
    removed = store.prune(exports, "classifications-*.csv.gz", keep=1, always=["classifications-1.csv.gz"])
    assert [Path(r).name for r in removed] == ["classifications-2.csv.gz"]
    prefix = url.split(f"{BUCKET}/", 1)[1]
    assert sorted(k.rsplit("/", 1)[1] for k in keys(s3, prefix)) == [
        "classifications-1.csv.gz", "classifications-3.csv.gz", "latest.json"]


def write_export(path: Path, rows: int, day: str) -> Path:
    """A small classifications export in Panoptes' layout, gzipped."""
    header = ("classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
              "gold_standard,expert,metadata,annotations,subject_data,subject_ids")
    lines = [f'{n},vol{n % 7},{n % 7},ip,1,Glitch classification,1.1,{day} 12:00:00 UTC,,,"{{}}",'
             f'"[{{""task"":""T0"",""value"":{n % 2}}}]","{{}}",{n % 20 + 1}' for n in range(1, rows + 1)]
    path.write_bytes(gzip.compress("\n".join([header, *lines, ""]).encode()))
    return path


def test_a_pending_download_is_settled_through_the_bucket_whichever_worker_slices_it(aws_conn, s3, demo_sandbox,
                                                                                      demo_config, tmp_path) -> None:
    """Worker A downloads, leaving the gzip check to the slice; worker B slices. What is pending is the
    bucket's pending.json, not a cache's: B promotes a good download, refuses one whose bytes went bad on
    the way (the bucket keeps the last good one, its record and slices), and A's next download fetches the
    refused export again although its own cache still holds a copy and a pending.json naming it."""
    from panoptes_client import Workflow

    from zooflow.exports.export_requests import ExportTarget
    from zooflow.exports.slice_spec import SliceSpec
    from zooflow.exports.steps import download_step, slice_step
    from zooflow.panoptes import connect

    url = f"s3://{CONN_ID}@{BUCKET}/pending-{uuid.uuid4().hex[:8]}"
    a, b = DataStore(url, cache_dir=tmp_path / "a"), DataStore(url, cache_dir=tmp_path / "b")
    with connect(demo_config):
        workflow_id = int(Workflow.where(project_id=1).next().id)
    target = ExportTarget("workflow", workflow_id, "classifications")
    folder = relative(DataRoot("/").exports_dir(SLUG, "classifications", "workflow", workflow_id), Path("/"))
    prefix = f"{url.split(f'{BUCKET}/', 1)[1]}/{folder}"
    slices = url.split(f"{BUCKET}/", 1)[1] + "/" + relative(DataRoot("/").slices_dir(SLUG, "classifications"), Path("/"))

    def exports(store: DataStore) -> Path:
        return store.root.exports_dir(SLUG, "classifications", "workflow", workflow_id)

    def serve(rows: int, day: str) -> None:
        demo_sandbox.admin.advance_clock(hours=25)
        demo_sandbox.admin.install_export("workflow", workflow_id, "classifications",
                                          write_export(tmp_path / f"export-{rows}.csv.gz", rows, day))

    def bucket() -> dict[str, bytes]:
        return {k.removeprefix(prefix + "/"): v for k, v in keys(s3, prefix + "/").items()}

    def slice_on_b(download) -> None:
        slice_step(b, SLUG, "classifications", exports(b), SliceSpec(formats=("csv",)), run_id=uuid.uuid4().hex,
                   download=download.to_dict())

    with connect(demo_config):
        serve(30, "2026-11-20")
        first = download_step(a, target, exports(a), requested_at=None, defer_check=True)
        name = Path(first.path).name
        assert first.pending and set(bucket()) == {name, "pending.json"}
        slice_on_b(first)
        assert set(bucket()) == {"latest.json", name} and json.loads(bucket()["latest.json"])["path"] == name
        sliced = keys(s3, slices + "/")
        assert sliced

        serve(40, "2026-11-21")
        second = download_step(a, target, exports(a), requested_at=None, defer_check=True)
        other = Path(second.path).name
        good = bucket()[other]
        middle = len(good) // 2  # the bucket's copy has the length, not the bytes: a corrupt upload
        s3["client"].put_object(Bucket=BUCKET, Key=f"{prefix}/{other}",
                                Body=good[:middle] + bytes(x ^ 0xFF for x in good[middle:middle + 32]) + good[middle + 32:])
        with pytest.raises(ConfigurationError, match=f"{other} is not a complete gzip file .*found by the slice"):
            slice_on_b(second)
        assert set(bucket()) == {"latest.json", name} and json.loads(bucket()["latest.json"])["path"] == name
        assert keys(s3, slices + "/") == sliced
        assert (exports(a) / other).read_bytes() == good and (exports(a) / "pending.json").exists()  # A's stale cache

        since = demo_sandbox.admin.last_request_id()
        again = download_step(a, target, exports(a), requested_at=None, defer_check=True)
        assert not again.already_downloaded and again.pending
        assert [r["status"] for r in demo_sandbox.admin.requests(since_id=since) if r["path"].startswith("/blob/")] == [200]
        slice_on_b(again)
        assert set(bucket()) == {"latest.json", name, other} and bucket()[other] == good
        assert json.loads(bucket()["latest.json"])["path"] == other


# -- the DAGs against the S3 stand-in -----------------------------------------------------------------


world = world_fixture("s3-al")


@pytest.fixture()
def remote_env(world, aws_conn, monkeypatch):
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", f"s3://{CONN_ID}@{BUCKET}/zooflow")
    monkeypatch.setenv("ZOOFLOW_CACHE_DIR", str(world.cache))
    monkeypatch.setenv("ZOOFLOW_AL_CONFIG", world.al_config)  # the deployment's default: the form leaves it empty
    for name, value in connection_env(world.config).items():
        monkeypatch.setenv(name, value)


def test_exports_write_to_s3_and_active_learning_reads_them_back(airflow_db, remote_env, world, s3, dags_folder,
                                                                  capfd) -> None:
    layout = DataRoot("/zooflow")  # the bucket's layout is the data root's: built in one place

    def key(path: Path) -> str:
        return relative(path, Path("/"))

    al_dir = key(layout.al_dir(SLUG, world.workflow_id))
    al_conf = {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 0.5}

    # Round 1 (cold start): the round state and the batch go to S3.
    first_run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=al_conf)
    assert first_run.state == "success"
    first = json.loads(keys(s3, f"{al_dir}/state.json")[f"{al_dir}/state.json"])["rounds"]
    assert [r["round"] for r in first] == [1] and first[0]["uploaded_at"] and first[0]["labelled"] == 0
    assert f"{al_dir}/round-001/manifest.csv" in keys(s3, f"{al_dir}/round-001/")

    # Volunteers retire the batch; the exports DAG downloads, slices and flattens into the bucket.
    world.label_until_retired(seed_=7)
    exports = load_dag(dags_folder, "zooniverse_exports").test(
        run_conf={"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 0.5})
    assert exports.state == "success"
    stored = keys(s3, key(layout.project_dir(SLUG)) + "/")
    downloads = key(layout.exports_dir(SLUG, "classifications"))
    latest = json.loads(stored[f"{downloads}/latest.json"])
    export_bytes = stored[f"{downloads}/{latest['path']}"]
    assert len(export_bytes) == latest["bytes"] and export_bytes[:2] == b"\x1f\x8b"
    assert f"{downloads}/last_request.json" in stored
    for export_type in ("subjects", "workflows"):
        assert f"{key(layout.exports_dir(SLUG, export_type))}/latest.json" in stored
    slices = key(layout.slices_dir(SLUG, "classifications"))
    parts = sorted(k.removeprefix(slices + "/") for k in stored if k.startswith(slices + "/created_date="))
    assert parts and {p.rsplit(".", 1)[1] for p in parts} == {"csv", "parquet"}
    (report_key,) = [k for k in stored if k.startswith(key(layout.reports_dir(SLUG, "slice-classifications")) + "/")]
    report = json.loads(stored[report_key])
    sliced_rows = sum(stored[f"{slices}/{p}"].count(b"\n") - 1 for p in parts if p.endswith(".csv"))
    assert report["rows_kept"] > 0 and sliced_rows == report["rows_kept"]
    assert any(k.startswith(key(layout.slices_dir(SLUG, "subjects")) + "/created_date=") for k in stored)
    flat = key(layout.flat_dir(SLUG))
    assert any(k.startswith(flat + "/created_date=") and k.endswith(".csv") for k in stored)
    assert not [k for k in stored if k.endswith((".part", ".tmp")) or "/." in k]  # finished files only

    # An empty cache: the next round can only know its state and its labels from S3.
    shutil.rmtree(world.cache)
    second_run = load_dag(dags_folder, "zooniverse_active_learning").test(run_conf=al_conf)
    assert second_run.state == "success"
    stored = keys(s3, al_dir + "/")
    rounds = json.loads(stored[f"{al_dir}/state.json"])["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r.get("uploaded_at") for r in rounds)
    assert rounds[1]["metrics"]["labelled_by_volunteers"] >= 6  # consensus from the store in S3
    consensus = json.loads(stored[f"{al_dir}/round-002/consensus.json"])
    assert consensus["labels"] and set(consensus["labels"]) <= set(rounds[0]["picked"])
    assert not set(rounds[0]["picked"]) & set(rounds[1]["picked"])  # round 1's picks came from S3's state
    assert f"{al_dir}/round-002/uploaded.json" in stored and f"{al_dir}/learning_curve.png" in stored
    # the labels came from the classification store, pulled into S3 (the lock file stays on the worker)
    in_store = keys(s3, key(layout.classifications_dir(SLUG)) + "/")
    assert any(k.endswith(".parquet") for k in in_store) and any(k.endswith("/state.json") for k in in_store)
    assert not [k for k in in_store if k.endswith(".lock")] and f"{al_dir}/workflow-tasks.json" in stored

    output = capfd.readouterr()
    assert SECRET_KEY not in output.out + output.err

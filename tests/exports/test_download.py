"""download_export against the sandbox: resume, expiry, integrity, atomicity, skip-if-unchanged, and
a damaged download (truncated, corrupt, or its record broken) fetched again; with the gzip check left
to the slice (``defer_check``), a pending download promoted by its slice, or refused by it and fetched
again by the next run; and the command line's download still checking as the bytes arrive."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from panoptes_client import Workflow

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.exports import download as download_module
from zooflow.exports.download import download_export, gzip_problem, intact_download, latest_download
from zooflow.exports.export_requests import ExportTarget, describe, export_complete, parse_time, request_export
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.steps import download_step, slice_step
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config
from zooflow.storage import LocalStorage

PROJECT = "demo"


@pytest.fixture(scope="module")
def ready_export(demo_sandbox, tmp_path_factory):
    """A ready classifications export of the demo project with some rows in it."""

    config = demo_user_config(demo_sandbox.endpoint)
    demo_sandbox.admin.configure(export_delay=0.2)
    with connect(config):
        add_demo_subjects(8, start=1000)
        demo_sandbox.admin.run_volunteers(40, seed=9)
        target = ExportTarget("project", 1, "classifications")
        demo_sandbox.admin.advance_clock(hours=25)  # other modules may have asked for this export already
        outcome = request_export(target, tmp_path_factory.mktemp("record") / "last_request.json")
        deadline = time.monotonic() + 20
        while not export_complete(describe(target), parse_time(outcome.requested_at)):
            assert time.monotonic() < deadline, "export never became ready"
            time.sleep(0.1)
    return config, target, outcome


@pytest.fixture()
def client(ready_export, demo_sandbox):
    config, _, _ = ready_export
    demo_sandbox.admin.configure(drop_download_after_bytes=None, url_lifetime=300, fail_next=[])
    with connect(config) as client:
        yield client


def blob_gets(sandbox, since: int) -> list[int]:
    """The statuses of the export blob's GETs since request ``since``."""
    return [r["status"] for r in sandbox.admin.requests(since_id=since) if r["method"] == "GET" and r["path"].startswith("/blob/")]


def test_download_keeps_gzip_bytes_and_points_latest_at_them(ready_export, client, demo_sandbox, tmp_path) -> None:
    _, target, outcome = ready_export
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert result.path.endswith(".csv.gz") and not result.already_downloaded
    with gzip.open(result.path, "rt", encoding="utf-8") as handle:
        assert handle.readline().startswith("classification_id,user_name,user_id,user_ip,workflow_id")
    assert latest_download(tmp_path) == type(latest_download(tmp_path))(result.path)
    assert not list(tmp_path.glob("*.part"))
    since = demo_sandbox.admin.last_request_id()
    again = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert again.already_downloaded and again.path == result.path and again.repaired is None
    assert blob_gets(demo_sandbox, since) == []  # an intact file is checked on disk, not fetched


def test_really_expired_url_is_described_again(ready_export, client, demo_sandbox, tmp_path, monkeypatch) -> None:
    _, target, outcome = ready_export
    demo_sandbox.admin.configure(url_lifetime=1)
    stale = describe(target)
    time.sleep(1.5)  # the signed URL in `stale` has now expired on the sandbox clock
    calls = []

    def describe_once_stale(t):
        calls.append(t)
        return stale if len(calls) == 1 else describe(t)

    monkeypatch.setattr(download_module, "describe", describe_once_stale)
    since = demo_sandbox.admin.last_request_id()
    demo_sandbox.admin.configure(url_lifetime=300)
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert blob_gets(demo_sandbox, since) == [403, 200] and result.attempts == 2 and len(calls) == 2
    assert gzip_problem(tmp_path / result.path.rsplit("/", 1)[1]) is None


def test_killed_worker_leaves_a_part_file_that_the_retry_resumes(ready_export, client, demo_sandbox, tmp_path) -> None:
    _, target, outcome = ready_export
    demo_sandbox.admin.configure(drop_download_after_bytes=500, drop_download_count=10)
    with pytest.raises(PanoptesError, match="did not complete after 2 attempts .* the next run resumes"):
        download_export(target, tmp_path, requested_at=outcome.requested_at, max_attempts=2)
    (part,) = tmp_path.glob("*.part")
    kept = part.stat().st_size
    assert kept == 1000
    demo_sandbox.admin.configure(drop_download_after_bytes=None)
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert result.resumed_from == kept and not list(tmp_path.glob("*.part"))
    assert gzip_problem(tmp_path / result.path.rsplit("/", 1)[1]) is None


def test_a_corrupt_download_is_discarded_and_the_last_good_file_kept(ready_export, client, tmp_path, monkeypatch) -> None:
    _, target, outcome = ready_export
    good = download_export(target, tmp_path, requested_at=outcome.requested_at)
    good_bytes = (tmp_path / good.path.rsplit("/", 1)[1]).read_bytes()
    (tmp_path / good.path.rsplit("/", 1)[1]).rename(tmp_path / "classifications-previous.csv.gz")

    def corrupt(url, part, check, progress, started):  # the transfer "completes" with half the file
        half = good_bytes[: len(good_bytes) // 2]
        part.write_bytes(half)
        check.feed(half)
        return "complete", None, check

    monkeypatch.setattr(download_module, "_fetch", corrupt)
    with pytest.raises(PanoptesError, match="not a complete gzip file"):
        download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert (tmp_path / "classifications-previous.csv.gz").read_bytes() == good_bytes
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / good.path.rsplit("/", 1)[1]).exists()


def test_an_export_not_ready_is_refused_clearly(client, demo_sandbox, tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="subject_set 1 classifications export is not ready to download .never requested"):
        download_export(ExportTarget("subject_set", 1, "classifications"), tmp_path)


def test_a_reused_export_keeps_the_exact_request_time(ready_export, client, tmp_path) -> None:
    """The export finishes after it was asked for; recording the finish time as the request time would
    move the next request back by the build time, and a daily run would skip every other day."""
    _, target, outcome = ready_export
    download_export(target, tmp_path, requested_at=outcome.requested_at)
    record = tmp_path / "last_request.json"
    recorded = record.read_text()
    reused = request_export(target, record)
    assert reused.action == "reused"
    assert reused.requested_at == outcome.requested_at != describe(target).updated_at.isoformat()
    download_export(target, tmp_path, requested_at=reused.requested_at)
    assert record.read_text() == recorded


@pytest.fixture()
def kept(ready_export, client, tmp_path):
    """A good download in ``tmp_path``: (its path, its bytes, latest.json's text)."""
    _, target, outcome = ready_export
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    path = tmp_path / result.path.rsplit("/", 1)[1]
    return path, path.read_bytes(), (tmp_path / "latest.json").read_text()


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp")))


@pytest.mark.parametrize("keep", [0, 0.5], ids=["empty", "half"])
def test_a_truncated_download_is_fetched_again(ready_export, demo_sandbox, kept, tmp_path, keep) -> None:
    _, target, outcome = ready_export
    path, good, _ = kept
    path.write_bytes(good[: int(len(good) * keep)])
    since = demo_sandbox.admin.last_request_id()
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert not result.already_downloaded and result.path == str(path)
    assert result.repaired == f"{path.name} has {int(len(good) * keep)} bytes where {len(good)} were downloaded"
    assert blob_gets(demo_sandbox, since) == [200]
    assert path.read_bytes() == good and result.bytes == len(good)
    assert json.loads((tmp_path / "latest.json").read_text())["bytes"] == len(good)
    assert leftovers(tmp_path) == []


def test_a_corrupt_file_of_the_recorded_size_is_caught_by_the_gzip_check(ready_export, demo_sandbox, kept, tmp_path) -> None:
    _, target, outcome = ready_export
    path, good, _ = kept
    middle = len(good) // 2
    path.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:])
    since = demo_sandbox.admin.last_request_id()
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert result.repaired.startswith(f"{path.name} is not a complete gzip file (")
    assert blob_gets(demo_sandbox, since) == [200] and path.read_bytes() == good


def test_a_damaged_record_is_named_and_the_file_fetched_again(ready_export, demo_sandbox, kept, tmp_path) -> None:
    _, target, outcome = ready_export
    path, good, _ = kept
    (tmp_path / "latest.json").write_text('{"path": "classif')
    with pytest.raises(ConfigurationError, match=r"the record .*latest.json is damaged \(.*\); run the exports DAG normally"):
        latest_download(tmp_path)
    since = demo_sandbox.admin.last_request_id()
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert result.repaired.startswith(f"the record {tmp_path / 'latest.json'} is damaged (")
    assert blob_gets(demo_sandbox, since) == [200]
    assert json.loads((tmp_path / "latest.json").read_text())["bytes"] == len(good) and leftovers(tmp_path) == []


def test_a_failed_repair_keeps_the_record_and_the_next_run_resumes(ready_export, demo_sandbox, kept, tmp_path) -> None:
    """latest.json only ever describes a verified file: a repair that fails leaves it as it was."""
    _, target, outcome = ready_export
    path, good, record = kept
    path.write_bytes(b"")
    demo_sandbox.admin.configure(drop_download_after_bytes=500, drop_download_count=10)
    with pytest.raises(PanoptesError, match="did not complete after 1 attempts"):
        download_export(target, tmp_path, requested_at=outcome.requested_at, max_attempts=1)
    assert (tmp_path / "latest.json").read_text() == record and path.read_bytes() == b""
    with pytest.raises(ConfigurationError, match=f"the last download {path} is damaged: {path.name} has 0 bytes"):
        intact_download(latest_download(tmp_path))
    demo_sandbox.admin.configure(drop_download_after_bytes=None)
    result = download_export(target, tmp_path, requested_at=outcome.requested_at)
    assert result.resumed_from == 500 and path.read_bytes() == good and leftovers(tmp_path) == []
    assert intact_download(latest_download(tmp_path)) == path


def test_a_backfill_refuses_a_damaged_last_download_naming_the_fix(kept) -> None:
    path, good, _ = kept
    assert intact_download(path) == path
    path.write_bytes(good[:-10])
    with pytest.raises(ConfigurationError) as raised:
        intact_download(path)
    assert str(raised.value) == (
        f"the last download {path} is damaged: {path.name} has {len(good) - 10} bytes where {len(good)} were downloaded. "
        "A backfill re-slices it and fetches nothing; run the exports DAG normally (request_new on, not as a backfill) "
        "to download it again, then backfill")
    path.unlink()
    with pytest.raises(ConfigurationError, match=f"the last download {path} is damaged: {path.name} is missing"):
        intact_download(path)


# -- the gzip check left to the slice (defer_check), as the exports DAG downloads what it slices ----------------


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def earlier_run(ready_export, client, tmp_path):
    """An exports folder as an earlier run left it: an older export, checked and named by latest.json,
    and its slices. The sandbox's current export is new to it. Returns (store, exports dir, older file)."""
    _, target, outcome = ready_export
    store = LocalStorage(DataRoot(tmp_path / "data"))
    exports = store.root.exports_dir(PROJECT, "classifications")
    first = Path(download_export(target, exports, requested_at=outcome.requested_at).path)
    older = first.rename(exports / "classifications-1-20261101T000000000000Z.csv.gz")
    record = json.loads((exports / "latest.json").read_text())
    (exports / "latest.json").write_text(json.dumps(record | {"path": older.name}))
    slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="earlier")
    assert list(store.root.slices_dir(PROJECT, "classifications").glob("created_date=*"))
    return store, exports, older


def test_a_deferred_download_is_pending_until_its_slice_promotes_it(ready_export, demo_sandbox, earlier_run) -> None:
    _, target, outcome = ready_export
    store, exports, older = earlier_run
    record = (exports / "latest.json").read_text()
    result = download_step(store, target, exports, requested_at=outcome.requested_at, defer_check=True)
    path = Path(result.path)
    assert result.pending and not result.already_downloaded and path.is_file() and path != older
    assert json.loads((exports / "pending.json").read_text())["path"] == path.name
    assert (exports / "latest.json").read_text() == record  # what reads "the last download" sees the checked one
    assert intact_download(latest_download(exports)) == older and leftovers(exports) == []

    since = demo_sandbox.admin.last_request_id()
    again = download_step(store, target, exports, requested_at=outcome.requested_at, defer_check=True)
    assert again.already_downloaded and again.pending and blob_gets(demo_sandbox, since) == []

    step = slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="now", download=again.to_dict())
    assert step.source == path and step.report.rows_read > 0
    assert latest_download(exports) == path and json.loads((exports / "latest.json").read_text())["bytes"] == result.bytes
    assert not (exports / "pending.json").exists() and older.is_file()  # the one before is kept, as ever

    settled = download_step(store, target, exports, requested_at=outcome.requested_at, defer_check=True)
    assert settled.already_downloaded and not settled.pending and blob_gets(demo_sandbox, since) == []
    retried = slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="now", download=again.to_dict())
    assert retried.source == path  # a slice task run again after the promotion slices the same file


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_damaged_pending_download_is_refused_by_the_slice_and_downloaded_again(ready_export, demo_sandbox, earlier_run,
                                                                                 damage) -> None:
    _, target, outcome = ready_export
    store, exports, older = earlier_run
    slices = store.root.slices_dir(PROJECT, "classifications")
    result = download_step(store, target, exports, requested_at=outcome.requested_at, defer_check=True)
    path = Path(result.path)
    good = path.read_bytes()
    middle = len(good) // 2
    # A transfer that delivered the announced length but wrong bytes; or a file cut after it was recorded.
    path.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:]
                     if damage == "corrupt" else good[:middle])
    before = {"latest": (exports / "latest.json").read_text(), "older": older.read_bytes(), "slices": tree(slices)}

    with pytest.raises(ConfigurationError) as refused:
        slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="now", download=result.to_dict())
    why = "is not a complete gzip file (" if damage == "corrupt" else f"has {middle} bytes where {len(good)} were downloaded"
    assert f"{path.name} {why}" in str(refused.value)
    assert str(refused.value).endswith(", found by the slice: removed, so the next run downloads it again; the last good "
                                       "download and its slices are unchanged")
    assert not path.exists() and not (exports / "pending.json").exists() and leftovers(exports) == []
    assert before == {"latest": (exports / "latest.json").read_text(), "older": older.read_bytes(), "slices": tree(slices)}
    with pytest.raises(ConfigurationError, match=f"the download {path.name} is no longer waiting for its check"):
        slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="now", download=result.to_dict())

    since = demo_sandbox.admin.last_request_id()
    again = download_step(store, target, exports, requested_at=outcome.requested_at, defer_check=True)
    assert not again.already_downloaded and again.pending and blob_gets(demo_sandbox, since) == [200]
    assert path.read_bytes() == good
    slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="next", download=again.to_dict())
    assert latest_download(exports) == path and not (exports / "pending.json").exists()


def test_a_checked_download_the_slice_finds_damaged_is_fetched_again(ready_export, demo_sandbox, earlier_run) -> None:
    """An unchanged export is not read again by the download when the slice reads it next: a file of the
    recorded size whose bytes went bad since is found by the slice, marked, and fetched again (checked)."""
    _, target, outcome = ready_export
    store, exports, older = earlier_run
    slices = tree(store.root.slices_dir(PROJECT, "classifications"))
    good = (exports / older.name).read_bytes()
    middle = len(good) // 2
    older.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:])
    with pytest.raises(ConfigurationError) as raised:
        slice_step(store, PROJECT, "classifications", exports, SliceSpec(), run_id="now",
                   download={"path": str(older), "already_downloaded": True})
    assert str(raised.value).startswith(f"the last download {older} is damaged: {older.name} is not a complete gzip file (")
    assert tree(store.root.slices_dir(PROJECT, "classifications")) == slices
    with pytest.raises(ConfigurationError, match=f"the last download {older} is damaged: {older.name} is not a complete"):
        intact_download(latest_download(exports))  # a backfill refuses it too
    assert json.loads((exports / "latest.json").read_text())["damaged"].startswith(f"{older.name} is not a complete gzip")


def test_the_unchanged_export_is_trusted_by_size_when_the_slice_checks_it(ready_export, demo_sandbox, kept, tmp_path,
                                                                          monkeypatch) -> None:
    """Deferred, an export already downloaded is not inflated again by the download; checked as it arrives
    (the CLI), it is."""
    _, target, outcome = ready_export
    path, _, _ = kept
    inflated = []
    monkeypatch.setattr(download_module, "gzip_problem", lambda p: inflated.append(p) or None)
    assert download_export(target, tmp_path, requested_at=outcome.requested_at, defer_check=True).already_downloaded
    assert inflated == []
    assert download_export(target, tmp_path, requested_at=outcome.requested_at).already_downloaded
    assert inflated == [path]


def test_the_cli_download_checks_the_gzip_during_the_transfer(demo_config, demo_sandbox, tmp_path) -> None:
    """``zooflow export download`` keeps checking the whole gzip as it arrives: a corrupt export of the
    announced length is refused before anything records it; ``--defer-check`` leaves it pending instead."""
    with connect(demo_config):
        workflow_id = int(Workflow.where(project_id=1).next().id)
    demo_sandbox.admin.advance_clock(hours=25)
    good = gzip.compress(b"classification_id,user_name\n" + b"".join(b"%d,volunteer %d\n" % (n, n * 7) for n in range(20000)))
    middle = len(good) // 2
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:])
    demo_sandbox.admin.install_export("workflow", workflow_id, "classifications", corrupt)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))} | {
        "PANOPTES_ENDPOINT": demo_config.endpoint, "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password, "ZOOFLOW_DATA_ROOT": str(tmp_path / "data")}

    def zooflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zooflow", "export", *args, seed.DEMO_PROJECT_SLUG,
                               "--workflow-id", str(workflow_id)], capture_output=True, text=True, env=env, timeout=180)

    assert zooflow("request").returncode == 0  # the installed export is fresh: reused, not requested
    exports = DataRoot(tmp_path / "data").exports_dir(seed.DEMO_PROJECT_SLUG, "classifications", "workflow", workflow_id)
    refused = zooflow("download")
    assert refused.returncode != 0 and "is not a complete gzip file" in refused.stderr
    assert sorted(p.name for p in exports.iterdir()) == ["last_outcome.json"]  # no file, no record, no .part
    deferred = zooflow("download", "--defer-check", "--json")
    assert deferred.returncode == 0, deferred.stderr
    (result,) = json.loads(deferred.stdout)
    assert result["pending"] and not DataRoot.latest_pointer(exports).exists()
    assert json.loads((exports / "pending.json").read_text())["path"] == Path(result["path"]).name

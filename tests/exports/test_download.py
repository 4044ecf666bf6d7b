"""download_export against the sandbox: resume, expiry, integrity, atomicity, skip-if-unchanged, and
a damaged download (truncated, corrupt, or its record broken) fetched again."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.exports import download as download_module
from zooflow.exports.download import download_export, gzip_problem, intact_download, latest_download
from zooflow.exports.export_requests import ExportTarget, describe, export_complete, parse_time, request_export
from zooflow.panoptes import connect
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config


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

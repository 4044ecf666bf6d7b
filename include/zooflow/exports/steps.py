"""The export pipeline's steps over a data root: the one sequence the DAG's tasks and the CLI run.

Each step pulls what it reads (the request record, the pointer to the last download, the download,
the slices), calls the library, and pushes what it finished, through a ``zooflow.storage.Storage``:
``LocalStorage`` for a folder (pull and push do nothing), the provider's ``DataStore`` for object
storage. The operators add only Airflow's part: skips, deferral, XCom and the Asset event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zooflow.errors import ConfigurationError
from zooflow.exports.download import (
    KEEP_DOWNLOADS, DownloadResult, Progress, after_failed_read, download_export, export_filename, intact_download,
    pending_download, pending_problem, promote_download, refuse_download,
)
from zooflow.exports.export_requests import ExportTarget, RequestOutcome, describe, request_export
from zooflow.exports.flatten import flatten_export
from zooflow.exports.pointer import PENDING, pending_pointer, read_pointer
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing import SliceReport, slice_export
from zooflow.files import atomic_write_json
from zooflow.paths import DataRoot
from zooflow.reports.export_report import export_size, write_export_report
from zooflow.reports.publish import ReportFiles
from zooflow.storage import Storage, has_download, pull_latest_download


def request_step(store: Storage, target: ExportTarget, exports_dir: Path) -> RequestOutcome:
    """Ask Panoptes for a fresh export when its limiter will take it (``request_export``); the request
    record counts for the 24-hour limit even if nothing is built, so it is pushed at once."""
    record = DataRoot.request_record(exports_dir)
    store.pull(record, DataRoot.latest_pointer(exports_dir))  # when zooflow last asked; its last good download
    outcome = request_export(target, record)
    if outcome.action == "requested":
        store.push(record)
    return outcome


def download_step(store: Storage, target: ExportTarget, exports_dir: Path, *, requested_at: str | None,
                  progress: Progress | None = None, defer_check: bool = False) -> DownloadResult:
    """Download the built export into ``exports_dir`` (again, if the copy kept is damaged); an export
    already in a remote data root is pulled from there, not fetched from Panoptes again.

    With ``defer_check`` (the DAG, for the exports it slices) the gzip's CRC and length are left to
    ``slice_step``, which reads the whole file anyway: a new download is recorded in ``pending.json``
    and ``latest.json`` keeps naming the last checked one until the slice promotes it."""
    store.pull(DataRoot.latest_pointer(exports_dir), DataRoot.request_record(exports_dir))
    earlier = _pull_pending(store, exports_dir)
    if store.is_remote:
        media = describe(target)
        if media is not None and media.ready:
            _pull_download(store, exports_dir / export_filename(target, media))
    result = download_export(target, exports_dir, requested_at=requested_at, progress=progress, defer_check=defer_check)
    store.push(exports_dir)  # the finished download and its records; never the .part file
    if earlier and earlier not in _recorded(exports_dir):
        store.prune(exports_dir, earlier, keep=0)  # an older pending download, superseded before any slice checked it
    _sync_records(store, exports_dir, target.export_type)
    return result


def _pull_download(store: Storage, path: Path) -> None:
    """Pull a download from a remote root. A copy cached here that the remote root does not hold is
    dropped: another worker refused or pruned it there (or it was never pushed), and pushing it again
    would be skipped as unchanged since this cache last synced it."""
    pulled = store.pull(path)
    if store.is_remote and not (pulled.moved or pulled.unchanged):
        path.unlink(missing_ok=True)


def _pull_pending(store: Storage, exports_dir: Path) -> str | None:
    """Pull ``pending.json`` and return the file it names, or None. A remote root's record is the one
    that counts: a copy cached on this worker may name a download that another worker's slice has since
    promoted or refused, so it is dropped before the pull."""
    record = pending_pointer(exports_dir)
    if store.is_remote:
        record.unlink(missing_ok=True)
    store.pull(record)
    pending = pending_download(exports_dir)
    return pending.name if pending else None


def _sync_records(store: Storage, exports_dir: Path, export_type: str) -> None:
    """After a step changed the records: push them (``latest.json``, ``pending.json``, the request record),
    remove a remote ``pending.json`` that is no longer here, and keep the newest remote downloads (never
    those the records name)."""
    store.push(DataRoot.latest_pointer(exports_dir), pending_pointer(exports_dir), DataRoot.request_record(exports_dir))
    if not pending_pointer(exports_dir).exists():
        store.prune(exports_dir, PENDING, keep=0)
    store.prune(exports_dir, f"{export_type}-*.csv.gz", keep=KEEP_DOWNLOADS, always=sorted(_recorded(exports_dir)))


def _recorded(exports_dir: Path) -> set[str]:
    """The downloads the records name: ``latest.json``'s and ``pending.json``'s."""
    try:
        latest = read_pointer(exports_dir).get("path")
    except ValueError:
        latest = None
    pending = pending_download(exports_dir)
    return {name for name in (latest, pending.name if pending else None) if name}


def last_download(store: Storage, exports_dir: Path) -> Path:
    """The last verified download (what a backfill re-slices); a ConfigurationError naming the fix if damaged."""
    return intact_download(pull_latest_download(store, exports_dir))


@dataclass
class SliceStep:
    """A slice step's report, the JSON report's path, and the download it sliced."""

    report: SliceReport
    result: dict[str, Any]
    report_path: Path
    source: Path


def slice_step(store: Storage, project: str, export_type: str, exports_dir: Path, spec: SliceSpec, *, run_id: str,
               progress: Callable[[Path], Any] | None = None, download: Mapping[str, Any] | None = None) -> SliceStep:
    """Slice the run's download into date partitions and write the run's slice report; ``progress``
    makes the progress callback for the download being sliced.

    ``download`` is the download step's result: when it is ``pending`` (its gzip check left to the
    slice), this read is the check. The slice's gzip reader checks the CRC and the length at the end,
    so a slice that completes promotes the download to ``latest.json``; one that fails on a damaged
    file refuses it (see ``download.after_failed_read``), leaving the last good download and the
    slices as they were. Otherwise (a backfill, an export already checked) the last checked download
    is sliced. Without ``download``, a pending download is sliced if there is one."""
    root = store.root
    source, pending = _slice_source(store, exports_dir, export_type, download)
    try:
        report = slice_export(source, root.slices_dir(project, export_type), spec,
                              progress=progress(source) if progress else None)
    except Exception as exc:
        error = after_failed_read(source, pending=pending)
        _settled(store, exports_dir, export_type, source)
        if error is not None:
            raise error from exc
        raise
    if pending:
        promote_download(source)
        _settled(store, exports_dir, export_type, source)
    result = report.to_dict() | {"project": project, "export_type": export_type}
    path = atomic_write_json(root.report(project, f"slice-{export_type}", run_id), result)
    # Each partition written is replaced whole, so its remote copy is mirrored (no stale parts stay).
    store.push(*sorted({Path(output).parent for output in report.outputs}), mirror=True)
    store.push(report.quarantine_file, path)
    return SliceStep(report, result, path, source)


def _slice_source(store: Storage, exports_dir: Path, export_type: str,
                  download: Mapping[str, Any] | None) -> tuple[Path, bool]:
    """The download this run slices, pulled, and whether the slice is its check (it is pending)."""
    store.pull(DataRoot.latest_pointer(exports_dir))
    pending = _pull_pending(store, exports_dir)
    if download is not None and not download.get("pending"):
        return pull_latest_download(store, exports_dir), False
    name = Path(str(download["path"])).name if download is not None else pending
    try:
        latest = read_pointer(exports_dir).get("path")
    except ValueError:
        latest = None
    if name is None or name == latest:  # nothing pending, or promoted already (this task run before)
        return pull_latest_download(store, exports_dir), False
    if name != pending:
        raise ConfigurationError(
            f"the download {name} is no longer waiting for its check in {exports_dir} (a slice found it damaged and "
            "removed it, or a newer download replaced it); run the exports DAG again to download the export again")
    source = exports_dir / name
    _pull_download(store, source)
    if problem := pending_problem(source):
        error = refuse_download(source, problem)
        _settled(store, exports_dir, export_type, source)
        raise error
    return source, True


def _settled(store: Storage, exports_dir: Path, export_type: str, source: Path) -> None:
    """Mirror what settling a download changed (promoted, refused, marked damaged) in a remote root."""
    if not source.exists():
        store.prune(exports_dir, source.name, keep=0)
    _sync_records(store, exports_dir, export_type)


def flatten_step(store: Storage, project: str, exports_dir: Path, sliced: SliceReport, *, run_id: str,
                 partitions: Iterable[str], log: Any = None) -> tuple[dict[str, Any], ReportFiles]:
    """Flatten each date partition's parts into tidy tables (task types from the workflows export, if
    downloaded), then write the run's export report. Returns the per-part reports and the page."""
    root = store.root
    workflows_dir = root.exports_dir(project, "workflows")
    workflows_export = pull_latest_download(store, workflows_dir) if has_download(store, workflows_dir) else None
    slices = root.slices_dir(project, "classifications")
    reports, written = {}, []
    for day in partitions:
        store.pull(slices / f"created_date={day}")
        for part in sorted((slices / f"created_date={day}").glob("part-*.csv")):
            report = flatten_export(part, root.flat_dir(project) / f"created_date={day}" / part.stem,
                                    workflows_export=workflows_export)
            if log is not None:
                log("%s: %d classifications -> %d task rows, %d quarantined", part.name,
                    report.rows_read, report.rows_written, report.rows_quarantined)
            reports[f"{day}/{part.stem}"] = report.to_dict()
            written += [*report.outputs, report.quarantine_file]
    store.push(*written)
    store.pull(DataRoot.latest_pointer(exports_dir))  # the export's size, when its download is on another worker
    page = write_export_report(root, project, run_id, sliced, reports,
                               export_bytes=export_size(exports_dir / Path(sliced.source).name))
    store.push(*page.paths())
    return reports, page

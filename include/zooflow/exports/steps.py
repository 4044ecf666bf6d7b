"""The export pipeline's steps over a data root: the one sequence the DAG's tasks and the CLI run.

Each step pulls what it reads (the request record, the pointer to the last download, the download,
the slices), calls the library, and pushes what it finished, through a ``zooflow.storage.Storage``:
``LocalStorage`` for a folder (pull and push do nothing), the provider's ``DataStore`` for object
storage. The operators add only Airflow's part: skips, deferral, XCom and the Asset event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zooflow.exports.download import KEEP_DOWNLOADS, DownloadResult, Progress, download_export, export_filename, intact_download
from zooflow.exports.export_requests import ExportTarget, RequestOutcome, describe, request_export
from zooflow.exports.flatten import flatten_export
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
                  progress: Progress | None = None) -> DownloadResult:
    """Download the built export into ``exports_dir`` (again, if the copy kept is damaged); an export
    already in a remote data root is pulled from there, not fetched from Panoptes again."""
    store.pull(DataRoot.latest_pointer(exports_dir), DataRoot.request_record(exports_dir))
    if store.is_remote:
        media = describe(target)
        if media is not None and media.ready:
            store.pull(exports_dir / export_filename(target, media))
    result = download_export(target, exports_dir, requested_at=requested_at, progress=progress)
    store.push(exports_dir)  # the finished download and its records; never the .part file
    store.prune(exports_dir, f"{target.export_type}-*.csv.gz", keep=KEEP_DOWNLOADS, always=[Path(result.path).name])
    return result


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
               progress: Callable[[Path], Any] | None = None) -> SliceStep:
    """Slice the last download into date partitions and write the run's slice report; ``progress``
    makes the progress callback for the download being sliced."""
    root = store.root
    source = pull_latest_download(store, exports_dir)
    report = slice_export(source, root.slices_dir(project, export_type), spec,
                          progress=progress(source) if progress else None)
    result = report.to_dict() | {"project": project, "export_type": export_type}
    path = atomic_write_json(root.report(project, f"slice-{export_type}", run_id), result)
    # Each partition written is replaced whole, so its remote copy is mirrored (no stale parts stay).
    store.push(*sorted({Path(output).parent for output in report.outputs}), mirror=True)
    store.push(report.quarantine_file, path)
    return SliceStep(report, result, path, source)


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

"""Downloading an export: streamed, resumable, verified, and atomic.

Exports reach several GB, signed URLs expire within minutes, and connections drop. The bytes are
kept as Panoptes delivers them (gzip), written to a ``.part`` file that survives a failed attempt
or a killed worker, resumed with an HTTP Range request (describing the export again when its URL
has expired), checked for length and gzip integrity, and only then renamed into place, so the
last good download is never replaced by a broken one. The gzip is checked as it arrives, on a
second thread, so the check costs no time whenever the network is slower than inflating.

A file already there is not trusted blindly either: a disk, a sync or a person may have truncated
it since. Every run compares it with ``latest.json`` (its size first, which catches truncation at
no cost, then the same gzip check, streamed from disk) and fetches a damaged one again, so a
broken file is never "already downloaded" and ``latest.json`` only ever describes a verified file.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import urllib3
from isal import isal_zlib
from tenacity import RetryError, stop_after_attempt

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.exports.export_requests import ExportMedia, ExportTarget, describe, remember_request
from zooflow.exports.pointer import read_pointer
from zooflow.files import atomic_write_json
from zooflow.paths import DataRoot
from zooflow.retries import DOWNLOAD_ATTEMPTS, DOWNLOAD_RESUMES, Unfinished

log = logging.getLogger(__name__)

CHUNK = 8 << 20  # one reused read buffer: 8 MB reads run near the speed of curl
INFLATE_STEP = 1 << 20  # bounded inflate output keeps the check fast and its memory flat
KEEP_DOWNLOADS = 2
# Reading response.raw raises urllib3's own errors, not requests' wrappers of them.
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
             urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)

Progress = Callable[[int, int | None, float], None]  # (bytes so far, total or None, seconds elapsed)


@dataclass(frozen=True)
class DownloadResult:
    path: str
    media_id: str
    updated_at: str
    bytes: int
    resumed_from: int
    attempts: int
    seconds: float
    already_downloaded: bool
    repaired: str | None = None  # why the file already there was fetched again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_filename(target: ExportTarget, media: ExportMedia) -> str:
    return f"{target.export_type}-{media.media_id}-{media.updated_at:%Y%m%dT%H%M%S%fZ}.csv.gz"


class GzipCheck:
    """Inflates the download as it arrives, on its own thread, so the gzip's CRC and length are checked
    by the time the last byte lands: no second pass over a multi-GB file."""

    def __init__(self) -> None:
        # Four chunks in flight at most: when inflating lags (loopback), the transfer waits instead of buffering.
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._inflate = isal_zlib.decompressobj(wbits=31)
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="gzip-check", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        self._queue.put(data)

    def feed_file(self, path: Path) -> None:
        with open(path, "rb") as handle:
            while data := handle.read(CHUNK):
                self.feed(data)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(data)
                except isal_zlib.error as exc:
                    self._error = str(exc)

    def _consume(self, data: bytes) -> None:
        while data:
            if self._inflate.eof:  # another gzip member follows the first
                data = self._inflate.unused_data + data
                self._inflate = isal_zlib.decompressobj(wbits=31)
            self._inflate.decompress(data, INFLATE_STEP)
            data = self._inflate.unconsumed_tail

    def finish_quietly(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def problem(self) -> str | None:
        """Why the bytes fed are not one complete gzip file, or None; ends the check."""
        self.finish_quietly()
        if self._error:
            return self._error
        if not self._inflate.eof:
            return "it ends early"
        return "bytes follow its end" if self._inflate.unused_data else None

    def finish(self, name: str) -> None:
        if problem := self.problem():
            raise PanoptesError(f"{name} is not a complete gzip file ({problem}); it will be downloaded again")


def gzip_problem(path: Path) -> str | None:
    """Check a gzip file already on disk, as a download is checked: why it is not complete, or None."""
    check = GzipCheck()
    check.feed_file(path)
    return check.problem()


def _fetch(url: str, part: Path, check: GzipCheck, progress: Progress | None, started: float) -> tuple[str, int | None, GzipCheck]:
    """One attempt: append to ``part`` from its current size. Returns (outcome, total size or None, the check)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with requests.get(url, headers=headers, stream=True, timeout=(10, 60)) as response:
        if response.status_code == 403:
            return "expired", None, check
        if response.status_code == 416:
            return "complete", offset, check
        if response.status_code not in (200, 206):
            raise PanoptesError(f"the export download answered {response.status_code}: {response.text[:200]}")
        if response.status_code == 200 and offset:
            offset = 0  # the server ignored the Range: start over rather than append a second copy
            check.finish_quietly()
            check = GzipCheck()
        total = _total_size(response, offset)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        done = offset
        with open(part, "ab" if offset else "wb") as handle:
            while count := response.raw.readinto(view):
                handle.write(view[:count])
                check.feed(bytes(view[:count]))
                done += count
                if progress:
                    progress(done, total, time.monotonic() - started)
            handle.flush()
            os.fsync(handle.fileno())
    return "complete", total, check


def _total_size(response: requests.Response, offset: int) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        start = content_range.removeprefix("bytes ").split("-")[0]
        if start != str(offset):
            raise PanoptesError(f"asked for bytes from {offset}, got {content_range!r}")
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download_export(
    target: ExportTarget,
    dest_dir: str | os.PathLike[str],
    *,
    requested_at: str | None = None,
    max_attempts: int = DOWNLOAD_ATTEMPTS,
    progress: Progress | None = None,
) -> DownloadResult:
    """Fetch the current export of ``target`` into ``dest_dir``; skip it if this version is already there."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    media = describe(target)
    if media is None or not media.ready or not media.src:
        state = "never requested" if media is None else media.state
        raise ConfigurationError(f"the {target} is not ready to download ({state}); request it and wait first")
    final = dest / export_filename(target, media)
    damage = download_problem(final) if final.exists() else None
    if final.exists() and damage is None:
        log.info("%s: %s already downloaded (and still intact)", target, final.name)
        _record(dest, final, media, requested_at, target)
        return DownloadResult(str(final), media.media_id, media.updated_at.isoformat(), final.stat().st_size, 0, 0, 0.0, True)
    if damage:  # kept in place until the new copy verifies: the rename below replaces it whole
        log.warning("%s: %s; downloading it again", target, damage)
    part = final.with_name(final.name + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    if resumed_from:
        log.info("%s: resuming the partial download at %.1f MB", target, resumed_from / 1e6)
    started = time.monotonic()
    transfer = _Transfer(target, media, part, GzipCheck(), media.src, progress, started)
    if resumed_from:
        transfer.check.feed_file(part)
    try:
        for attempt in DOWNLOAD_RESUMES.copy(stop=stop_after_attempt(max_attempts)):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if attempts > 1:
                    transfer.refresh_url()
                transfer.fetch_rest()
    except RetryError as exc:
        transfer.check.finish_quietly()
        size = part.stat().st_size if part.exists() else 0
        raise PanoptesError(
            f"the {target} download did not complete after {exc.last_attempt.attempt_number} attempts ({size} bytes "
            f"kept in {part.name}; the next run resumes from there)"
        ) from None
    check = transfer.check
    try:
        check.finish(final.name)
    except PanoptesError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)
    seconds = time.monotonic() - started
    if progress:
        progress(final.stat().st_size, final.stat().st_size, seconds)
    _record(dest, final, media, requested_at, target)
    _prune(dest, target, keep=final)
    return DownloadResult(str(final), media.media_id, media.updated_at.isoformat(), final.stat().st_size,
                          resumed_from, attempts, round(seconds, 3), False, damage)


@dataclass
class _Transfer:
    """The state one download carries from attempt to attempt: the signed URL and the running check."""

    target: ExportTarget
    media: ExportMedia
    part: Path
    check: GzipCheck
    url: str
    progress: Progress | None
    started: float

    def fetch_rest(self) -> None:
        """One attempt at the rest of ``part``; :class:`Unfinished` unless the whole file is there."""
        try:
            outcome, total, self.check = _fetch(self.url, self.part, self.check, self.progress, self.started)
        except RETRYABLE as exc:
            log.warning("%s: connection dropped at %.1f MB (%s); resuming", self.target,
                        self.part.stat().st_size / 1e6 if self.part.exists() else 0, exc.__class__.__name__)
            raise Unfinished("connection dropped", dropped=True) from exc
        if outcome == "expired":
            log.info("%s: the signed URL expired; describing the export again", self.target)
            raise Unfinished("signed URL expired")
        size = self.part.stat().st_size if self.part.exists() else 0
        if total is not None and size != total:
            log.warning("%s: got %d of %d bytes; resuming", self.target, size, total)
            raise Unfinished("short")

    def refresh_url(self) -> None:
        """A new signed URL before a new attempt; a regenerated export ends the download."""
        fresh = describe(self.target)
        if fresh is None or fresh.media_id != self.media.media_id or fresh.updated_at != self.media.updated_at:
            self.check.finish_quietly()
            self.part.unlink(missing_ok=True)
            raise PanoptesError(f"the {self.target} changed during the download; run the download again")
        self.url = fresh.src


def _record(dest: Path, final: Path, media: ExportMedia, requested_at: str | None, target: ExportTarget) -> None:
    """Point ``latest.json`` at this file, verified by the caller, and remember when it was requested
    (for the 24-hour rule).

    A pointer already naming this very export is left alone, so a run done twice changes nothing."""
    pointer = {"path": final.name, "media_id": media.media_id, "updated_at": media.updated_at.isoformat(),
               "bytes": final.stat().st_size}
    try:
        current = read_pointer(dest)
    except ValueError:
        current = {}
    if {key: current.get(key) for key in pointer} != pointer:
        atomic_write_json(DataRoot.latest_pointer(dest), pointer | {"recorded_at": datetime.now(timezone.utc).isoformat()})
    if requested_at:
        remember_request(DataRoot.request_record(dest), media, requested_at)


def download_problem(path: Path) -> str | None:
    """Why a downloaded export no longer matches ``latest.json``'s record of it, or None if it does.

    The size comes first: truncation, the usual damage, shows there at no cost. Only a file of the
    recorded size (or one the record does not describe) is read whole for the gzip check."""
    try:
        pointer = read_pointer(path.parent)
    except ValueError as exc:
        return str(exc)
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    recorded = pointer.get("bytes") if pointer.get("path") == path.name else None
    if recorded is not None and size != recorded:
        return f"{path.name} has {size} bytes where {recorded} were downloaded"
    problem = gzip_problem(path)
    return f"{path.name} is not a complete gzip file ({problem})" if problem else None


def latest_download(dest_dir: str | os.PathLike[str]) -> Path:
    """The file ``latest.json`` names; backfills re-slice it instead of requesting anything."""
    try:
        name = read_pointer(Path(dest_dir)).get("path")
    except ValueError as exc:
        raise ConfigurationError(f"{exc}; run the exports DAG normally (requesting) to download the export again") from None
    if not name:
        raise ConfigurationError(f"no downloaded export in {Path(dest_dir)}; run the exports DAG once for a current date first")
    return Path(dest_dir) / name


def intact_download(path: Path) -> Path:
    """``path`` if it still matches its record; a backfill, which fetches nothing, must not slice a damaged file."""
    if problem := download_problem(path):
        raise ConfigurationError(
            f"the last download {path} is damaged: {problem}. A backfill re-slices it and fetches nothing; "
            "run the exports DAG normally (request_new on, not as a backfill) to download it again, then backfill"
        )
    return path


def _prune(dest: Path, target: ExportTarget, keep: Path) -> None:
    """Keep the newest downloads of this export type; older ones only cost disk."""
    files = sorted(dest.glob(f"{target.export_type}-*.csv.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_DOWNLOADS:]:
        if old != keep:
            old.unlink(missing_ok=True)

"""Downloading an export: streamed, resumable, checked, and atomic.

Exports reach several GB, signed URLs expire within minutes, and connections drop. The bytes are
kept as Panoptes delivers them (gzip), written to a ``.part`` file that survives a failed attempt
or a killed worker, resumed with an HTTP Range request (describing the export again when its URL
has expired), checked, and only then renamed into place, so the last good download is never
replaced by a broken one.

Every download is checked against the length the server announced and resumed until it has it.
The gzip's own CRC and length, which only inflating the whole file shows, are checked in one of
two places:

* **during the transfer** (the default: ``zooflow export download``, and the exports nothing
  slices): a second thread inflates the bytes as they arrive, so the check costs no time whenever
  the network is slower than inflating, and the file is recorded in ``latest.json`` once it passes;
* **by the slice** (``defer_check``: the DAG's classifications and subjects). The slice inflates
  the whole file anyway, through a reader that checks the CRC and the length at the end (a
  truncated, corrupt or over-long file raises there); inflating it here too would cost more CPU
  than the transfer itself on a fast link (~0.8 s per GB of CSV, against ~0.2 s to move its
  155 MB of gzip on loopback). The download checks what costs nothing (the length, the gzip
  header) and records the file in ``pending.json``; ``latest.json`` and the file it names stay as
  they were, so whatever reads "the last download" (backfills, the flatten step's workflows export,
  :func:`intact_download`) sees checked files only. When the slice has read it whole,
  :func:`promote_download` makes it the latest; when the slice fails, :func:`after_failed_read`
  tells a damaged download from other failures and refuses a damaged one (the file and its record
  go, the last good download, its record and the slices stay) so the next run downloads it again.

A file already there is not trusted blindly either: a disk, a sync or a person may have truncated
it since. Every run compares it with its record (its size first, which catches truncation at no
cost, then — unless the slice is about to read it — the same gzip check, streamed from disk) and
fetches a damaged one again, checked during that transfer. A checked file that the slice finds
damaged later is marked so in ``latest.json``, and fetched again the same way.
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
from zooflow.exports.export_requests import ExportMedia, ExportTarget, describe, parse_time, remember_request
from zooflow.exports.pointer import pending_pointer, read_pending, read_pointer
from zooflow.files import atomic_write_json
from zooflow.paths import DataRoot
from zooflow.retries import DOWNLOAD_ATTEMPTS, DOWNLOAD_RESUMES, Unfinished

log = logging.getLogger(__name__)

# One reused 64 KB read buffer: on loopback a fresh process moved 155 MB in 0.08-0.16 s with it, against
# 0.2-0.5 s reading 128 KB to 8 MB at a time (urllib3 allocates each read; bench_download.py).
CHUNK = 64 << 10
CHECK_BLOCK = 1 << 20  # the gzip check is fed in blocks this size
IN_FLIGHT = 32  # blocks queued for the gzip check at most: when inflating lags, the transfer waits
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
    pending: bool = False  # recorded in pending.json: its gzip check is the slice's (``defer_check``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_filename(target: ExportTarget, media: ExportMedia) -> str:
    return f"{target.export_type}-{media.media_id}-{media.updated_at:%Y%m%dT%H%M%S%fZ}.csv.gz"


class GzipCheck:
    """Inflates the download as it arrives, on its own thread, so the gzip's CRC and length are checked
    by the time the last byte lands: no second pass over a multi-GB file."""

    def __init__(self) -> None:
        # IN_FLIGHT blocks at most: when inflating lags (loopback), the transfer waits instead of buffering.
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=IN_FLIGHT)
        self._inflate = isal_zlib.decompressobj(wbits=31)
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="gzip-check", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        self._queue.put(data)

    def feed_file(self, path: Path) -> None:
        with open(path, "rb") as handle:
            while data := handle.read(CHECK_BLOCK):
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


def gzip_problem(path: Path) -> str | None:
    """Check a gzip file already on disk, as a download is checked: why it is not complete, or None."""
    check = GzipCheck()
    check.feed_file(path)
    return check.problem()


def gzip_header_problem(path: Path) -> str | None:
    """What the first bytes show to be wrong with a gzip file, or None: the part of the check that
    costs nothing (a download whose CRC and length the slice will check)."""
    with open(path, "rb") as handle:
        head = handle.read(10)
    if len(head) < 10 or path.stat().st_size < 20:  # header, an empty deflate block, trailer
        return "it ends early"
    if head[:2] != b"\x1f\x8b":
        return "incorrect header check: it does not start as a gzip file does"
    if head[2] != 8 or head[3] & 0xE0:
        return "unknown compression method or header flags"
    return None


def _fetch(url: str, part: Path, check: GzipCheck | None, progress: Progress | None,
           started: float) -> tuple[str, int | None, GzipCheck | None]:
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
            if check is not None:
                check.finish_quietly()
                check = GzipCheck()
        total = _total_size(response, offset)
        view = memoryview(bytearray(CHUNK))
        block = bytearray()  # bytes written but not yet fed to the check
        done = offset
        with open(part, "ab" if offset else "wb") as handle:
            try:
                while count := response.raw.readinto(view):
                    handle.write(view[:count])
                    if check is not None:
                        block += view[:count]
                        if len(block) >= CHECK_BLOCK:
                            check.feed(bytes(block))
                            block.clear()
                    done += count
                    if progress:
                        progress(done, total, time.monotonic() - started)
            finally:  # the check sees every byte the part file holds, a dropped connection's too
                if check is not None and block:
                    check.feed(bytes(block))
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
    defer_check: bool = False,
) -> DownloadResult:
    """Fetch the current export of ``target`` into ``dest_dir``; skip it if this version is already there.

    With ``defer_check`` the gzip's CRC and length are left to the slice that reads the file next
    (see the module's docstring): a new download comes back ``pending``, named by ``pending.json``,
    until :func:`promote_download` or :func:`after_failed_read` settles it. A copy fetched again
    because it was damaged is checked during its transfer all the same."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    media = describe(target)
    if media is None or not media.ready or not media.src:
        state = "never requested" if media is None else media.state
        raise ConfigurationError(f"the {target} is not ready to download ({state}); request it and wait first")
    final = dest / export_filename(target, media)
    kept, damage = _kept(dest, final, check_gzip=not defer_check)
    if kept == "pending":
        log.info("%s: %s already downloaded; the slice checks its gzip", target, final.name)
        if requested_at and _pending_record(dest).get("requested_at") != requested_at:
            atomic_write_json(pending_pointer(dest), _pending_record(dest) | {"requested_at": requested_at})
    elif kept == "verified":
        log.info("%s: %s already downloaded (and still intact)", target, final.name)
        _record(dest, final, media, requested_at, target)
    if kept:
        return DownloadResult(str(final), media.media_id, media.updated_at.isoformat(), final.stat().st_size, 0, 0,
                              0.0, True, pending=kept == "pending")
    if damage:  # kept in place until the new copy is checked: the rename below replaces it whole
        log.warning("%s: %s; downloading it again", target, damage)
    # The latest download's own file, or a damaged copy, fetched again is checked during the transfer:
    # latest.json never names an unchecked file, and a second failure shows at once.
    defer = defer_check and damage is None and _latest_name(dest) != final.name
    part = final.with_name(final.name + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    if resumed_from:
        log.info("%s: resuming the partial download at %.1f MB", target, resumed_from / 1e6)
    started = time.monotonic()
    transfer = _Transfer(target, media, part, None if defer else GzipCheck(), media.src, progress, started)
    if resumed_from and transfer.check is not None:
        transfer.check.feed_file(part)
    try:
        for attempt in DOWNLOAD_RESUMES.copy(stop=stop_after_attempt(max_attempts)):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if attempts > 1:
                    transfer.refresh_url()
                transfer.fetch_rest()
    except RetryError as exc:
        if transfer.check is not None:
            transfer.check.finish_quietly()
        size = part.stat().st_size if part.exists() else 0
        raise PanoptesError(
            f"the {target} download did not complete after {exc.last_attempt.attempt_number} attempts ({size} bytes "
            f"kept in {part.name}; the next run resumes from there)"
        ) from None
    problem = gzip_header_problem(part) if transfer.check is None else transfer.check.problem()
    if problem:
        part.unlink(missing_ok=True)
        raise PanoptesError(f"{final.name} is not a complete gzip file ({problem}); it will be downloaded again")
    os.replace(part, final)
    seconds = time.monotonic() - started
    if progress:
        progress(final.stat().st_size, final.stat().st_size, seconds)
    if defer:
        _record_pending(dest, final, media, requested_at, target)
    else:
        _record(dest, final, media, requested_at, target)
        _prune(dest, target.export_type, keep=final)
    return DownloadResult(str(final), media.media_id, media.updated_at.isoformat(), final.stat().st_size,
                          resumed_from, attempts, round(seconds, 3), False, damage, pending=defer)


def _kept(dest: Path, final: Path, *, check_gzip: bool) -> tuple[str | None, str | None]:
    """What ``dest`` holds of this export: ("verified" or "pending", None) when it can be used as it
    is, (None, why not) when it is damaged, (None, None) when there is nothing. A pending copy found
    intact by the gzip check is "verified" (recording it promotes it)."""
    if not final.exists():
        return None, None
    try:
        latest = read_pointer(dest)
    except ValueError as exc:
        return None, str(exc)
    if latest.get("path") == final.name:
        problem = record_problem(final, latest)
        if problem is None and check_gzip:
            problem = _gzip_damage(final)
        return ("verified", None) if problem is None else (None, problem)
    pending = _pending_record(dest)
    if pending.get("path") == final.name:
        problem = record_problem(final, pending)
        if problem is None and not check_gzip:
            return "pending", None
        problem = problem or _gzip_damage(final)
        if problem is None:
            return "verified", None
        pending_pointer(dest).unlink(missing_ok=True)  # its file is fetched again below, checked as it arrives
        return None, problem
    problem = _gzip_damage(final)  # a file no record describes was never checked
    return ("verified", None) if problem is None else (None, problem)


@dataclass
class _Transfer:
    """The state one download carries from attempt to attempt: the signed URL and the running check
    (None when the slice checks the gzip)."""

    target: ExportTarget
    media: ExportMedia
    part: Path
    check: GzipCheck | None
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
            if self.check is not None:
                self.check.finish_quietly()
            self.part.unlink(missing_ok=True)
            raise PanoptesError(f"the {self.target} changed during the download; run the download again")
        self.url = fresh.src


def _record(dest: Path, final: Path, media: ExportMedia, requested_at: str | None, target: ExportTarget) -> None:
    """Point ``latest.json`` at this file, checked by the caller, and remember when it was requested
    (for the 24-hour rule); a ``pending.json`` naming the file goes.

    A pointer already naming this very export is left alone, so a run done twice changes nothing."""
    pointer = {"path": final.name, "media_id": media.media_id, "updated_at": media.updated_at.isoformat(),
               "bytes": final.stat().st_size}
    try:
        current = read_pointer(dest)
    except ValueError:
        current = {}
    if current.get("damaged") or {key: current.get(key) for key in pointer} != pointer:
        atomic_write_json(DataRoot.latest_pointer(dest), pointer | {"recorded_at": _now()})
    if _pending_record(dest).get("path") == final.name:
        pending_pointer(dest).unlink(missing_ok=True)
        _prune(dest, target.export_type, keep=final)
    if requested_at:
        remember_request(DataRoot.request_record(dest), media, requested_at)


def _record_pending(dest: Path, final: Path, media: ExportMedia, requested_at: str | None, target: ExportTarget) -> None:
    """Name this file, not yet checked, in ``pending.json``; an earlier pending download (an older export
    no slice ever checked) is removed. ``latest.json``, its file and the request record are left as they
    are: the request is remembered when the file is promoted, as a checked download's is when recorded."""
    earlier = _pending_record(dest).get("path")
    atomic_write_json(pending_pointer(dest), {
        "path": final.name, "export_type": target.export_type, "media_id": media.media_id,
        "updated_at": media.updated_at.isoformat(), "bytes": final.stat().st_size, "requested_at": requested_at,
        "recorded_at": _now()})
    if earlier and earlier != final.name and earlier != _latest_name(dest) and Path(earlier).name == earlier:
        (dest / earlier).unlink(missing_ok=True)


def promote_download(path: Path) -> None:
    """The slice has read the pending download ``path`` whole through a reader that checks the gzip's
    CRC and length: make it the latest (``latest.json`` names it, ``pending.json`` goes) and prune
    older downloads, as a download checked during its transfer does."""
    dest = path.parent
    pending = _pending_record(dest)
    if pending.get("path") != path.name:
        raise ConfigurationError(f"{path.name} is not the pending download of {dest}; nothing to promote")
    pointer = {key: pending.get(key) for key in ("path", "media_id", "updated_at", "bytes")}
    atomic_write_json(DataRoot.latest_pointer(dest), pointer | {"recorded_at": _now()})
    if pending.get("requested_at"):
        updated = parse_time(str(pending["updated_at"]))
        media = ExportMedia(str(pending["media_id"]), "ready", updated, updated, None)
        remember_request(DataRoot.request_record(dest), media, str(pending["requested_at"]))
    pending_pointer(dest).unlink(missing_ok=True)
    log.info("%s: checked by the slice; latest.json now names it", path.name)
    _prune(dest, str(pending.get("export_type") or path.name.split("-", 1)[0]), keep=path)


def pending_download(dest_dir: str | os.PathLike[str]) -> Path | None:
    """The download ``pending.json`` names (its gzip check left to the slice), or None."""
    name = _pending_record(Path(dest_dir)).get("path")
    return Path(dest_dir) / name if name else None


def pending_problem(path: Path) -> str | None:
    """Why the pending download ``path`` no longer matches ``pending.json`` (missing, another size), or None."""
    if not path.is_file():
        return f"{path.name} is missing"
    return record_problem(path, _pending_record(path.parent))


def refuse_download(path: Path, damage: str) -> ConfigurationError:
    """Remove the pending download ``path`` and its record, found damaged (``damage`` says how): the
    last good download, ``latest.json`` and the slices stay as they are, and the next run downloads
    it again. Returns the error that says so."""
    dest = path.parent
    if _pending_record(dest).get("path") == path.name:
        pending_pointer(dest).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    latest = _latest_name(dest)
    log.warning("%s; removed it (the last good download, %s, is kept)", damage, latest or "none yet")
    kept = "the last good download and its slices are" if latest else "the slices already made are"
    return ConfigurationError(f"{damage}, found by the slice: removed, so the next run downloads it again; {kept} unchanged")


def after_failed_read(path: Path, *, pending: bool) -> ConfigurationError | None:
    """The slice of the download ``path`` failed: was the download to blame? The gzip check tells.

    Damaged: a pending download is refused (:func:`refuse_download`); a checked one, the latest, is
    marked damaged in ``latest.json`` so the next run fetches it again (and a backfill refuses it
    meanwhile). Returns the error to raise instead of the slice's.

    Intact: the failure is the slice's own. A pending download has now been checked and is promoted;
    returns None (the slice's error stands)."""
    problem = f"{path.name} is missing" if not path.is_file() else _gzip_damage(path)
    if problem is None:
        if pending:
            promote_download(path)
        return None
    if pending:
        return refuse_download(path, problem)
    dest = path.parent
    try:
        pointer = read_pointer(dest)
    except ValueError:
        pointer = {}
    if pointer.get("path") == path.name:
        atomic_write_json(DataRoot.latest_pointer(dest), pointer | {"damaged": problem})
    log.warning("%s, found by the slice; marked damaged in latest.json", problem)
    return ConfigurationError(f"the last download {path} is damaged: {problem}, found by the slice. Its slices are "
                              "unchanged; the next run of the exports DAG (request_new on, not as a backfill) downloads "
                              "it again")


def record_problem(path: Path, record: dict[str, Any]) -> str | None:
    """Why ``path`` no longer matches its record (``latest.json``'s or ``pending.json``'s), as far as that
    shows without reading it: marked damaged by a slice, or of another size. None when it matches, or
    the record describes another file."""
    if record.get("path") != path.name:
        return None
    if record.get("damaged"):
        return str(record["damaged"])
    size = path.stat().st_size
    recorded = record.get("bytes")
    if recorded is not None and size != recorded:
        return f"{path.name} has {size} bytes where {recorded} were downloaded"
    return None


def download_problem(path: Path) -> str | None:
    """Why a downloaded export no longer matches ``latest.json``'s record of it, or None if it does.

    The record comes first: truncation, the usual damage, shows in the size at no cost, and a slice
    that found the file damaged marks it there. Only a file that passes is read whole for the gzip check."""
    try:
        pointer = read_pointer(path.parent)
    except ValueError as exc:
        return str(exc)
    if not path.is_file():
        return f"{path.name} is missing"
    return record_problem(path, pointer) or _gzip_damage(path)


def _gzip_damage(path: Path) -> str | None:
    problem = gzip_problem(path)
    return f"{path.name} is not a complete gzip file ({problem})" if problem else None


def _pending_record(dest: Path) -> dict[str, Any]:
    """``pending.json``, or {} when there is none or it is damaged (its file is then checked whole, as a
    file no record describes)."""
    try:
        return read_pending(dest)
    except ValueError:
        return {}


def _latest_name(dest: Path) -> str | None:
    try:
        return read_pointer(dest).get("path")
    except ValueError:
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


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


def _prune(dest: Path, export_type: str, keep: Path) -> None:
    """Keep the newest downloads of this export type; older ones only cost disk. A pending download
    (not yet checked) is neither counted nor removed here."""
    spare = {keep.name, _pending_record(dest).get("path")}
    files = sorted((p for p in dest.glob(f"{export_type}-*.csv.gz") if p.name not in spare),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_DOWNLOADS - 1:]:
        old.unlink(missing_ok=True)

"""The data root as the Airflow tasks see it: a local folder, or object storage through ObjectStoragePath.

The library reads and writes local files only (pyarrow and isal fast paths, atomic renames), so a
task always works on a local ``DataRoot``:

- a **local** root (a path, or ``file:///path``) is used as it is; ``pull`` and ``push`` do nothing;
- a **remote** root (``s3://aws_conn_id@bucket/prefix``, any scheme Airflow's ObjectStoragePath
  knows) is mirrored in a cache folder on the worker (``$ZOOFLOW_CACHE_DIR``, else
  ``$AIRFLOW_HOME/zooflow-cache``). A task ``pull``s the files it reads before reading them and
  ``push``es the files it wrote once they are finished.

The credentials come from the Airflow connection the URL names, never from here. A transfer is
skipped when nothing changed: each file synced is remembered (its remote ETag and its local size,
mtime and inode) beside the cache, so a pull downloads only what changed remotely and a push uploads
only what changed locally — a stale cache never overwrites newer remote data. Downloads land in a
hidden temporary file that is renamed into place; uploads read finished local files only (hidden
temporaries and ``.part`` downloads are never pushed) and are streamed in parts by the filesystem, and
an object store shows an object only once its upload is complete.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from zooflow.errors import ConfigurationError
from zooflow.files import atomic_write_json
from zooflow.paths import DATA_ROOT_ENV, DataRoot, data_root_setting, display_root, local_root, safe_name

log = logging.getLogger(__name__)

CACHE_ENV = "ZOOFLOW_CACHE_DIR"
IN_PROGRESS_SUFFIXES = (".part", ".tmp")


def default_cache_dir() -> Path:
    """``$ZOOFLOW_CACHE_DIR``, else ``$AIRFLOW_HOME/zooflow-cache``: the same path on every worker of a
    deployment, because the round state records its folders by path."""
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser() / "zooflow-cache"


def in_progress(relative: PurePosixPath) -> bool:
    """A file being written: hidden temporaries of atomic writes and staging folders, ``.part`` downloads."""
    return any(part.startswith(".") for part in relative.parts) or relative.name.endswith(IN_PROGRESS_SUFFIXES)


@dataclass
class Transfer:
    """What one pull or push moved (relative keys), what it found unchanged, and what it removed."""

    moved: list[str] = field(default_factory=list)
    bytes: int = 0
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


def _fingerprint(info: dict[str, Any]) -> str:
    """What identifies an object's content: its ETag (S3), md5 (GCS, Azure), else size and mtime."""
    for key in ("ETag", "etag", "md5Hash", "content_md5", "md5"):
        if info.get(key):
            return str(info[key]).strip('"')
    return f"{info.get('size')}:{info.get('LastModified') or info.get('mtime') or info.get('last_modified')}"


def _local_stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


class DataStore:
    """The data root for one task: ``root`` is the local working ``DataRoot``; ``pull`` and ``push``
    keep a remote root and that folder in step (and do nothing for a local root)."""

    def __init__(self, setting: str | None = None, *, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.setting = setting or data_root_setting()
        local = local_root(self.setting)
        if local is not None:
            self.remote: ObjectStoragePath | None = None
            self.root = DataRoot(local)
            self._records: Path | None = None
            return
        user = urlsplit(self.setting).netloc.rpartition("@")[0]
        if ":" in user:
            raise ConfigurationError(
                f"{DATA_ROOT_ENV}={display_root(self.setting)}: credentials do not belong in the URL; keep them in "
                "an Airflow connection and name it instead (s3://aws_conn_id@bucket/prefix)")
        self.remote = ObjectStoragePath(self.setting.rstrip("/"))
        if not self.remote.bucket:
            raise ConfigurationError(f"{DATA_ROOT_ENV}={display_root(self.setting)} names no bucket or container")
        folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        folder = folder / safe_name(f"{self.remote.protocol}-{self.remote.conn_id or 'default'}-"
                                    f"{self.remote.bucket}-{self.remote.key}")
        self.root = DataRoot(folder / "data")
        self._records = folder / "sync"

    def __repr__(self) -> str:
        return f"DataStore({display_root(self.setting)!r}, root={str(self.root.root)!r})"

    @property
    def is_remote(self) -> bool:
        return self.remote is not None

    @property
    def location(self) -> str:
        """Where the data lives, for logs: the folder, or the URL without the connection id."""
        if self.remote is None:
            return str(self.root.root)
        return f"{self.remote.protocol}://{self.remote.bucket}/{self.remote.key}".rstrip("/")

    def url(self, path: str | os.PathLike[str]) -> str:
        """Where a local working path lives: itself for a local root, its remote URL otherwise."""
        if self.remote is None:
            return str(path)
        return f"{self.location}/{self._relative(Path(path))}"

    # -- paths ------------------------------------------------------------------------------------

    def _relative(self, path: Path) -> PurePosixPath:
        try:
            return PurePosixPath(Path(path).relative_to(self.root.root).as_posix())
        except ValueError:
            raise ValueError(f"{path} is not under the data root's working folder {self.root.root}") from None

    def _remote(self, relative: PurePosixPath) -> ObjectStoragePath:
        assert self.remote is not None
        return self.remote.joinpath(*relative.parts) if relative.parts else self.remote

    def _record_path(self, relative: PurePosixPath) -> Path:
        assert self._records is not None
        return self._records.joinpath(*relative.parts).with_name(relative.name + ".json")

    def _record(self, relative: PurePosixPath) -> dict[str, Any] | None:
        try:
            return json.loads(self._record_path(relative).read_text())
        except (OSError, ValueError):
            return None

    def _remember(self, relative: PurePosixPath, local: Path, fingerprint: str, stamp: dict[str, int] | None = None) -> None:
        atomic_write_json(self._record_path(relative), {"remote": fingerprint, "local": stamp or _local_stamp(local)})

    def _unchanged_locally(self, local: Path, record: dict[str, Any] | None) -> bool:
        try:
            return record is not None and record.get("local") == _local_stamp(local)
        except FileNotFoundError:
            return False

    def _listing(self, relative: PurePosixPath) -> dict[PurePosixPath, dict[str, Any]]:
        """Every object at or under ``relative``: the file itself, or a folder's files (to any depth)."""
        target = self._remote(relative)
        fs = target.fs
        fs.invalidate_cache(target.path)  # another worker may have written since this process last looked
        base = PurePosixPath(self._remote(PurePosixPath()).path)
        found = {}
        for key, info in fs.find(target.path, detail=True).items():
            if info.get("type", "file") != "file":
                continue
            rel = PurePosixPath(key).relative_to(base)
            if rel == relative or relative in rel.parents or not relative.parts:
                found[rel] = info
        return found

    # -- transfers --------------------------------------------------------------------------------

    def pull(self, *paths: str | os.PathLike[str] | None) -> Transfer:
        """Bring the remote copies of these files or folders (local working paths) into the cache.

        A file is downloaded only when its remote copy changed since this cache last synced it, or the
        local copy is missing or was changed here. Each lands in a hidden temporary file first and is
        renamed into place, so a reader never sees half of it. What does not exist remotely is left alone.
        """
        transfer = Transfer()
        if self.remote is None:
            return transfer
        for path in _present(paths):
            for relative, info in sorted(self._listing(self._relative(path)).items()):
                local = self.root.root.joinpath(*relative.parts)
                fingerprint = _fingerprint(info)
                record = self._record(relative)
                if record and record.get("remote") == fingerprint and self._unchanged_locally(local, record):
                    transfer.unchanged += 1
                    continue
                self._download(self._remote(relative), local)
                self._remember(relative, local, fingerprint)
                transfer.moved.append(str(relative))
                transfer.bytes += local.stat().st_size
        if transfer.moved:
            log.info("Pulled %d file(s), %.1f MB, from %s (%d unchanged)", len(transfer.moved), transfer.bytes / 1e6,
                     self.location, transfer.unchanged)
        return transfer

    def _download(self, source: ObjectStoragePath, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        temp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.pull.tmp")
        try:
            source.fs.get_file(source.path, str(temp))  # streamed to disk in chunks
            os.replace(temp, local)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def push(self, *paths: str | os.PathLike[str] | None, mirror: bool = False) -> Transfer:
        """Upload these finished files, or the finished files of these folders, to the remote root.

        A file is uploaded only when it changed here since it was last synced (a file this cache only
        pulled and never changed is not sent back over newer remote data). Files being written — hidden
        temporaries, ``.part`` downloads — are never uploaded. With ``mirror``, a folder's remote files
        that are no longer in the local folder are removed too: for folders a step rewrites whole.
        """
        transfer = Transfer()
        if self.remote is None:
            return transfer
        for path in _present(paths):
            folder_relative = self._relative(path)
            local_files = set()
            for local in _files(path):
                relative = self._relative(local)
                if in_progress(relative):
                    continue
                local_files.add(relative)
                record = self._record(relative)
                if self._unchanged_locally(local, record):
                    transfer.unchanged += 1
                    continue
                stamp = _local_stamp(local)  # taken first: a change during the upload is sent next time
                target = self._remote(relative)
                target.fs.put_file(str(local), target.path)  # multipart above the filesystem's part size
                target.fs.invalidate_cache(target.path)
                self._remember(relative, local, _fingerprint(target.fs.info(target.path)), stamp)
                transfer.moved.append(str(relative))
                transfer.bytes += stamp["size"]
            if mirror and not path.is_file():
                for relative in sorted(set(self._listing(folder_relative)) - local_files):
                    if in_progress(relative):
                        continue
                    self._delete(relative)
                    transfer.removed.append(str(relative))
        if transfer.moved or transfer.removed:
            log.info("Pushed %d file(s), %.1f MB, to %s (%d unchanged%s)", len(transfer.moved), transfer.bytes / 1e6,
                     self.location, transfer.unchanged,
                     f", {len(transfer.removed)} removed" if transfer.removed else "")
        return transfer

    def prune(self, folder: str | os.PathLike[str], pattern: str, *, keep: int, always: Iterable[str] = ()) -> list[str]:
        """Remove all but the ``keep`` newest remote files of ``folder`` whose names match ``pattern``
        (and never those named in ``always``): old downloads cost only storage."""
        if self.remote is None:
            return []
        relative = self._relative(Path(folder))
        matching = [(info.get("LastModified") or info.get("mtime") or "", rel)
                    for rel, info in self._listing(relative).items()
                    if rel.parent == relative and fnmatch.fnmatch(rel.name, pattern)]
        matching.sort(key=lambda item: str(item[0]), reverse=True)
        removed, kept = [], set(always)
        for _, rel in matching[keep:]:
            if rel.name not in kept:
                self._delete(rel)
                removed.append(str(rel))
        if removed:
            log.info("Removed %d old file(s) from %s: %s", len(removed), self.url(folder), ", ".join(r.rsplit("/", 1)[-1] for r in removed))
        return removed

    def _delete(self, relative: PurePosixPath) -> None:
        target = self._remote(relative)
        target.fs.rm_file(target.path)
        target.fs.invalidate_cache(target.path)
        self._record_path(relative).unlink(missing_ok=True)


def _present(paths: Iterable[str | os.PathLike[str] | None]) -> Iterator[Path]:
    seen = set()
    for path in paths:
        if path is None or str(path) == "":
            continue
        resolved = Path(path)
        if resolved not in seen:
            seen.add(resolved)
            yield resolved


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file())


def data_store(setting: str | None = None) -> DataStore:
    """The data root of ``$ZOOFLOW_DATA_ROOT`` for this task; a bad setting fails the task at once."""
    return DataStore(setting)

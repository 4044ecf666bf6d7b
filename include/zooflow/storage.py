"""The storage interface each step runs over, so the Airflow tasks and the CLI run the same steps.

A step (``zooflow.exports.steps``, ``zooflow.al.steps``) reads and writes local files under
``storage.root`` (a ``DataRoot``), ``pull``s what it is about to read and ``push``es what it has
finished. For a local data root both do nothing: that is ``LocalStorage``, what the CLI uses. The
Airflow tasks pass ``zooflow.airflow.storage.DataStore``, which also mirrors object storage (it
needs Airflow's ObjectStoragePath, so it lives in the provider).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from zooflow.exports.download import latest_download
from zooflow.paths import DataRoot


class Storage(Protocol):
    """What a step needs of the data root."""

    root: DataRoot

    @property
    def is_remote(self) -> bool: ...

    @property
    def location(self) -> str: ...

    def pull(self, *paths: str | os.PathLike[str] | None) -> Any: ...

    def push(self, *paths: str | os.PathLike[str] | None, mirror: bool = False) -> Any: ...

    def prune(self, folder: str | os.PathLike[str], pattern: str, *, keep: int, always: Iterable[str] = ()) -> list[str]: ...

    def url(self, path: str | os.PathLike[str]) -> str: ...


class LocalStorage:
    """A data root that is a folder on this machine: every file is where the step reads it already."""

    is_remote = False

    def __init__(self, root: DataRoot | str | os.PathLike[str] | None = None) -> None:
        self.root = root if isinstance(root, DataRoot) else DataRoot(root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root.root)

    def pull(self, *paths: str | os.PathLike[str] | None) -> None:
        return None

    def push(self, *paths: str | os.PathLike[str] | None, mirror: bool = False) -> None:
        return None

    def prune(self, folder: str | os.PathLike[str], pattern: str, *, keep: int, always: Iterable[str] = ()) -> list[str]:
        return []  # the downloader keeps its own folder pruned

    def url(self, path: str | os.PathLike[str]) -> str:
        return str(path)


def pull_latest_download(store: Storage, exports_dir: Path) -> Path:
    """The download an export folder's ``latest.json`` names, pulled (with the pointer) first."""
    store.pull(DataRoot.latest_pointer(exports_dir))
    path = latest_download(exports_dir)
    store.pull(path)
    return path


def has_download(store: Storage, exports_dir: Path) -> bool:
    """Whether an exports folder holds a download (its pointer pulled first)."""
    pointer = DataRoot.latest_pointer(exports_dir)
    store.pull(pointer)
    return pointer.exists()

"""The store's files: Parquet parts by UTC date, and the ``state.json`` that commits them.

Layout, under ``DataRoot.classifications_dir(project)``::

    project/                      the whole project's classifications (a pull without --workflow-id)
      state.json                  the commit record: project id, last_id, total, and every part
      created_date=2026-12-05/part-000000001201-000000001450.parquet
    workflow-28090/               one workflow's (a pull with --workflow-id 28090): its own state, its own parts
    excluded.json                 ids reconcile found missing from the export (incomplete): left out when read

Each scope (the project, or one workflow) is a store of its own with its own resume point, so a pull of
one workflow never moves the cursor of the all-workflows pull, and the reader joins them by id.

**Exactly once.** A pull only ever appends classifications with ids above ``last_id``. An append writes
its part files first (each atomically: a temporary file, fsync, rename), then replaces ``state.json``
atomically to list them with the new ``last_id``. Only parts ``state.json`` lists exist for readers
and for the next pull: a pull killed before the swap leaves parts nobody lists, which the next pull
deletes before it resumes from the ``last_id`` that was committed, fetching those rows again. A lock
file keeps two pulls of one scope apart.

**Few files.** A pull buffers rows and appends them in batches (one part per batch and date); a date
that has gathered more than ``SMALL_PARTS_PER_DATE`` small parts (frequent pulls) has them merged into
one, swapped in the same way.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from zooflow.classifications.records import SCHEMA, created_date
from zooflow.errors import ConfigurationError
from zooflow.files import atomic_write_bytes, atomic_write_json
from zooflow.paths import DataRoot

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
EXCLUDED_FILE = "excluded.json"
PARTITION = "created_date"
PROJECT_SCOPE = "project"
SMALL_PART_ROWS = 10_000  # a part below this many rows counts as small (the default batch of a pull)
SMALL_PARTS_PER_DATE = 8  # more small parts than this in one date are merged into one
READ_ATTEMPTS = 3  # a merge may delete a part between reading state.json and the part: read again


def scope_name(workflow_id: int | None) -> str:
    return PROJECT_SCOPE if workflow_id is None else f"workflow-{int(workflow_id)}"


@dataclass(frozen=True)
class Part:
    path: str  # relative to the scope's folder
    date: str
    rows: int
    min_id: int
    max_id: int


@dataclass(frozen=True)
class StoreState:
    project_id: int | None = None
    workflow_id: int | None = None
    last_id: int = 0  # the resume point: every classification up to it is stored or was left out
    total: int = 0
    parts: tuple[Part, ...] = field(default_factory=tuple)
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": 1, **asdict(self), "parts": [asdict(p) for p in self.parts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreState:
        return cls(project_id=data.get("project_id"), workflow_id=data.get("workflow_id"),
                   last_id=int(data["last_id"]), total=int(data["total"]),
                   parts=tuple(Part(**p) for p in data["parts"]), updated_at=data.get("updated_at"))


class ClassificationStore:
    """One scope's folder: read by anyone, appended to only inside :meth:`appending`."""

    def __init__(self, folder: str | os.PathLike[str], workflow_id: int | None = None) -> None:
        self.folder = Path(folder)
        self.workflow_id = workflow_id

    @classmethod
    def at(cls, root: DataRoot, project: str, workflow_id: int | None = None) -> ClassificationStore:
        return cls(root.classifications_dir(project) / scope_name(workflow_id), workflow_id)

    def __repr__(self) -> str:
        return f"ClassificationStore({str(self.folder)!r})"

    def state(self) -> StoreState:
        path = self.folder / STATE_FILE
        try:
            return StoreState.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return StoreState(workflow_id=self.workflow_id)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path} cannot be read ({type(exc).__name__}: {exc}); the store's parts are "
                                     f"listed there, so move {self.folder} aside and pull again from the start") from None

    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """Every committed row (the parts ``state.json`` lists), in id order."""
        for attempt in range(READ_ATTEMPTS):
            parts = self.state().parts
            try:
                tables = [pq.read_table(self.folder / p.path, columns=columns, schema=SCHEMA) for p in parts]
            except FileNotFoundError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                continue
            if not tables:
                empty = SCHEMA.empty_table()
                return empty.select(columns) if columns else empty
            table = pa.concat_tables(tables)
            return table.sort_by("classification_id") if "classification_id" in table.column_names else table
        raise AssertionError("unreachable")

    def ids(self) -> np.ndarray:
        return self.read_table(["classification_id"]).column(0).to_numpy()

    @contextmanager
    def appending(self, project_id: int) -> Iterator[Appender]:
        """Hold the scope's lock, drop what a killed pull left uncommitted, and yield the appender."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644), "r+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigurationError(f"another pull is writing {self.folder} (it holds {LOCK_FILE}); "
                                         "let it finish, then pull again") from None
            state = self.state()
            if state.project_id is not None and int(state.project_id) != int(project_id):
                raise ConfigurationError(f"{self.folder} holds project {state.project_id}'s classifications, not "
                                         f"project {project_id}'s; name the project the way its store was made, or "
                                         "use another data root")
            self._remove_uncommitted(state)
            yield Appender(self, replace(state, project_id=int(project_id), workflow_id=self.workflow_id))

    def _remove_uncommitted(self, state: StoreState) -> None:
        listed = {p.path for p in state.parts}
        for path in self.folder.glob(f"{PARTITION}=*/*"):
            if path.relative_to(self.folder).as_posix() not in listed:
                path.unlink()
        for path in self.folder.glob(f".{STATE_FILE}.*.tmp"):
            path.unlink()
        for folder in self.folder.glob(f"{PARTITION}=*"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


class Appender:
    """Appends batches to a locked store, each committed by one swap of ``state.json``."""

    def __init__(self, store: ClassificationStore, state: StoreState) -> None:
        self.store = store
        self.state = state

    def append(self, rows: list[dict[str, Any]], last_id: int) -> int:
        """Store ``rows`` (all with ids above the committed ``last_id``) and move ``last_id`` on; the
        number of part files written. ``rows`` may be empty: classifications left out still move it."""
        rows = sorted(rows, key=lambda r: r["classification_id"])
        if rows and (rows[0]["classification_id"] <= self.state.last_id or rows[-1]["classification_id"] > last_id):
            raise ValueError(f"rows {rows[0]['classification_id']}..{rows[-1]['classification_id']} are not all in "
                             f"({self.state.last_id}, {last_id}]: the store would hold an id twice")
        if last_id <= self.state.last_id and not rows:
            return 0
        parts = [self._write(date, pa.Table.from_pylist(list(group), schema=SCHEMA))
                 for date, group in groupby(sorted(rows, key=created_date), key=created_date)]
        self._commit(replace(self.state, last_id=max(last_id, self.state.last_id), total=self.state.total + len(rows),
                             parts=self.state.parts + tuple(parts)))
        for date in sorted({p.date for p in parts}):
            self._merge_small_parts(date)
        return len(parts)

    def _write(self, date: str, table: pa.Table) -> Part:
        ids = table.column("classification_id")
        low, high = pc.min(ids).as_py(), pc.max(ids).as_py()
        path = f"{PARTITION}={date}/part-{low:012d}-{high:012d}.parquet"
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        atomic_write_bytes(self.store.folder / path, buffer.getvalue())
        return Part(path, date, table.num_rows, low, high)

    def _commit(self, state: StoreState) -> None:
        state = replace(state, updated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        atomic_write_json(self.store.folder / STATE_FILE, state.to_dict())
        self.state = state

    def _merge_small_parts(self, date: str) -> None:
        small = [p for p in self.state.parts if p.date == date and p.rows < SMALL_PART_ROWS]
        if len(small) <= SMALL_PARTS_PER_DATE:
            return
        table = pa.concat_tables([pq.read_table(self.store.folder / p.path, schema=SCHEMA) for p in small])
        merged = self._write(date, table.sort_by("classification_id"))
        self._commit(replace(self.state, parts=tuple(p for p in self.state.parts if p not in small) + (merged,)))
        for part in small:
            (self.store.folder / part.path).unlink(missing_ok=True)


# -- the classifications reconcile found missing from the export ------------------------------------


def excluded_path(root: DataRoot, project: str) -> Path:
    return root.classifications_dir(project) / EXCLUDED_FILE


def read_excluded(root: DataRoot, project: str) -> dict[str, Any]:
    """``excluded.json``: ``ids`` (sorted), and the export that last decided them; empty when absent."""
    path = excluded_path(root, project)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"ids": []}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} cannot be read ({type(exc).__name__}: {exc}); "
                                 "delete it and run `zooflow classifications reconcile` again") from None


def write_excluded(root: DataRoot, project: str, ids: np.ndarray, export: str) -> Path:
    payload = {"ids": [int(i) for i in np.unique(ids)], "export": export,
               "reason": "stored, but not in the classification export that covers them: incomplete (or deleted)",
               "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return atomic_write_json(excluded_path(root, project), payload)

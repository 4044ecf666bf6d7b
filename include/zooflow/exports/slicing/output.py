"""Where the slice's rows go: the quarantine file, the date partitions, and their publication.

Everything is written into a staging folder (and the quarantine file under a temporary name), and
only moved into place once the whole export is read, one date partition at a time; so a run that
fails half way (a truncated download, a full disk) leaves the previous slices and quarantine files
as they were. Kept rows are written as the bytes they were read as; Parquet parts are parsed from
those bytes, in row groups bounded by ``PARQUET_ROWS`` and ``PARQUET_BYTES``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

PARTITION = "created_date"
_JSON_COLUMNS = {"metadata", "annotations", "subject_data", "locations"}
PARQUET_ROWS = 64_000  # rows buffered for a date before they become a Parquet row group
PARQUET_BYTES = 16 << 20  # bytes buffered for all dates together before they are written


class Quarantine:
    """The quarantine file: line, reason, and the record as it was read (decoded leniently)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(path.name + ".tmp")
        self._handle: io.TextIOWrapper | None = None
        self._writer: Any = None
        self._made_folder = False

    def write(self, line: int, reason: str, record: bytes) -> None:
        if self._handle is None:
            self._made_folder = not self.path.parent.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.temp, "w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle, lineterminator="\n")
            self._writer.writerow(["line", "reason", "record"])
        text = record.decode("utf-8", "backslashreplace").removesuffix("\n").removesuffix("\r")
        self._writer.writerow([line, reason, text])

    def commit(self) -> str | None:
        if self._handle is None:
            return None
        self._handle.close()
        os.replace(self.temp, self.path)
        return str(self.path)

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self.temp.unlink(missing_ok=True)
            if self._made_folder:
                try:
                    self.path.parent.rmdir()
                except OSError:
                    pass


class Partitions:
    """Per-date writers into the staging folder; a date seen again after its file was closed gets a
    new part file. CSV parts get the input's header and the kept records' bytes as they were."""

    def __init__(self, root: Path, header: list[str], header_line: bytes, formats: tuple[str, ...]) -> None:
        self.root = root
        self.header = header
        self.header_line = header_line
        self.formats = formats
        self.schema = pa.schema([(name, pa.string()) for name in header])
        self.open: dict[str, dict[str, Any]] = {}
        self.parts: Counter = Counter()
        self.rows: Counter = Counter()

    def write(self, day: str, records: pa.Buffer, count: int) -> None:
        state = self.open.get(day)
        if state is None:
            self._close_all_but_recent()
            folder = self.root / f"{PARTITION}={day}"
            folder.mkdir(parents=True, exist_ok=True)
            part = self.parts[day]
            self.parts[day] += 1
            state = {"pending": [], "pending_rows": 0, "pending_bytes": 0, "csv": None, "parquet": None,
                     "stem": folder / f"part-{part:05d}"}
            if "csv" in self.formats:
                state["csv"] = open(state["stem"].with_suffix(".csv"), "wb")
                state["csv"].write(self.header_line)
            self.open[day] = state
        if state["csv"] is not None:
            state["csv"].write(records)
        if "parquet" in self.formats:
            state["pending"].append(records)
            state["pending_rows"] += count
            state["pending_bytes"] += records.size
            if state["pending_rows"] >= PARQUET_ROWS:
                self._flush_parquet(state)
            elif sum(s["pending_bytes"] for s in self.open.values()) >= PARQUET_BYTES:
                for other in self.open.values():  # one budget for all open dates keeps memory flat
                    self._flush_parquet(other)
        self.rows[day] += count

    def _flush_parquet(self, state: dict[str, Any]) -> None:
        if not state["pending"]:
            return
        data = b"".join(state["pending"])
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=self.header, use_threads=False, block_size=len(data) + 1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in self.header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        if table.num_rows != state["pending_rows"]:
            raise RuntimeError(f"kept {state['pending_rows']} rows but re-read {table.num_rows} for Parquet")
        if state["parquet"] is None:
            import pyarrow.parquet as pq  # only when Parquet is asked for: it costs start-up time

            # Min/max statistics for the short cells only: for the JSON cells they are useless and
            # every row group's copy of them stays in memory until the file is closed.
            state["parquet"] = pq.ParquetWriter(
                str(state["stem"].with_suffix(".parquet")), self.schema, compression="zstd",
                write_statistics=[name for name in self.header if name not in _JSON_COLUMNS],
            )
        state["parquet"].write_table(table)
        state["pending"], state["pending_rows"], state["pending_bytes"] = [], 0, 0
        del table, data
        release_unused()

    def _close(self, state: dict[str, Any]) -> None:
        if state["csv"] is not None:
            state["csv"].close()
        if "parquet" in self.formats:
            self._flush_parquet(state)
            if state["parquet"] is not None:
                state["parquet"].close()

    def _close_all_but_recent(self, keep: int = 8) -> None:
        # Exports are in time order, so few dates are open at once; cap open files all the same.
        while len(self.open) >= keep:
            self._close(self.open.pop(next(iter(self.open))))

    def close(self) -> None:
        while self.open:
            self._close(self.open.pop(next(iter(self.open))))

    def abandon(self) -> None:
        for state in self.open.values():
            for key in ("csv", "parquet"):
                if state[key] is not None:
                    try:
                        state[key].close()
                    except Exception:  # noqa: BLE001 - the staging folder is removed anyway
                        pass
        self.open.clear()


def release_unused() -> None:
    """Hand freed memory back to the system. Chunks, parses and Parquet batches leave free blocks
    of many sizes behind; without this a long run (4 GB) keeps creeping up past where a short one
    (1 GB) ends."""
    pa.default_memory_pool().release_unused()
    pa.system_memory_pool().release_unused()


def publish(staging: Path, out_root: Path) -> list[str]:
    """Move each staged partition into place; the old one is removed only after the new one is in."""
    out_root.mkdir(parents=True, exist_ok=True)
    published: list[str] = []
    if not staging.exists():
        return published
    for folder in sorted(staging.iterdir()):
        target = out_root / folder.name
        retired = out_root / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            os.replace(target, retired)
        os.replace(folder, target)
        shutil.rmtree(retired, ignore_errors=True)
        published.extend(str(p) for p in sorted(target.iterdir()))
    return published

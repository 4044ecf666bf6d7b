"""Cutting an export into the slices a team works with, fast and in bounded memory.

The export is streamed through Arrow's CSV reader in blocks: every test is a vectorised mask over a
block, so the cost per row is a few machine instructions instead of a Python dict, and memory
depends on the block size, not on the file (a 4 GB export needs no more than a 1 GB one). Rows that
cannot be read or fail a check go to a quarantine file with their line numbers and the reason; none
is dropped silently. Outputs are written to a temporary folder and moved into place per date
partition, so a failed run leaves the previous slices as they were.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from isal import igzip_threaded

from zooflow.errors import ConfigurationError
from zooflow.exports.layouts import CLASSIFICATIONS, Layout, detect_layout
from zooflow.exports.lines import InvalidRow, LineTracker
from zooflow.exports.slice_spec import SliceSpec

BLOCK_SIZE = 4 << 20
PANOPTES_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( UTC)?$"
# Cells that mean "not a gold-standard / expert row"; anything else (true, a name, owner) means it is.
FALSY_CELLS = ["", "na", "n/a", "nan", "null", "none", "false", "f", "0", "no"]
PARTITION = "created_date"

Progress = Callable[[int, int, int], None]  # (bytes read, total bytes, rows read)


@dataclass
class SliceReport:
    source: str
    kind: str
    spec: dict[str, Any]
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: Counter = field(default_factory=Counter)
    rows_filtered: Counter = field(default_factory=Counter)
    partitions: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    quarantine_file: str | None = None
    seconds: float = 0.0
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "spec": self.spec,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "rows_filtered": dict(self.rows_filtered),
            "partitions": dict(sorted(self.partitions.items())),
            "outputs": self.outputs,
            "quarantine_file": self.quarantine_file,
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.kind} export {self.source}: {self.rows_read} rows read, {self.rows_kept} kept, "
            f"{self.rows_quarantined} quarantined, {sum(self.rows_filtered.values())} outside the slice "
            f"({self.seconds:.1f} s)"
        ]
        lines += [f"  quarantined ({count}): {reason}" for reason, count in self.quarantine_reasons.most_common()]
        lines += [f"  filtered by {name}: {count}" for name, count in self.rows_filtered.most_common()]
        lines += [f"  {PARTITION}={day}: {rows} rows" for day, rows in sorted(self.partitions.items())]
        return lines


def _read_header(path: Path) -> list[str]:
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            header = next(csv.reader(io.StringIO(handle.readline())), [])
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the header of {path}: {exc}") from None
    if not header:
        raise ConfigurationError(f"{path} is empty: no header row")
    return header


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


class _Quarantine:
    """The quarantine file: line, reason, and the record as it was read."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self._handle: io.TextIOWrapper | None = None
        self._writer: Any = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(["line", "reason", "record"])

    def write(self, line: int, reason: str, record: str) -> None:
        if self._handle is None:
            self._open()
        self._writer.writerow([line, reason, record])

    def close(self) -> bool:
        if self._handle is None:
            return False
        self._handle.close()
        return True


def _record_text(batch: pa.RecordBatch, index: int) -> str:
    out = io.StringIO()
    values = [col[index].as_py() for col in batch.columns]
    csv.writer(out, lineterminator="").writerow(
        [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else ("" if v is None else v) for v in values]
    )
    return out.getvalue()


class _Partitions:
    """Per-date writers into the staging folder; a date seen again after a gap gets a new part file."""

    def __init__(self, root: Path, schema: pa.Schema, formats: tuple[str, ...]) -> None:
        self.root = root
        self.schema = schema
        self.formats = formats
        self.writers: dict[str, list[Any]] = {}
        self.parts: Counter = Counter()
        self.rows: Counter = Counter()

    def write(self, day: str, table: pa.Table) -> None:
        if day not in self.writers:
            self._close_all_but_recent()
            folder = self.root / f"{PARTITION}={day}"
            folder.mkdir(parents=True, exist_ok=True)
            part = self.parts[day]
            self.parts[day] += 1
            writers = []
            if "csv" in self.formats:
                writers.append(pacsv.CSVWriter(str(folder / f"part-{part:05d}.csv"), self.schema,
                                               write_options=pacsv.WriteOptions(quoting_style="needed")))
            if "parquet" in self.formats:
                writers.append(pq.ParquetWriter(str(folder / f"part-{part:05d}.parquet"), self.schema, compression="zstd"))
            self.writers[day] = writers
        for writer in self.writers[day]:
            writer.write_table(table)
        self.rows[day] += table.num_rows

    def _close_all_but_recent(self, keep: int = 8) -> None:
        # Exports are in time order, so few dates are open at once; cap open files all the same.
        while len(self.writers) >= keep:
            day = next(iter(self.writers))
            for writer in self.writers.pop(day):
                writer.close()

    def close(self) -> None:
        for writers in self.writers.values():
            for writer in writers:
                writer.close()
        self.writers.clear()


class _Masks:
    """The vectorised checks and filters of one spec over one layout."""

    def __init__(self, spec: SliceSpec, layout: Layout) -> None:
        self.spec = spec
        self.layout = layout

    def quarantine(self, batch: pa.Table) -> list[tuple[str, pa.ChunkedArray]]:
        """(reason, mask) pairs for rows that cannot be judged: the slice would be wrong if they were kept."""
        checks = [("created_at is not a Panoptes UTC time", self._bad_time(batch["created_at"]))]
        subject = batch[self.layout.subject_column]
        pattern = r"^\d+(;\d+)*$" if self.layout is CLASSIFICATIONS else r"^\d+$"
        checks.append((f"{self.layout.subject_column} is not a list of subject ids", pc.invert(pc.match_substring_regex(subject, pattern))))
        checks.append(("workflow_id is not a whole number", pc.invert(pc.match_substring_regex(batch["workflow_id"], r"^\d*$"))))
        if self.spec.min_workflow_version and "workflow_version" in batch.column_names:
            bad = pc.invert(pc.match_substring_regex(batch["workflow_version"], r"^\d+(\.\d+)?$"))
            checks.append(("workflow_version is not MAJOR.MINOR", bad))
        if self.spec.subject_set_ids and "subject_set_id" in batch.column_names:
            checks.append(("subject_set_id is not a whole number", pc.invert(pc.match_substring_regex(batch["subject_set_id"], r"^\d*$"))))
        return checks

    @staticmethod
    def _bad_time(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.invert(pc.match_substring_regex(column, PANOPTES_TIME))

    def filters(self, batch: pa.Table) -> list[tuple[str, pa.ChunkedArray]]:
        """(name, keep-mask) pairs, each True where the row passes that test."""
        spec = self.spec
        out: list[tuple[str, pa.ChunkedArray]] = []
        if spec.workflow_ids:
            out.append(("workflow_ids", pc.is_in(batch["workflow_id"], value_set=pa.array([str(w) for w in spec.workflow_ids]))))
        if spec.min_workflow_version and "workflow_version" in batch.column_names:
            version = batch["workflow_version"]
            version = pc.if_else(pc.match_substring(version, "."), version, pc.binary_join_element_wise(version, "0", "."))
            parts = pc.split_pattern(version, ".")
            major = pc.cast(pc.list_element(parts, 0), pa.int64())
            minor = pc.cast(pc.list_element(parts, 1), pa.int64())
            want_major, want_minor = spec.min_workflow_version
            out.append(("min_workflow_version", pc.or_(pc.greater(major, want_major),
                                                       pc.and_(pc.equal(major, want_major), pc.greater_equal(minor, want_minor)))))
        if spec.subject_id_ranges:
            out.append(("subject_ids", self._any_subject_in_ranges(batch[self.layout.subject_column])))
        if spec.subject_set_ids and "subject_set_id" in batch.column_names:
            out.append(("subject_set_ids", pc.is_in(batch["subject_set_id"], value_set=pa.array([str(s) for s in spec.subject_set_ids]))))
        moment = pc.utf8_slice_codeunits(batch["created_at"], 0, 19)
        if spec.since:
            out.append(("since", pc.greater_equal(moment, spec.since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))))
        if spec.until:
            out.append(("until", pc.less(moment, spec.until.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))))
        for name, choice in (("gold_standard", spec.gold), ("expert", spec.expert)):
            if choice == "include" or name not in batch.column_names:
                continue
            flagged = pc.invert(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(batch[name])), value_set=pa.array(FALSY_CELLS)))
            out.append((name, flagged if choice == "only" else pc.invert(flagged)))
        return out

    def _any_subject_in_ranges(self, column: pa.ChunkedArray) -> pa.Array:
        lists = pc.split_pattern(column.combine_chunks(), ";")
        ids = pc.cast(pc.list_flatten(lists), pa.int64()).to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        hit = np.zeros(len(ids), dtype=bool)
        for low, high in self.spec.subject_id_ranges:
            hit |= (ids >= low) & (ids <= high)
        rows = np.zeros(len(lists), dtype=bool)
        rows[parents[hit]] = True
        return pa.array(rows)


def _utf8_table(batch: pa.RecordBatch) -> tuple[pa.Table, np.ndarray, list[str]]:
    """The batch as strings, plus a mask of rows that are not valid UTF-8 and the columns at fault."""
    columns, bad, at_fault = [], np.zeros(batch.num_rows, dtype=bool), []
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            columns.append(pc.cast(column, pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values = column.to_pylist()
        for i, value in enumerate(values):
            try:
                value.decode("utf-8") if value is not None else None
            except UnicodeDecodeError:
                bad[i] = True
                values[i] = b""
        at_fault.append(name)
        columns.append(pc.cast(pa.array(values, pa.binary()), pa.string()))
    return pa.Table.from_arrays(columns, names=batch.schema.names), bad, at_fault


def _newlines_per_row(batch: pa.RecordBatch) -> np.ndarray:
    """Line breaks inside each row's cells, from one pass over each column's bytes (no per-cell calls)."""
    n = batch.num_rows
    total = np.zeros(n, dtype=np.int64)
    for column in batch.columns:
        _, offsets_buffer, data_buffer = column.buffers()
        if data_buffer is None or not n:
            continue
        offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[column.offset: column.offset + n + 1]
        data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]: offsets[-1]]
        breaks = np.flatnonzero(data == 10)
        if breaks.size:
            rows = np.searchsorted(offsets, breaks + offsets[0], side="right") - 1
            total += np.bincount(rows, minlength=n)
    return total


def slice_export(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    spec: SliceSpec,
    *,
    quarantine_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> SliceReport:
    """Slice a classification or subject export (``.csv`` or ``.csv.gz``) into date partitions.

    Partitions found in the input replace the same partitions under ``out_dir`` (a rerun or a
    backfill of a date gives the same files); other partitions there are left alone.
    """
    started = time.monotonic()
    path = Path(source)
    if not path.is_file():
        raise ConfigurationError(f"export file {path} does not exist")
    header = _read_header(path)
    layout = detect_layout(header, str(path))
    if len(set(header)) != len(header):
        raise ConfigurationError(f"{path} has duplicate column names: {header}")
    report = SliceReport(source=str(path), kind=layout.kind, spec=spec.to_dict())
    out_root = Path(out_dir)
    staging = out_root.parent / f".{out_root.name}.staging-{uuid.uuid4().hex[:8]}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    quarantine = _Quarantine(Path(quarantine_dir or out_root / "_quarantine") / f"{path.name}.{stamp}.quarantine.csv", header)
    tracker = LineTracker()

    def on_invalid(row: Any) -> str:
        tracker.add_invalid(InvalidRow(
            record=row.number, text=row.text,
            reason=f"expected {row.expected_columns} fields, found {row.actual_columns} (broken quoting?)",
        ))
        return "skip"

    total_bytes = path.stat().st_size
    raw = open(path, "rb")
    # ISA-L inflates about three times faster than zlib, on its own thread beside the parser.
    stream = pa.PythonFile(igzip_threaded.open(raw, "rb", threads=1), mode="r") if _is_gzip(path) else raw
    reader = pacsv.open_csv(
        stream,
        # One thread keeps rejected rows numbered (Arrow gives no number when parsing in parallel);
        # the decompression and the vectorised checks run beside it.
        read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={name: pa.binary() for name in header},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    schema = pa.schema([(name, pa.string()) for name in header])
    partitions = _Partitions(staging, schema, spec.formats)
    masks = _Masks(spec, layout)
    try:
        for batch in _batches(reader, path):
            records, lines, rejected = tracker.place_batch(_newlines_per_row(batch))
            _quarantine_rejected(rejected, quarantine, report)
            table, not_utf8, at_fault = _utf8_table(batch)
            report.rows_read += table.num_rows
            bad = not_utf8.copy()
            reasons = np.full(table.num_rows, None, dtype=object)
            if not_utf8.any():
                reasons[not_utf8] = f"not valid UTF-8 in {', '.join(at_fault)}"
            for reason, mask in masks.quarantine(table):
                hits = mask.to_numpy(zero_copy_only=False) & ~bad
                reasons[hits] = reason
                bad |= hits
            for index in np.flatnonzero(bad):
                quarantine.write(int(lines[index]), reasons[index], _record_text(batch, int(index)))
                report.quarantine_reasons[reasons[index]] += 1
            report.rows_quarantined += int(bad.sum())
            keep = ~bad
            if keep.any():
                good = table.filter(pa.array(keep))
                passing = np.ones(good.num_rows, dtype=bool)
                for name, mask in masks.filters(good):
                    # Each dropped row is counted once, under the first test it fails.
                    fails = passing & ~mask.to_numpy(zero_copy_only=False)
                    report.rows_filtered[name] += int(fails.sum())
                    passing &= ~fails
                _write_partitions(good.filter(pa.array(passing)), partitions)
            if progress:
                progress(raw.tell(), total_bytes, report.rows_read + report.rows_quarantined)
        _quarantine_rejected(tracker.flush(), quarantine, report)
        partitions.close()
        report.partitions = dict(partitions.rows)
        report.rows_kept = sum(partitions.rows.values())
        report.outputs = _publish(staging, out_root)
    finally:
        partitions.close()
        shutil.rmtree(staging, ignore_errors=True)
        stream.close()
        raw.close()
    if quarantine.close():
        report.quarantine_file = str(quarantine.path)
    report.seconds = time.monotonic() - started
    report.finished_at = datetime.now(timezone.utc).isoformat()
    return report


def _batches(reader: pacsv.CSVStreamingReader, path: Path):
    try:
        yield from reader
    except (OSError, EOFError) as exc:
        raise ConfigurationError(
            f"{path} is damaged ({exc}); download the export again — the slices already made are unchanged"
        ) from None
    except pa.ArrowInvalid as exc:
        raise ConfigurationError(f"{path} cannot be read as CSV: {exc}") from None


def _quarantine_rejected(rows: list[InvalidRow], quarantine: _Quarantine, report: SliceReport) -> None:
    for row in rows:
        quarantine.write(row.line, row.reason, row.text)
        report.quarantine_reasons[row.reason] += 1
        report.rows_quarantined += 1
        report.rows_read += 1


def _write_partitions(table: pa.Table, partitions: _Partitions) -> None:
    if not table.num_rows:
        return
    days = pc.utf8_slice_codeunits(table["created_at"], 0, 10)
    unique = pc.unique(days).to_pylist()
    if len(unique) == 1:
        partitions.write(unique[0], table)
        return
    for day in unique:
        partitions.write(day, table.filter(pc.equal(days, day)))


def _publish(staging: Path, out_root: Path) -> list[str]:
    """Move each staged partition into place; the old one is removed only after the new one is in."""
    out_root.mkdir(parents=True, exist_ok=True)
    published = []
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

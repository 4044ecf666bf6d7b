"""Cutting an export into the slices a team works with, fast and in bounded memory.

The export (``.csv`` or ``.csv.gz``, inflated by ISA-L on a read-ahead thread straight into reused
buffers) is cut into chunks of whole lines, and each chunk goes to a small pool of threads that do
not need the GIL for the heavy parts:

* Arrow converts only the cells the checks and tests need, not the large JSON cells
  (``metadata``, ``annotations``, ``subject_data``, ``locations``) that are most of the bytes. It
  still tokenises every cell, so a row with the wrong number of fields is still caught.
* Records are matched with their physical lines from the line breaks in the parsed cells
  (``lines.align``); if the counts disagree — a line break hidden in a skipped column, or a quoted
  cell still open at the chunk's end — the chunk is parsed again with every column, and a record
  cut by the chunk's end is carried over to the next chunk. The answer is the same as a parse of
  the whole file.
* Every test is a vectorised mask; a row that cannot be judged (bad quoting, not UTF-8, a bad
  date or id) goes to the quarantine file with its line number and reason, never silently away.
* Kept rows are copied byte for byte from the input (no re-serialising) into
  ``created_date=YYYY-MM-DD/part-NNNNN.csv``; Parquet parts are parsed from those bytes only.

Memory depends on the chunk size and the number of chunks in flight, not on the file: a 4 GB
export needs no more than a 1 GB one. Outputs are written into a staging folder and moved into
place per date partition at the end, so a failed run (a truncated download, say) leaves the
previous slices as they were.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from isal import igzip, isal_zlib

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing
from zooflow.exports import bounds
from zooflow.exports.layouts import CLASSIFICATION_COLUMNS, CLASSIFICATIONS, SUBJECT_COLUMNS, Layout, detect_layout
from zooflow.exports.lines import align, line_starts, newlines_per_row
from zooflow.exports.slice_spec import SliceSpec

CHUNK_SIZE = 8 << 20
WORKERS = 2
IN_FLIGHT = 3  # chunks parsed ahead of the writer; with CHUNK_SIZE this bounds memory
# Cells that mean "not a gold-standard / expert row"; anything else (true, a name, owner) means it is.
FALSY_CELLS = ["", "na", "n/a", "nan", "null", "none", "false", "f", "0", "no"]
PARTITION = "created_date"
_JSON_COLUMNS = {"metadata", "annotations", "subject_data", "locations"}
PARQUET_ROWS = 64_000  # rows buffered for a date before they become a Parquet row group
PARQUET_BYTES = 16 << 20  # bytes buffered for all dates together before they are written

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceReport:
        """A report read back from its JSON (the DAG's report file, an XCom)."""
        known = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in data.items() if k in known})
        report.quarantine_reasons = Counter(report.quarantine_reasons)
        report.rows_filtered = Counter(report.rows_filtered)
        return report

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


# -- input -------------------------------------------------------------------------------------


def _damaged(path: Path, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"{path} is damaged ({exc.__class__.__name__}: {exc}); download the export again — the slices already "
        "made are unchanged"
    )


class _Chunk:
    """Whole lines of the export in a pooled buffer; ``data`` is a view of them."""

    __slots__ = ("buffer", "data", "is_last")

    def __init__(self, buffer: bytearray | bytes, size: int, is_last: bool) -> None:
        self.buffer = buffer
        self.data = memoryview(buffer)[:size]
        self.is_last = is_last


class _Source:
    """The export's bytes in chunks of whole lines, read ahead on a thread of their own.

    Gzip is inflated by ISA-L, which lets go of the GIL while it works, straight into a few
    reused buffers (no copies, no fresh pages to zero for each chunk). Each chunk ends on a line
    break that looks like the end of a record (see ``_cut``); when a record does straddle two
    chunks, the scanner notices and hands it on (see ``_run``).
    """

    READ_AHEAD = 2

    def __init__(self, path: Path, chunk_size: int) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.raw = open(path, "rb")
        gzipped = self.raw.read(2) == b"\x1f\x8b"
        self.raw.seek(0)
        self.reader: Any = self.raw
        if gzipped:
            self.reader = _gzip_reader(self.raw)
        self.pending = b""  # bytes read with the header but not yet handed out
        self.offset = 0  # where ``pending`` starts in the (uncompressed) file
        self._free: list[bytearray] = []
        self._queue: queue.Queue = queue.Queue(self.READ_AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading (the header on the caller's thread, the rest on the read-ahead thread) -------

    def _read_into(self, view: memoryview) -> int:
        done = 0
        try:
            while done < len(view):
                got = self.reader.readinto(view[done:])
                if not got:
                    break
                done += got
        except (OSError, EOFError, ValueError) as exc:
            raise _damaged(self.path, exc) from None
        except Exception as exc:  # noqa: BLE001 - isal_zlib.error and kin: a damaged file all the same
            raise _damaged(self.path, exc) from None
        return done

    def header(self) -> tuple[list[str], bytes]:
        """The header row (parsed, and as bytes with its line break), read and checked within the
        bounds of ``bounds.read_header`` before anything is sized by it."""
        header = bounds.read_header(self._read, self.path)
        self.pending = header.rest
        self.offset = header.size
        return header.names, header.line

    def _read(self, size: int) -> bytes:
        block = bytearray(size)
        return bytes(block[: self._read_into(memoryview(block))])

    def chunks(self):
        """Chunks in file order (the last one flagged); a damaged file raises here."""
        self._thread = threading.Thread(target=self._fill, name="zooflow-slice-read", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                return
            yield item

    def release(self, chunk: _Chunk) -> None:
        """The chunk's buffer may be filled again (its rows are written), unless something still
        holds a view of it."""
        if isinstance(chunk.buffer, bytearray) and len(chunk.buffer) == self.chunk_size + (1 << 16):
            try:
                chunk.data.release()
            except BufferError:
                return
            self._free.append(chunk.buffer)

    def _fill(self) -> None:
        try:
            tail = self.pending
            while not self._stop.is_set():
                size = self.chunk_size + (1 << 16)
                if len(tail) <= 1 << 16:
                    buffer = self._free.pop() if self._free else bytearray(size)
                else:  # a record longer than a chunk: a buffer of its own
                    buffer = bytearray(len(tail) + self.chunk_size)
                view = memoryview(buffer)
                view[: len(tail)] = tail
                got = self._read_into(view[len(tail): len(tail) + self.chunk_size])
                total = len(tail) + got
                if not got:
                    view.release()
                    if tail:
                        final = tail if tail.endswith(b"\n") else tail + b"\n"
                        self._put(_Chunk(final, len(final), True))
                    self._put(None)
                    return
                cut = self._cut(view[:total])
                if not cut and total > bounds.MAX_LINE_BYTES:
                    raise bounds.line_too_long(self.path, f"the line at byte {self.offset:,} (uncompressed)")
                tail = bytes(view[cut:total])
                view.release()
                if cut:
                    self._put(_Chunk(buffer, cut, False))
                    self.offset += cut
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @staticmethod
    def _cut(data: memoryview) -> int:
        """Where to end a chunk: after the last line break that is followed by what starts a record
        of either layout (an id and a comma), so a record rarely straddles two chunks; after the
        last line break if none is; 0 when there is none at all. A wrong guess costs only time:
        the scanner finds the cut record and carries it over."""
        text = data.obj
        end = len(data)
        cut = text.rfind(b"\n", 0, end) + 1
        candidate = cut
        for _ in range(64):
            if candidate <= 0:
                break
            if candidate == end or _RECORD_START.match(text, candidate, min(end, candidate + 24)):
                return candidate
            candidate = text.rfind(b"\n", 0, candidate - 1) + 1
        return cut

    def tell(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(0.05)
        self.raw.close()


def _gzip_reader(raw: BinaryIO) -> Any:
    """ISA-L's C gzip reader (inflates into the caller's buffer without holding the GIL), or its
    file object when this isal has no such reader."""
    reader = getattr(isal_zlib, "_GzipReader", None)
    if reader is not None:
        return reader(raw, 1 << 20)
    return igzip.IGzipFile(fileobj=raw, mode="rb")


# -- one chunk ----------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What is needed to scan chunks of one export with one spec."""

    header: list[str]
    scan_columns: list[str]  # the cheap parse
    id_column: str

    @classmethod
    def make(cls, header: list[str], layout: Layout, spec: SliceSpec) -> _Plan:
        """The cheap parse reads the cells the checks and tests need, plus those that may hold
        line breaks in a sound export (``workflow_name``, and columns zooflow does not know);
        a line break anywhere else makes the counts disagree and the chunk is parsed in full."""
        id_column = "classification_id" if layout is CLASSIFICATIONS else "subject_id"
        wanted = {id_column, layout.subject_column, "created_at", "workflow_id", "workflow_name"}
        if spec.min_workflow_version:
            wanted.add("workflow_version")
        if spec.subject_set_ids:
            wanted.add("subject_set_id")
        wanted |= {name for name, choice in (("gold_standard", spec.gold), ("expert", spec.expert)) if choice != "include"}
        known = set(CLASSIFICATION_COLUMNS) | set(SUBJECT_COLUMNS)
        scan = [name for name in header if name in wanted or name not in known]
        if len(scan) == len(header):
            scan = header
        return cls(header, scan, id_column)


@dataclass
class _Scanned:
    lines: int = 0  # physical lines of the chunk these records cover
    rows: int = 0
    carry_from: int | None = None  # byte offset of a record cut by the chunk's end
    quarantined: list[tuple[int, str, bytes]] = field(default_factory=list)  # (line in chunk, reason, record)
    filtered: Counter = field(default_factory=Counter)
    kept: list[tuple[str, pa.Buffer, int]] = field(default_factory=list)  # (day, record bytes, rows)


def _parse(chunk: memoryview, header: list[str], columns: list[str]) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    invalid: list[tuple[int, str, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number - 1, f"expected {row.expected_columns} fields, found {row.actual_columns} "
                        "(broken quoting?)", row.text))
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(chunk),
        # One block: Arrow cannot parse a record longer than its block.
        read_options=pacsv.ReadOptions(column_names=header, use_threads=False, block_size=len(chunk) + 1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False,
                                          invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={name: pa.binary() for name in header},
                                             include_columns=columns, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )
    return table, invalid


def _np_int64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free 64-bit Arrow array (integers, timestamps) as numpy."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values)]


def _arrow_bool(mask: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(np.packbits(mask, bitorder="little"))])


def _arrow_int64(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


class _Misaligned(Exception):
    """The parser's records cannot be laid over the chunk's lines (a bare carriage return?)."""


def _scan(chunk: memoryview, plan: _Plan, is_last: bool, masks: _Masks) -> _Scanned:
    """Parse, place, check and filter one chunk; runs on a worker thread.

    A chunk whose records cannot be matched with its lines (Arrow also ends a record at a bare
    carriage return, which the line count does not) is cut in halves until the line at fault is
    alone; that line is quarantined and the rest of the chunk is sliced as usual.
    """
    try:
        return _scan_aligned(chunk, plan, is_last, masks)
    except _Misaligned:
        pass
    total = _Scanned()
    data, base = bytes(chunk), 0
    while data:
        if data.count(b"\n") <= 1:
            part = _Scanned(lines=1, rows=1)
            part.quarantined.append((0, "the parser splits this line into several records (a carriage return inside "
                                        "a cell?)", data))
            _merge(total, part)
            break
        middle = data.rfind(b"\n", 0, len(data) // 2) + 1 or data.find(b"\n") + 1
        first = _scan(memoryview(data)[:middle], plan, False, masks)
        if first.carry_from == 0:  # the first half is one record still open at its end: set its first line aside
            end = data.find(b"\n") + 1
            part = _Scanned(lines=1, rows=1)
            part.quarantined.append((0, "a quoted cell is never closed, or the parser splits this line (a carriage "
                                        "return inside a cell?)", data[:end]))
            _merge(total, part)
            data, base = data[end:], base + end
            continue
        consumed = middle if first.carry_from is None else first.carry_from
        first.carry_from = None
        _merge(total, first)
        data, base = data[consumed:], base + consumed
        try:
            second = _scan_aligned(memoryview(data), plan, is_last, masks)
        except _Misaligned:
            continue
        if second.carry_from is not None:
            second.carry_from += base
        _merge(total, second)
        total.carry_from = second.carry_from
        break
    return total


def _merge(total: _Scanned, part: _Scanned) -> None:
    total.quarantined += [(line + total.lines, reason, record) for line, reason, record in part.quarantined]
    total.lines += part.lines
    total.rows += part.rows
    total.filtered.update(part.filtered)
    total.kept += part.kept


_local = threading.local()


def _pool() -> pa.MemoryPool:
    """The C allocator for the kept rows' bytes (a fifth of the input or more): it keeps freed
    pages for the next chunk, where Arrow's default pool returns them and pays for fresh zeroed
    pages each time."""
    return pa.system_memory_pool()


def _scratch(size: int) -> np.ndarray:
    """A bool array of at least ``size`` kept per worker thread, so no chunk needs fresh pages for it."""
    scratch = getattr(_local, "scratch", None)
    if scratch is None or len(scratch) < size:
        scratch = _local.scratch = np.empty(size, dtype=bool)
    return scratch


def _scan_aligned(chunk: memoryview, plan: _Plan, is_last: bool, masks: _Masks) -> _Scanned:
    data = np.frombuffer(chunk, dtype=np.uint8)
    starts = line_starts(data, _scratch(len(data)))
    n_lines = len(starts) - 1
    out = _Scanned()

    def quotes_from(line: int) -> int:
        return chunk[int(starts[line]):].tobytes().count(b'"') if line < n_lines else 0

    columns = plan.scan_columns
    while True:
        table, invalid = _parse(chunk, plan.header, columns)
        n = table.num_rows + len(invalid)
        valid = np.ones(n, dtype=bool)
        spans = np.ones(n, dtype=np.int64)
        for index, _, text in invalid:
            valid[index] = False
            spans[index] += text.count("\n")
        spans[valid] += newlines_per_row(table.columns, table.num_rows)
        placed = align(spans, n_lines, quotes_from)
        if columns is plan.header or (placed.ok and not placed.open_end):
            break
        columns = plan.header  # a line break in a skipped cell, or a record cut by the chunk's end
    if not placed.ok:
        raise _Misaligned()
    reasons = np.full(n, None, dtype=object)
    for index, reason, _ in invalid:
        reasons[index] = reason
    first_line, spans = placed.first_line, placed.spans
    if placed.open_end:
        last = n - 1
        if not is_last:  # hand the cut record to the next chunk
            out.carry_from = int(starts[first_line[last]])
            if valid[last]:
                table = table.slice(0, table.num_rows - 1)
            n, valid, reasons, first_line, spans = last, valid[:last], reasons[:last], first_line[:last], spans[:last]
        else:
            spans[last] = n_lines - first_line[last]
            if valid[last]:
                table = table.slice(0, table.num_rows - 1)
                valid[last] = False
            if reasons[last] is None:  # a record the parser did not reject already
                reasons[last] = "a quoted cell is still open at the end of the file (truncated export?)"
    out.rows = n
    out.lines = int(first_line[-1] + spans[-1]) if n else 0
    if not n:
        return out
    # Each record as bytes: the lines it covers.
    bounds = np.empty(n + 1, dtype=np.int64)
    bounds[:n] = starts[first_line]
    bounds[n] = starts[out.lines]
    records = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(bounds), pa.py_buffer(chunk)])
    blank = (np.diff(bounds) <= 2) & np.isin(data[bounds[:-1]], (10, 13))
    reasons[blank] = "blank line"
    try:
        records.cast(pa.large_string())
    except pa.ArrowInvalid:
        for index in range(n):  # only in a chunk known to hold bad bytes
            try:
                records[index].as_py().decode("utf-8")
            except UnicodeDecodeError as exc:
                if reasons[index] is None:
                    reasons[index] = f"not valid UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start} of the row)"
    # The checks and tests, over the rows the parser accepted and that are not set aside already.
    usable = valid & np.equal(reasons, None)
    if usable.any():
        rows = table if usable[valid].all() else table.filter(_arrow_bool(usable[valid]))
        record_of_row = np.flatnonzero(usable)
        judged = masks.judge(rows)
        reasons[record_of_row[judged.bad]] = judged.reasons[judged.bad]
        keep = ~judged.bad
        for name, passing in judged.tests:
            fails = keep & ~passing
            if fails.any():
                out.filtered[name] += int(fails.sum())
                keep &= ~fails
        kept_rows = np.flatnonzero(keep)
        if kept_rows.size:
            days = judged.times[kept_rows] // 86400
            unique_days = np.unique(days)
            for day in unique_days:
                chosen = record_of_row[kept_rows if len(unique_days) == 1 else kept_rows[days == day]]
                taken = pc.take(records, _arrow_int64(chosen), memory_pool=_pool())
                offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)[taken.offset: taken.offset + len(taken) + 1]
                name = str(np.datetime64(int(day), "D"))
                out.kept.append((name, taken.buffers()[2][int(offsets[0]): int(offsets[-1])], len(chosen)))
    for index in np.flatnonzero(np.not_equal(reasons, None)):
        out.quarantined.append((int(first_line[index]), str(reasons[index]), records[int(index)].as_py()))
    return out


# -- cells as numbers, vectorised over Arrow's buffers --------------------------------------------

_TIME_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_TIME_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord(" "), 13: ord(":"), 16: ord(":")}
_RECORD_START = re.compile(rb"\d{1,18},")
_VERSION = re.compile(r"(\d{1,9})(?:\.(\d{1,9}))?")


def _cells(column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """A binary column's array, cell offsets (n + 1, absolute) and bytes."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    offsets_buffer, data_buffer = column.buffers()[1:3]
    kind = np.int64 if pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=kind)[column.offset: column.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    return column, offsets, data


def _rows_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return np.searchsorted(offsets, positions, side="right") - 1


def _whole_numbers(column: pa.Array | pa.ChunkedArray, *, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(value, ok) per cell: ok where the cell is 1 to 18 ASCII digits (or empty, when allowed: value -1)."""
    column, offsets, data = _cells(column)
    lengths = np.diff(offsets)
    ok = (lengths <= 18) & ((lengths >= 1) | allow_empty)
    span = data[offsets[0]: offsets[-1]]
    stray = np.flatnonzero((span - np.uint8(48)) > 9)
    if stray.size:
        ok[_rows_of(offsets, stray + offsets[0])] = False
    values = np.full(len(lengths), -1, dtype=np.int64)
    filled = ok & (lengths > 0)
    if filled.all():
        values[:] = _np_int64(pc.cast(column.view(pa.string()), pa.int64()))
    elif filled.any():
        values[filled] = _np_int64(pc.cast(column.filter(_arrow_bool(filled)).view(pa.string()), pa.int64()))
    return values, ok


def _subject_lists(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, row of each id, ok per row) for ``;``-joined subject ids such as ``123;456``."""
    column, offsets, data = _cells(column)
    if not np.any(data[offsets[0]: offsets[-1]] == ord(";")):
        values, ok = _whole_numbers(column)
        return values, np.arange(len(values), dtype=np.int64), ok
    ids: list[int] = []
    parents: list[int] = []
    ok = np.ones(len(column), dtype=bool)
    for row, cell in enumerate(column.to_pylist()):
        parts = cell.split(b";")
        if all(0 < len(p) <= 18 and p.isdigit() and p.isascii() for p in parts):
            ids.extend(int(p) for p in parts)
            parents.extend([row] * len(parts))
        else:
            ok[row] = False
    return np.array(ids, dtype=np.int64), np.array(parents, dtype=np.int64), ok


def _utc_times(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, ok) per cell: ok where the cell is a real ``YYYY-MM-DD HH:MM:SS[ UTC]`` time."""
    _, offsets, data = _cells(column)
    lengths = np.diff(offsets)
    n = len(lengths)
    ok = (lengths == 19) | (lengths == 23)
    if not n:
        return np.zeros(0, dtype=np.int64), ok
    if ok.all() and (lengths == lengths[0]).all():  # the usual case: cells of one width, back to back
        grid = data[offsets[0]: offsets[-1]].reshape(n, int(lengths[0]))
        if grid.shape[1] == 19:
            grid = np.concatenate([grid, np.zeros((n, 4), dtype=np.uint8)], axis=1)
    else:
        padded = np.concatenate([data, np.zeros(23, dtype=np.uint8)])
        grid = padded[offsets[:-1, None] + np.arange(23)]
    digits = grid[:, _TIME_DIGITS] - np.uint8(48)
    ok &= (digits <= 9).all(axis=1)
    digits = digits.astype(np.int64)
    for position, byte in _TIME_SEPARATORS.items():
        ok &= grid[:, position] == byte
    ok &= (lengths == 19) | (grid[:, 19:23] == np.frombuffer(b" UTC", dtype=np.uint8)).all(axis=1)
    digits[~ok] = 0
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month, day, hour, minute, second = (digits[:, i] * 10 + digits[:, i + 1] for i in (4, 6, 8, 10, 12))
    months = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    month_start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    month_days = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - month_start
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (hour < 24) & (minute < 60) & (second < 60)
    return (month_start + day - 1) * 86400 + hour * 3600 + minute * 60 + second, ok


def _by_value(column: pa.Array | pa.ChunkedArray, parse: Callable[[str], Any]) -> tuple[list[Any], np.ndarray]:
    """``parse`` applied once per distinct cell (ids, versions and flags repeat a lot): the parsed
    distinct values, and each row's index into them."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    indices = encoded.indices
    codes = np.frombuffer(indices.buffers()[1], dtype=np.int32)[indices.offset: indices.offset + len(indices)]
    return [parse(value.decode("utf-8")) for value in encoded.dictionary.to_pylist()], codes


@dataclass
class _Judged:
    bad: np.ndarray  # rows that cannot be judged
    reasons: np.ndarray  # why (object array, None where fine)
    tests: list[tuple[str, np.ndarray]]  # (name, passes) per test of the spec, meaningful on good rows
    times: np.ndarray  # created_at, UTC epoch seconds


class _Masks:
    """The checks and tests of one spec over one layout, as numpy masks over a chunk's rows."""

    def __init__(self, spec: SliceSpec, layout: Layout, id_column: str) -> None:
        self.spec = spec
        self.layout = layout
        self.id_column = id_column
        self.since = int(spec.since.timestamp()) if spec.since else None
        self.until = int(spec.until.timestamp()) if spec.until else None

    def judge(self, rows: pa.Table) -> _Judged:
        n = rows.num_rows
        bad = np.zeros(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        spec = self.spec
        tests: list[tuple[str, np.ndarray]] = []

        def check(reason: str, ok: np.ndarray) -> None:
            hits = ~ok & ~bad
            reasons[hits] = reason
            bad[hits] = True

        check(f"{self.id_column} is not a whole number", _whole_numbers(rows[self.id_column])[1])
        times, ok = _utc_times(rows["created_at"])
        check("created_at is not a real YYYY-MM-DD HH:MM:SS UTC time", ok)
        if self.layout is CLASSIFICATIONS:
            subjects, parents, ok = _subject_lists(rows["subject_ids"])
        else:
            subjects, ok = _whole_numbers(rows["subject_id"])
            parents = None
        check(f"{self.layout.subject_column} is not a list of subject ids", ok)
        workflows, ok = _whole_numbers(rows["workflow_id"], allow_empty=True)
        check("workflow_id is not a whole number", ok)
        if spec.min_workflow_version and "workflow_version" in rows.column_names:
            versions, codes = _by_value(rows["workflow_version"], _version)
            check("workflow_version is not MAJOR.MINOR", np.array([v is not None for v in versions], dtype=bool)[codes])
        if spec.subject_set_ids and "subject_set_id" in rows.column_names:
            sets, ok = _whole_numbers(rows["subject_set_id"], allow_empty=True)
            check("subject_set_id is not a whole number", ok)
        # The tests, in the order their failures are counted.
        if spec.workflow_ids:
            tests.append(("workflow_ids", np.isin(workflows, spec.workflow_ids)))
        if spec.min_workflow_version and "workflow_version" in rows.column_names:
            newer = np.array([v is not None and v >= spec.min_workflow_version for v in versions], dtype=bool)
            tests.append(("min_workflow_version", newer[codes]))
        if spec.subject_id_ranges:
            hit = np.zeros(len(subjects), dtype=bool)
            for low, high in spec.subject_id_ranges:
                hit |= (subjects >= low) & (subjects <= high)
            if parents is not None and len(parents) != n:
                any_hit = np.zeros(n, dtype=bool)
                any_hit[parents[hit]] = True
                hit = any_hit
            tests.append(("subject_ids", hit))
        if spec.subject_set_ids and "subject_set_id" in rows.column_names:
            tests.append(("subject_set_ids", np.isin(sets, spec.subject_set_ids)))
        if self.since is not None:
            tests.append(("since", times >= self.since))
        if self.until is not None:
            tests.append(("until", times < self.until))
        for name, choice in (("gold_standard", spec.gold), ("expert", spec.expert)):
            if choice == "include" or name not in rows.column_names:
                continue
            flags, codes = _by_value(rows[name], lambda cell: cell.strip().lower() not in FALSY_CELLS)
            flagged = np.array(flags, dtype=bool)[codes]
            tests.append((name, flagged if choice == "only" else ~flagged))
        return _Judged(bad, reasons, tests, times)


def _version(cell: str) -> tuple[int, int] | None:
    match = _VERSION.fullmatch(cell)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


# -- output -------------------------------------------------------------------------------------


class _Quarantine:
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


class _Partitions:
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
        _release_unused()

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


# -- the slice ----------------------------------------------------------------------------------


def slice_export(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    spec: SliceSpec,
    *,
    quarantine_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
    workers: int = WORKERS,
) -> SliceReport:
    """Slice a classification or subject export (``.csv`` or ``.csv.gz``) into date partitions.

    Partitions found in the input replace the same partitions under ``out_dir`` (a rerun or a
    backfill of a date gives the same files); other partitions there are left alone.
    """
    started = time.monotonic()
    path = Path(source)
    if not path.is_file():
        raise ConfigurationError(f"export file {path} does not exist")
    source_bytes = _Source(path, chunk_size)
    try:
        header, header_line = source_bytes.header()
        layout = detect_layout(header, str(path))
        if len(set(header)) != len(header):
            raise ConfigurationError(f"{path} has duplicate column names ({listing(name for name, count in Counter(header).items() if count > 1)}); "
                                     "rename or remove the copies")
        report = SliceReport(source=str(path), kind=layout.kind, spec=spec.to_dict())
        plan = _Plan.make(header, layout, spec)
        masks = _Masks(spec, layout, plan.id_column)
        out_root = Path(out_dir)
        staging = out_root.parent / f".{out_root.name}.staging-{uuid.uuid4().hex[:8]}"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        quarantine = _Quarantine(Path(quarantine_dir or out_root / "_quarantine") / f"{path.name}.{stamp}.quarantine.csv")
        partitions = _Partitions(staging, header, header_line, spec.formats)
        try:
            _run(source_bytes, plan, masks, partitions, quarantine, report, progress, max(1, workers))
            partitions.close()
            report.partitions = dict(partitions.rows)
            report.rows_kept = sum(partitions.rows.values())
            report.outputs = _publish(staging, out_root)
        except BaseException:
            partitions.abandon()
            quarantine.discard()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report.quarantine_file = quarantine.commit()
    finally:
        source_bytes.close()
    report.seconds = time.monotonic() - started
    report.finished_at = datetime.now(timezone.utc).isoformat()
    return report


def _run(source: _Source, plan: _Plan, masks: _Masks, partitions: _Partitions, quarantine: _Quarantine,
         report: SliceReport, progress: Progress | None, workers: int) -> None:
    """Chunks are scanned ahead on worker threads and written in file order. A chunk whose last
    record goes on past its end hands that record to the next chunk, which is scanned again."""
    line = 2  # the header is line 1
    total_bytes = source.path.stat().st_size
    chunks = source.chunks()
    pending: deque[tuple[_Chunk, Future]] = deque()
    exhausted, written = False, 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zooflow-slice") as pool:

        def submit(chunk: _Chunk, front: bool = False) -> None:
            item = (chunk, pool.submit(_scan, chunk.data, plan, chunk.is_last, masks))
            pending.appendleft(item) if front else pending.append(item)

        try:
            while True:
                while not exhausted and len(pending) < IN_FLIGHT:
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                    else:
                        submit(chunk)
                if not pending:
                    break
                chunk, future = pending.popleft()
                scanned = future.result()
                if scanned.carry_from is not None:
                    # The next chunk starts inside this chunk's last record: scan it again with it.
                    tail = bytes(chunk.data[scanned.carry_from:])
                    if len(tail) > bounds.MAX_LINE_BYTES:
                        raise bounds.line_too_long(source.path, f"the record that starts on line {line + scanned.lines:,}")
                    following = pending.popleft()[0] if pending else (None if exhausted else next(chunks, None))
                    if following is None:
                        exhausted = True
                        merged = tail if tail.endswith(b"\n") else tail + b"\n"
                        submit(_Chunk(merged, len(merged), True), front=True)
                    else:
                        merged = tail + bytes(following.data)  # its stale scan may still be reading it: no reuse
                        submit(_Chunk(merged, len(merged), following.is_last), front=True)
                for rel_line, reason, record in scanned.quarantined:
                    quarantine.write(line + rel_line, reason, record)
                    report.quarantine_reasons[reason] += 1
                report.rows_quarantined += len(scanned.quarantined)
                report.rows_read += scanned.rows
                report.rows_filtered.update(scanned.filtered)
                for day, records, count in scanned.kept:
                    partitions.write(day, records, count)
                line += scanned.lines
                del scanned
                source.release(chunk)
                written += 1
                if written % 32 == 0:
                    _release_unused()
                if progress:
                    progress(source.tell(), total_bytes, report.rows_read)
        finally:
            for _, future in pending:
                future.cancel()


def _release_unused() -> None:
    """Hand freed memory back to the system. Chunks, parses and Parquet batches leave free blocks
    of many sizes behind; without this a long run (4 GB) keeps creeping up past where a short one
    (1 GB) ends."""
    pa.default_memory_pool().release_unused()
    pa.system_memory_pool().release_unused()


def _publish(staging: Path, out_root: Path) -> list[str]:
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

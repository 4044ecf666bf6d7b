"""One chunk of the export, from bytes to kept records, quarantined lines and filter counts.

This is the part that runs on the worker threads, so it holds no state beyond its arguments (and a
per-thread scratch array): a chunk can be scanned again, whole or in halves, and give the same
answer. It is also where a chunk's records are laid over its physical lines, so that a quarantined
row keeps its line number and a kept row is copied byte for byte: when Arrow's records and the line
breaks disagree, the chunk is parsed again in full, cut in halves, or its last record handed on.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from zooflow.exports.layouts import CLASSIFICATION_COLUMNS, CLASSIFICATIONS, SUBJECT_COLUMNS, Layout
from zooflow.exports.lines import align, line_starts, newlines_per_row
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing.cells import Masks, arrow_bool, arrow_int64


@dataclass
class Plan:
    """What is needed to scan chunks of one export with one spec."""

    header: list[str]
    scan_columns: list[str]  # the cheap parse
    id_column: str

    @classmethod
    def make(cls, header: list[str], layout: Layout, spec: SliceSpec) -> Plan:
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
        columns = [name for name in header if name in wanted or name not in known]
        if len(columns) == len(header):
            columns = header
        return cls(header, columns, id_column)


@dataclass
class Scanned:
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


class _Misaligned(Exception):
    """The parser's records cannot be laid over the chunk's lines (a bare carriage return?)."""


def scan(chunk: memoryview, plan: Plan, is_last: bool, masks: Masks) -> Scanned:
    """Parse, place, check and filter one chunk; runs on a worker thread.

    A chunk whose records cannot be matched with its lines (Arrow also ends a record at a bare
    carriage return, which the line count does not) is cut in halves until the line at fault is
    alone; that line is quarantined and the rest of the chunk is sliced as usual.
    """
    try:
        return _scan_aligned(chunk, plan, is_last, masks)
    except _Misaligned:
        pass
    total = Scanned()
    data, base = bytes(chunk), 0
    while data:
        if data.count(b"\n") <= 1:
            part = Scanned(lines=1, rows=1)
            part.quarantined.append((0, "the parser splits this line into several records (a carriage return inside "
                                        "a cell?)", data))
            _merge(total, part)
            break
        middle = data.rfind(b"\n", 0, len(data) // 2) + 1 or data.find(b"\n") + 1
        first = scan(memoryview(data)[:middle], plan, False, masks)
        if first.carry_from == 0:  # the first half is one record still open at its end: set its first line aside
            end = data.find(b"\n") + 1
            part = Scanned(lines=1, rows=1)
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


def _merge(total: Scanned, part: Scanned) -> None:
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


def _scan_aligned(chunk: memoryview, plan: Plan, is_last: bool, masks: Masks) -> Scanned:
    data = np.frombuffer(chunk, dtype=np.uint8)
    starts = line_starts(data, _scratch(len(data)))
    n_lines = len(starts) - 1
    out = Scanned()

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
        rows = table if usable[valid].all() else table.filter(arrow_bool(usable[valid]))
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
            out.kept = _by_day(records, record_of_row[kept_rows], judged.times[kept_rows] // 86400)
    for index in np.flatnonzero(np.not_equal(reasons, None)):
        out.quarantined.append((int(first_line[index]), str(reasons[index]), records[int(index)].as_py()))
    return out


def _by_day(records: pa.Array, chosen: np.ndarray, days: np.ndarray) -> list[tuple[str, pa.Buffer, int]]:
    """The chosen records' bytes grouped by day, in file order within each day: one copy for the
    whole chunk (a stable sort by day, then one take), cut into a slice of it per day. A chunk of
    an export in no date order holds hundreds of days; this costs the same as one."""
    if (days != days[0]).any():
        order = np.argsort(days, kind="stable")
        chosen, days = chosen[order], days[order]
    taken = pc.take(records, arrow_int64(chosen), memory_pool=_pool())
    offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)[taken.offset: taken.offset + len(taken) + 1]
    data = taken.buffers()[2]
    starts = np.flatnonzero(np.diff(days)) + 1
    firsts = np.concatenate(([0], starts))
    ends = np.concatenate((starts, [len(days)]))
    names = np.datetime_as_string(days[firsts].astype("datetime64[D]"))
    byte_starts, byte_ends = offsets[firsts].tolist(), offsets[ends].tolist()
    counts = (ends - firsts).tolist()
    return [(str(name), data.slice(start, end - start), count)
            for name, start, end, count in zip(names.tolist(), byte_starts, byte_ends, counts)]

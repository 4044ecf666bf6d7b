"""Cells as numbers: ids, times, versions and flags read straight from Arrow's buffers with numpy.

The checks and tests of a slice spec run over every row of every chunk; done cell by cell in Python
they would cost more than everything else together. Here they are masks over whole columns, written
once for both layouts, with the reason each unusable row is quarantined for. Nothing here imports
pandas (Arrow's own ``to_numpy`` would), which keeps the slice's start-up short.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zooflow.exports.layouts import CLASSIFICATIONS, Layout
from zooflow.exports.slice_spec import SliceSpec

# Cells that mean "not a gold-standard / expert row"; anything else (true, a name, owner) means it is.
FALSY_CELLS = ["", "na", "n/a", "nan", "null", "none", "false", "f", "0", "no"]
_TIME_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_TIME_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord(" "), 13: ord(":"), 16: ord(":")}
_VERSION = re.compile(r"(\d{1,9})(?:\.(\d{1,9}))?")


def _np_int64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free 64-bit Arrow array (integers, timestamps) as numpy."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values)]


def arrow_bool(mask: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(np.packbits(mask, bitorder="little"))])


def arrow_int64(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


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
        values[filled] = _np_int64(pc.cast(column.filter(arrow_bool(filled)).view(pa.string()), pa.int64()))
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


class Masks:
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

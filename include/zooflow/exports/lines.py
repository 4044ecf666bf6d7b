"""Records and physical lines of a CSV chunk.

A quarantined row must be findable in the original file, and a kept row is copied byte for byte,
so every record the parser returns has to be matched with the lines it came from. A record spans
one line plus one per line break inside its quoted cells (Panoptes leaves raw newlines in
``workflow_name``). Given the parser's records, in order, with the line breaks found in their cells,
``align`` places each record on its lines and says whether the chunk ended inside a record.

The parser may have read only some columns (the cheap path): line breaks hidden in the columns it
skipped then make the counts disagree with the chunk's lines, and the caller parses again with
every column. Counting is numpy over Arrow's buffers: no Python work per record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

NEWLINE = 10


def line_starts(chunk: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Byte offset of each line start, plus the chunk's length; the chunk ends with a line break.

    ``scratch`` (a bool array at least as long as the chunk) spares a fresh array per call."""
    if scratch is not None and len(scratch) >= len(chunk):
        breaks = scratch[: len(chunk)]
        np.equal(chunk, NEWLINE, out=breaks)
    else:
        breaks = chunk == NEWLINE
    ends = np.flatnonzero(breaks)
    starts = np.empty(len(ends) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends + 1
    return starts


def newlines_per_row(columns: list[pa.Array], n: int) -> np.ndarray:
    """Line breaks inside each row's cells, from one pass over each column's bytes."""
    total = np.zeros(n, dtype=np.int64)
    for column in columns:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not n or column.null_count == n:
            continue
        offsets_buffer, data_buffer = column.buffers()[1:3]
        if data_buffer is None:
            continue
        kind = np.int64 if pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, dtype=kind)[column.offset: column.offset + n + 1]
        data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]: offsets[-1]]
        breaks = np.flatnonzero(data == NEWLINE)
        if breaks.size:
            total += np.bincount(np.searchsorted(offsets, breaks + offsets[0], side="right") - 1, minlength=n)
    return total


@dataclass
class Alignment:
    """Where each record of a chunk starts, in lines from the chunk's start."""

    first_line: np.ndarray  # per record, 0-based line within the chunk
    spans: np.ndarray  # per record, lines it covers
    lines: int  # lines covered by these records
    ok: bool  # the counts agree with the chunk's lines
    open_end: bool  # the last record may go on past the chunk (a quoted cell still open)


def align(spans: np.ndarray, chunk_lines: int, last_quotes: Callable[[int], int]) -> Alignment:
    """Match records (their line spans, in file order) with the ``chunk_lines`` lines of a chunk.

    ``last_quotes(line)`` counts the quote characters from that line to the chunk's end; an odd
    count means the last record's quoted cell was still open when the chunk ended.
    """
    n = len(spans)
    first = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(spans[:-1], out=first[1:])
    total = int(first[-1] + spans[-1]) if n else 0
    if not n:
        return Alignment(first, spans, 0, chunk_lines == 0, chunk_lines > 0)
    last_start = int(first[-1])
    if last_start >= chunk_lines:
        return Alignment(first, spans, total, False, False)
    # A record left open at the chunk's end either counts the final line break inside its cell
    # (total one too many) or, when the parser rejected it, shows an odd number of quotes.
    open_end = total == chunk_lines + 1 or (total == chunk_lines and last_quotes(last_start) % 2 == 1)
    return Alignment(first, spans, total, total == chunk_lines or open_end, open_end)

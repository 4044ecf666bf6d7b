"""Physical line numbers for records of a streamed CSV.

A quarantined row must be findable in the original file, but Arrow's streaming reader only knows
record numbers, and a record spans several lines when a quoted cell holds a line break (Panoptes
leaves raw newlines in ``workflow_name``). This tracker turns record numbers into line numbers
from the newline counts of the records before them, batch by batch, in constant memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class InvalidRow:
    record: int  # 1-based record number, the header being record 1
    text: str
    reason: str
    line: int = 0


@dataclass
class LineTracker:
    next_record: int = 2  # the header is record 1 and line 1
    extra_lines: int = 0  # line breaks inside quoted cells of all records already placed
    pending: list[InvalidRow] = field(default_factory=list)

    def add_invalid(self, row: InvalidRow) -> None:
        """Rows the parser rejected; they arrive in file order, interleaved with good batches."""
        self.pending.append(row)

    def place_batch(self, newlines_per_row: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[InvalidRow]]:
        """Record and line numbers of a batch of good rows, and the rejected rows that fell among them."""
        n = len(newlines_per_row)
        records = self.next_record + np.arange(n, dtype=np.int64)
        placed: list[InvalidRow] = []
        while self.pending and n and self.pending[0].record <= records[-1]:
            bad = self.pending.pop(0)
            records[records >= bad.record] += 1
            placed.append(bad)
        lines = records.copy()
        offsets = np.concatenate(([0], np.cumsum(newlines_per_row, dtype=np.int64)[:-1])) if n else records
        lines += self.extra_lines + offsets
        for bad in placed:
            before = int(newlines_per_row[records < bad.record].sum())
            earlier_bad = sum(b.text.count("\n") for b in placed if b.record < bad.record)
            bad.line = bad.record + self.extra_lines + before + earlier_bad
            lines[records > bad.record] += bad.text.count("\n")
        self.extra_lines += int(newlines_per_row.sum()) + sum(b.text.count("\n") for b in placed)
        if n:
            self.next_record = int(records[-1]) + 1
        return records, lines, placed

    def flush(self) -> list[InvalidRow]:
        """Rejected rows after the last good batch."""
        rest, self.pending = self.pending, []
        for bad in rest:
            bad.line = bad.record + self.extra_lines
            self.extra_lines += bad.text.count("\n")
        return rest

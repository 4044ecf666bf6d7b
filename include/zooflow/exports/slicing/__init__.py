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
* Kept rows are copied byte for byte from the input (no re-serialising) into one
  ``created_date=YYYY-MM-DD/part-00000.csv`` per date, in file order, whatever order the dates
  come in (an export rewritten by hand costs no more files than one in Panoptes' order); Parquet
  parts, one per date, are parsed from those bytes only, at the end, on two threads.

Memory depends on the chunk size, the number of chunks in flight and the kept bytes held before
they are appended (``output.BUFFER_BYTES``), not on the file: a 4 GB export needs no more than a
1 GB one. Outputs are written into a staging folder and moved into place per date partition at the
end, so a failed run (a truncated download, say) leaves the previous slices as they were.

The parts, one job each: ``source`` (reading, gzip, chunks), ``chunk`` (one chunk: parse, place,
check, filter), ``cells`` (cells as numbers, and the spec's checks and tests as masks), ``output``
(quarantine, partitions, publishing), ``report`` (``SliceReport``) and ``slice`` (``slice_export``,
which runs them in order).
"""

from zooflow.exports.slicing.output import PARTITION
from zooflow.exports.slicing.report import SliceReport
from zooflow.exports.slicing.slice import slice_export

__all__ = ["PARTITION", "SliceReport", "slice_export"]

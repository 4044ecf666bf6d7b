"""Where the slice's rows go: the quarantine file, the date partitions, and their publication.

Everything is written into a staging folder (and the quarantine file under a temporary name), and
only moved into place once the whole export is read, one date partition at a time; so a run that
fails half way (a truncated download, a full disk) leaves the previous slices and quarantine files
as they were. Kept rows are written as the bytes they were read as, one CSV part per date whatever
order the dates come in; Parquet parts are parsed from those bytes at the end, one per date, in row
groups bounded by ``SEGMENT_ROWS`` and ``SEGMENT_BYTES``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import threading
import uuid
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

PARTITION = "created_date"
_JSON_COLUMNS = {"metadata", "annotations", "subject_data", "locations"}
SEGMENT_ROWS = 65_536  # a Parquet row group holds at most about this many rows...
SEGMENT_BYTES = 32 << 20  # ...or about this many bytes of CSV (its records are parsed at once)
BUFFER_BYTES = 48 << 20  # kept records held in memory, all dates together, before they are appended
OPEN_FILES = 64  # CSV parts kept open at once (a date seen again after its file was closed reopens it)
PARQUET_THREADS = 2
PARSE_BLOCK = 2 << 20  # CSV bytes parsed at once for Parquet
_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)


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


class _Date:
    """One date partition: its CSV part (the kept records' bytes, appended chunk by chunk), the
    records not yet appended, and where its Parquet row groups start in that file."""

    __slots__ = ("csv", "size", "rows", "pending", "pending_bytes", "segments", "segment_start", "segment_rows",
                 "writer", "next", "turn")

    def __init__(self, csv: Path, header_bytes: int) -> None:
        self.csv = csv
        self.size = header_bytes  # of the CSV part once everything pending is appended; the header comes first
        self.rows = 0
        self.pending: list[pa.Buffer] = []
        self.pending_bytes = 0
        self.segments: list[tuple[int, int, int]] = []  # (start, end, rows) in the CSV part: one row group each
        self.segment_start = header_bytes
        self.segment_rows = 0
        self.writer: Any = None  # the Parquet part, while its row groups are written
        self.next = 0  # the row group to write next
        self.turn = threading.Condition()


class Partitions:
    """The kept records of each date, appended to one CSV part per date in the staging folder, and
    made into one Parquet part per date at the end.

    Records arrive chunk by chunk, grouped by date, in file order. They wait in memory (all dates
    together at most ``BUFFER_BYTES``) and are then appended to their date's
    ``part-00000.csv`` (a few files open at once, ``OPEN_FILES``), so the part holds the input's
    header and every kept record's bytes in file order, whatever order the dates came in; an
    export in no date order costs no more files than one in order. The CSV parts are the CSV output;
    when only Parquet is asked for they are removed at the end. Parquet parts are parsed from those
    bytes at the end, in row groups of at most ``SEGMENT_ROWS`` rows or about ``SEGMENT_BYTES``
    bytes of CSV, on ``PARQUET_THREADS`` threads (row groups of one date are parsed side by side
    and written in order), so many small dates and one large date both keep the cores busy.
    """

    def __init__(self, root: Path, header: list[str], header_line: bytes, formats: tuple[str, ...]) -> None:
        self.root = root
        self.header = header
        self.header_line = header_line
        self.formats = formats
        self.parquet = "parquet" in formats
        self.schema = pa.schema([(name, pa.string()) for name in header])
        # The JSON cells are most of the bytes: zstd, and no statistics (useless for them, and every
        # row group's copy stays in memory until the file is closed). The short cells (ids, names,
        # times, flags) get min/max statistics and snappy, which costs far less per file than zstd (a
        # date of a few hundred rows is mostly such costs) and compresses them about as well. No
        # dictionaries: on these cells they cost time and saved no space.
        short = [name for name in header if name not in _JSON_COLUMNS]
        self.parquet_options = {"compression": {name: "snappy" if name in short else "zstd" for name in header},
                                "use_dictionary": False, "write_statistics": short}
        self.dates: dict[str, _Date] = {}
        self.dirty: dict[str, _Date] = {}  # dates with records waiting in memory
        self.buffered = 0
        self.files: OrderedDict[str, int] = OrderedDict()  # open CSV parts, least recently used first
        self.rows: Counter = Counter()

    def write(self, day: str, records: pa.Buffer, count: int) -> None:
        date = self.dates.get(day)
        if date is None:
            date = self.dates[day] = _Date(self.root / f"{PARTITION}={day}" / "part-00000.csv", len(self.header_line))
        date.pending.append(records)
        date.pending_bytes += records.size
        date.size += records.size
        date.rows += count
        self.rows[day] += count
        self.dirty[day] = date
        if self.parquet:
            date.segment_rows += count
            if date.segment_rows >= SEGMENT_ROWS or date.size - date.segment_start >= SEGMENT_BYTES:
                date.segments.append((date.segment_start, date.size, date.segment_rows))
                date.segment_start, date.segment_rows = date.size, 0
        self.buffered += records.size
        if self.buffered >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Append every date's waiting records to its CSV part."""
        for day, date in self.dirty.items():
            _write_all(self._file(day, date), date.pending)
            date.pending, date.pending_bytes = [], 0
        self.dirty.clear()
        self.buffered = 0

    def _file(self, day: str, date: _Date) -> int:
        fd = self.files.get(day)
        if fd is not None:
            self.files.move_to_end(day)
            return fd
        while len(self.files) >= OPEN_FILES:
            os.close(self.files.popitem(last=False)[1])
        if date.csv.parent.exists():
            fd = os.open(date.csv, os.O_WRONLY | os.O_APPEND)
        else:
            date.csv.parent.mkdir(parents=True)
            fd = os.open(date.csv, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            _write_all(fd, [self.header_line])
        self.files[day] = fd
        return fd

    def _close_files(self) -> None:
        while self.files:
            os.close(self.files.popitem()[1])

    def close(self) -> None:
        """Append what waits, close the CSV parts, write the Parquet parts (and drop the CSV parts
        when only Parquet is asked for)."""
        self.flush()
        self._close_files()
        if self.parquet:
            self._write_parquet()
        if "csv" not in self.formats:
            for date in self.dates.values():
                date.csv.unlink()

    def _write_parquet(self) -> None:
        import pyarrow.parquet as pq  # only when Parquet is asked for: it costs start-up time

        # Units of work, each parsed at once: one row group of a large date, or several small dates
        # together (a parse has a set-up cost that a date of a few hundred rows would mostly be).
        units: list[list[tuple[_Date, int]]] = []
        small: list[tuple[_Date, int]] = []
        small_bytes = 0
        for date in sorted(self.dates.values(), key=lambda d: d.size, reverse=True):  # large dates first
            if date.segment_rows:
                date.segments.append((date.segment_start, date.size, date.segment_rows))
                date.segment_start, date.segment_rows = date.size, 0
            if len(date.segments) == 1 and date.size < PARSE_BLOCK // 2:
                small.append((date, 0))
                small_bytes += date.segments[0][1] - date.segments[0][0]
                if small_bytes >= PARSE_BLOCK:
                    units.append(small)
                    small, small_bytes = [], 0
            else:
                units += [[(date, index)] for index in range(len(date.segments))]
        if small:
            units.append(small)
        work = iter(units)
        taking = threading.Lock()
        failures: list[BaseException] = []
        local = threading.local()

        def parse(unit: list[tuple[_Date, int]]) -> list[pa.Table]:
            if len(unit) == 1:
                date, index = unit[0]
                start, end, _ = date.segments[index]
                # Mapped, not read: the file's pages are in the page cache already, and fresh memory
                # to copy them into costs more than the parse on some virtual machines.
                with pa.memory_map(str(date.csv)) as mapped:
                    mapped.seek(start)
                    return [_parse_rows(mapped.read_buffer(end - start), self.header)]
            # Small dates side by side in one buffer (kept per thread, so no fresh pages), parsed
            # once and cut by their row counts: each date's bytes are whole records.
            total = sum(date.segments[index][1] - date.segments[index][0] for date, index in unit)
            if len(getattr(local, "buffer", b"")) < total:
                local.buffer = bytearray(max(total, 2 * PARSE_BLOCK))
            view = memoryview(local.buffer)
            filled = 0
            for date, index in unit:
                start, end, _ = date.segments[index]
                with open(date.csv, "rb", buffering=0) as handle:
                    while start < end:
                        got = os.preadv(handle.fileno(), [view[filled: filled + end - start]], start)
                        if not got:
                            raise RuntimeError(f"{date.csv} is shorter than was written")
                        start, filled = start + got, filled + got
            table = _parse_rows(pa.py_buffer(local.buffer)[:filled], self.header)
            tables, offset = [], 0
            for date, index in unit:
                rows = date.segments[index][2]
                tables.append(table.slice(offset, rows))
                offset += rows
            if offset != table.num_rows:
                raise RuntimeError(f"kept {offset} rows but re-read {table.num_rows} for Parquet "
                                   f"({', '.join(str(date.csv) for date, _ in unit)})")
            return tables

        def convert(unit: list[tuple[_Date, int]]) -> None:
            for (date, index), table in zip(unit, parse(unit)):
                rows = date.segments[index][2]
                if table.num_rows != rows:
                    raise RuntimeError(f"kept {rows} rows but re-read {table.num_rows} for Parquet ({date.csv})")
                with date.turn:
                    while date.next != index and not failures:
                        date.turn.wait(0.5)
                    if failures:
                        return
                    if date.writer is None:
                        date.writer = pq.ParquetWriter(str(date.csv.with_suffix(".parquet")), self.schema,
                                                       **self.parquet_options)
                    date.writer.write_table(table, row_group_size=max(1, table.num_rows))
                    date.next += 1
                    if date.next == len(date.segments):
                        date.writer.close()
                        date.writer = None
                    date.turn.notify_all()

        def worker() -> None:
            while not failures:
                with taking:
                    unit = next(work, None)
                if unit is None:
                    return
                try:
                    convert(unit)
                except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread below
                    failures.append(exc)
                    for date in self.dates.values():
                        with date.turn:
                            date.turn.notify_all()

        threads = [threading.Thread(target=worker, name=f"zooflow-parquet-{i}", daemon=True)
                   for i in range(min(PARQUET_THREADS, len(units)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        release_unused()
        if failures:
            raise failures[0]

    def abandon(self) -> None:
        self._close_files()
        for date in self.dates.values():
            if date.writer is not None:
                try:
                    date.writer.close()
                except Exception:  # noqa: BLE001 - the staging folder is removed anyway
                    pass
                date.writer = None


def _parse_rows(data: pa.Buffer, header: list[str]) -> pa.Table:
    """Whole CSV records (no header) as a table of strings, every cell as it reads. Parsed in blocks
    of ``PARSE_BLOCK`` (a few times quicker than one large block, which leaves the caches), or in one
    block when a record is longer than that."""
    read_options = pacsv.ReadOptions(column_names=header, use_threads=False, block_size=PARSE_BLOCK)
    parse_options = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
    convert_options = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                           strings_can_be_null=False, quoted_strings_can_be_null=False)
    if data.size > PARSE_BLOCK:
        try:
            reader = pacsv.open_csv(pa.BufferReader(data), read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
            return pa.Table.from_batches(list(reader), schema=reader.schema)
        except pa.ArrowInvalid:
            pass  # a record longer than a block ("straddling object"): parse it in one
    read_options.block_size = data.size + 1
    return pacsv.read_csv(pa.BufferReader(data), read_options=read_options, parse_options=parse_options,
                          convert_options=convert_options)


def _write_all(fd: int, pieces: list) -> None:
    """Write every piece, in order, with as few system calls as the kernel allows."""
    views = [memoryview(piece).cast("B") for piece in pieces]
    done = 0
    while done < len(views):
        written = os.writev(fd, views[done: done + _IOV_MAX])
        while written:
            size = views[done].nbytes
            if written >= size:
                written -= size
                done += 1
            else:
                views[done] = views[done][written:]
                written = 0
        while done < len(views) and not views[done].nbytes:
            done += 1


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

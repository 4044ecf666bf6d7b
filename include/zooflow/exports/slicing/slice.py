"""The slice itself: one export and one spec in, date partitions, a quarantine file and a report out.

This module only wires the parts together and keeps the order: chunks are read by ``source``,
scanned ahead on a few worker threads by ``chunk``, and handed to ``output`` in file order, so line
numbers, partitions and part files come out the same whatever the threads did. It is also where a
record cut by a chunk's end is joined to the next chunk and scanned again.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing
from zooflow.exports import bounds
from zooflow.exports.layouts import detect_layout
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing.cells import Masks
from zooflow.exports.slicing.chunk import Plan, scan
from zooflow.exports.slicing.output import Partitions, Quarantine, publish, release_unused
from zooflow.exports.slicing.report import SliceReport
from zooflow.exports.slicing.source import Chunk, Source

CHUNK_SIZE = 4 << 20  # Arrow tokenises a chunk this size faster per byte than a larger one (its caches)
WORKERS = 2
IN_FLIGHT = 4  # chunks parsed ahead of the writer; with CHUNK_SIZE this bounds memory

Progress = Callable[[int, int, int], None]  # (bytes read, total bytes, rows read)


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
    source_bytes = Source(path, chunk_size)
    try:
        header, header_line = source_bytes.header()
        layout = detect_layout(header, str(path))
        if len(set(header)) != len(header):
            raise ConfigurationError(f"{path} has duplicate column names ({listing(name for name, count in Counter(header).items() if count > 1)}); "
                                     "rename or remove the copies")
        report = SliceReport(source=str(path), kind=layout.kind, spec=spec.to_dict())
        plan = Plan.make(header, layout, spec)
        masks = Masks(spec, layout, plan.id_column)
        out_root = Path(out_dir)
        staging = out_root.parent / f".{out_root.name}.staging-{uuid.uuid4().hex[:8]}"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        quarantine = Quarantine(Path(quarantine_dir or out_root / "_quarantine") / f"{path.name}.{stamp}.quarantine.csv")
        partitions = Partitions(staging, header, header_line, spec.formats)
        try:
            _run(source_bytes, plan, masks, partitions, quarantine, report, progress, max(1, workers))
            partitions.close()
            report.partitions = dict(partitions.rows)
            report.rows_kept = sum(partitions.rows.values())
            report.outputs = publish(staging, out_root)
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


def _run(source: Source, plan: Plan, masks: Masks, partitions: Partitions, quarantine: Quarantine,
         report: SliceReport, progress: Progress | None, workers: int) -> None:
    """Chunks are scanned ahead on worker threads and written in file order. A chunk whose last
    record goes on past its end hands that record to the next chunk, which is scanned again."""
    line = 2  # the header is line 1
    total_bytes = source.path.stat().st_size
    chunks = source.chunks()
    pending: deque[tuple[Chunk, Future]] = deque()
    exhausted, written = False, 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zooflow-slice") as pool:

        def submit(chunk: Chunk, front: bool = False) -> None:
            item = (chunk, pool.submit(scan, chunk.data, plan, chunk.is_last, masks))
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
                        submit(Chunk(merged, len(merged), True), front=True)
                    else:
                        merged = tail + bytes(following.data)  # its stale scan may still be reading it: no reuse
                        submit(Chunk(merged, len(merged), following.is_last), front=True)
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
                    release_unused()
                if progress:
                    progress(source.tell(), total_bytes, report.rows_read)
        finally:
            for _, future in pending:
                future.cancel()

"""The export's bytes, in chunks of whole lines: the only part of the slice that reads the file.

Reading is kept apart so the rest never sees a file, a gzip stream or a read-ahead thread: it gets
chunks that end on a line break, or the error that the download is damaged (a truncated gzip, an
unreadable file), raised the same way whichever thread met it. The header is read within the bounds
of ``zooflow.exports.bounds`` before anything is sized by it, and a line longer than
``bounds.MAX_LINE_BYTES`` stops the read instead of growing a buffer without end.
"""

from __future__ import annotations

import queue
import re
import threading
from pathlib import Path
from typing import Any, BinaryIO

from isal import igzip, isal_zlib

from zooflow.errors import ConfigurationError
from zooflow.exports import bounds

_RECORD_START = re.compile(rb"\d{1,18},")


def _damaged(path: Path, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"{path} is damaged ({exc.__class__.__name__}: {exc}); download the export again — the slices already "
        "made are unchanged"
    )


class Chunk:
    """Whole lines of the export in a pooled buffer; ``data`` is a view of them."""

    __slots__ = ("buffer", "data", "is_last")

    def __init__(self, buffer: bytearray | bytes, size: int, is_last: bool) -> None:
        self.buffer = buffer
        self.data = memoryview(buffer)[:size]
        self.is_last = is_last


class Source:
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

    def release(self, chunk: Chunk) -> None:
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
                        self._put(Chunk(final, len(final), True))
                    self._put(None)
                    return
                cut = self._cut(view[:total])
                if not cut and total > bounds.MAX_LINE_BYTES:
                    raise bounds.line_too_long(self.path, f"the line at byte {self.offset:,} (uncompressed)")
                tail = bytes(view[cut:total])
                view.release()
                if cut:
                    self._put(Chunk(buffer, cut, False))
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

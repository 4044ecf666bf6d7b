"""Limits on the shape of an export file, applied with bounded reads before anything is sized by it.

A Panoptes export has 11 (subjects) to 17 (workflows) columns, and its longest lines are a few
megabytes (a drawing task's marks). A file with millions of columns or a line of gigabytes is not
an export, or is damaged, and reading it as one costs minutes and tens of gigabytes: a 17 MB header
of 2,000,000 columns took the slicer 78 s and 18.9 GB, every column becoming an Arrow column. So
the header is read with a bounded read and its columns counted before any reader uses it, and a
line (or a quoted record) longer than ``MAX_LINE_BYTES`` stops the read before its buffer grows.

The limits leave room for exports Panoptes may add columns to, and for unusually large annotations:
* ``MAX_COLUMNS`` is 15 times the widest real export (the workflows export's 17 columns);
* ``MAX_HEADER_BYTES`` allows that many column names of 256 characters each;
* ``MAX_LINE_BYTES`` is 64 MiB: the longest line of the real samples in tests/fixtures/exports is
  14 kB, and a freehand drawing with thousands of points a few MB; a record that size still fits in
  the slicer's usual memory (a chunk buffer, its copy and Arrow's parse: a few hundred MB).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing

MAX_COLUMNS = 256
MAX_HEADER_BYTES = 64 << 10
MAX_LINE_BYTES = 64 << 20
BOM = b"\xef\xbb\xbf"  # a byte-order mark left by a spreadsheet
_REAL = "a Panoptes export has 11 (subjects) to 17 (workflows) columns"
_FIX = ("check that it is the classifications, subjects or workflows export and download it again; the limits are "
        "in zooflow.exports.bounds")


@dataclass(frozen=True)
class Header:
    names: list[str]  # the column names, stripped
    line: bytes  # the header as written, without a byte-order mark, ending in a line break
    size: int  # the bytes it takes in the file (with its byte-order mark and line break)
    rest: bytes  # bytes read past it


def read_header(read: Callable[[int], bytes], source: Path | str) -> Header:
    """The header row, read ``MAX_HEADER_BYTES`` at most, or a clear error (empty, not UTF-8, too
    long or too wide). ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end."""
    data = b""
    while len(data) <= MAX_HEADER_BYTES:
        block = read(MAX_HEADER_BYTES + 1 - len(data))
        data += block
        if not block or b"\n" in block:
            break
    end = data.find(b"\n")
    if end < 0 and len(data) > MAX_HEADER_BYTES:
        raise ConfigurationError(
            f"{source} is not an export zooflow can read: its header line is longer than {MAX_HEADER_BYTES:,} bytes "
            f"(no line break in them, and they already name {data.count(b',') + 1:,} columns), where {_REAL}: {_FIX}")
    raw = data if end < 0 else data[: end + 1]
    line = raw.removeprefix(BOM)
    try:
        names = next(csv.reader(io.StringIO(line.decode("utf-8"))), [])
    except UnicodeDecodeError:
        raise ConfigurationError(f"the header of {source} is not UTF-8 text; {_FIX}") from None
    if not names or names == [""]:
        raise ConfigurationError(f"{source} is empty: no header row")
    if len(names) > MAX_COLUMNS:
        raise ConfigurationError(
            f"{source} has {len(names):,} columns, more than the {MAX_COLUMNS} zooflow accepts ({_REAL}; the header "
            f"starts {listing(names, 4)}): {_FIX}")
    return Header([name.strip() for name in names], line if line.endswith(b"\n") else line + b"\n", len(raw),
                  data[len(raw):])


def line_too_long(source: Path | str, where: str) -> ConfigurationError:
    """The error for a line, or a quoted record, longer than ``MAX_LINE_BYTES``; ``where`` says which."""
    return ConfigurationError(
        f"{source}: {where} is longer than {MAX_LINE_BYTES:,} bytes, the most zooflow reads as one record (the longest "
        "real Panoptes rows are a few MB). The file is damaged (a quoted cell never closed?) or not an export: "
        f"{_FIX}")


@contextmanager
def export_text(path: Path, errors: str = "surrogateescape") -> Iterator[tuple[list[str], Iterator[str]]]:
    """An export (``.csv`` or ``.csv.gz``) as its checked header and its lines after it, as text,
    each at most ``MAX_LINE_BYTES`` long: for the csv module, with ``field_size_limit`` set to that
    bound so a quoted cell never closed stops there too."""
    csv.field_size_limit(MAX_LINE_BYTES)
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
    except FileNotFoundError:
        raise ConfigurationError(f"export file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"export file {path} is a folder; give the path of a .csv or .csv.gz file") from None
    if gzipped:
        from isal import igzip  # here: only gzipped exports need it

        binary = igzip.open(path, "rb")
    else:
        binary = open(path, "rb")
    try:
        with binary:
            header = read_header(binary.read, path)
            binary.seek(header.size)
            with io.TextIOWrapper(binary, encoding="utf-8", errors=errors, newline="") as handle:
                yield header.names, _bounded_lines(handle, path)
    except (OSError, EOFError) as exc:
        raise ConfigurationError(f"{path} is damaged ({exc}); download the export again") from None
    except csv.Error as exc:
        raise line_too_long(path, f"a record (csv: {exc})") from None


def _bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    number = 1
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise line_too_long(path, f"line {number:,}")
        yield line

"""Export files too wide or with lines too long are refused at once, in bounded memory, by every reader."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from export_support import read_bytes, records

from zooflow.al.labels import consensus_from_export
from zooflow.errors import ConfigurationError
from zooflow.exports import bounds
from zooflow.exports.flatten import flatten_export
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing import slice_export

READERS = {
    "slice": lambda path, out: slice_export(path, out, SliceSpec(), chunk_size=1 << 16),
    "flatten": lambda path, out: flatten_export(path, out),
    "consensus": lambda path, out: consensus_from_export(path),
}
# Runs the CLI as the only child of a fresh interpreter, so RUSAGE_CHILDREN's peak is the CLI's alone.
MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"returncode": done.returncode, "stderr": done.stderr,
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def export_with(path: Path, extra_columns: int = 0, cell: bytes | None = None) -> Path:
    """The real 14-column classification export's first five rows, plus ``extra_columns`` empty
    columns and, when ``cell`` is given, a last column holding it on the second row (line 3)."""
    header, rows = records(read_bytes("afc_batchagg_cls_export.csv"))
    names = b"".join(b",c%d" % i for i in range(extra_columns)) + (b",tail" if cell is not None else b"")
    lines = [header.rstrip(b"\n") + names + b"\n"]
    for number, (_, row) in enumerate(rows[:5]):
        last = b"" if cell is None else b"," + (cell if number == 1 else b"")
        lines.append(row.rstrip(b"\n") + b"," * extra_columns + last + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def test_a_two_million_column_header_is_refused_at_once_and_in_little_memory(tmp_path):
    """Timed in this process, where the imports are done: the CLI's own start-up takes seconds on a
    busy machine, and is not what the bound is about. Memory is the CLI's peak, start-up included."""
    path = export_with(tmp_path / "wide.csv", extra_columns=2_000_000)
    for reader in READERS.values():
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="header line is longer than 65,536 bytes"):
            reader(path, tmp_path / "out")
        assert time.monotonic() - started < 5
    command = [sys.executable, "-m", "zooflow", "export", "slice", str(path), "--out", str(tmp_path / "out")]
    measured = json.loads(subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True,
                                         check=True, timeout=120).stdout)
    assert measured["returncode"] == 2, measured["stderr"]
    assert re.search(rf"{path} is not an export .* they already name [\d,]+ columns\), where a Panoptes export has 11",
                     measured["stderr"]), measured["stderr"]
    assert measured["peak_kib"] < 500 * 1024, measured
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("reader", READERS)
def test_more_columns_than_the_limit_are_refused_by_every_reader(reader, tmp_path):
    path = export_with(tmp_path / "wide.csv", extra_columns=bounds.MAX_COLUMNS - 13)
    with pytest.raises(ConfigurationError) as refused:
        READERS[reader](path, tmp_path / "out")
    message = str(refused.value)
    assert f"{path} has {bounds.MAX_COLUMNS + 1} columns, more than the {bounds.MAX_COLUMNS}" in message
    assert "classification_id, user_name, user_id, user_ip, and 253 more" in message


@pytest.mark.parametrize("reader", ["slice", "flatten"])
def test_a_header_at_the_column_limit_is_read(reader, tmp_path):
    path = export_with(tmp_path / "wide.csv", extra_columns=bounds.MAX_COLUMNS - 14)
    report = READERS[reader](path, tmp_path / "out")
    assert report.rows_read == 5 and report.rows_quarantined == 0


@pytest.fixture
def one_mib_lines(monkeypatch):
    """A 1 MiB limit, so a test needs no 64 MiB file; the code reads the limit where it applies it."""
    monkeypatch.setattr(bounds, "MAX_LINE_BYTES", 1 << 20)
    previous = csv.field_size_limit()
    yield
    csv.field_size_limit(previous)


@pytest.mark.parametrize("reader", READERS)
def test_a_line_longer_than_the_limit_is_refused_by_every_reader(reader, one_mib_lines, tmp_path):
    path = export_with(tmp_path / "long.csv", cell=b"x" * (3 << 20))
    with pytest.raises(ConfigurationError, match="is longer than 1,048,576 bytes") as refused:
        READERS[reader](path, tmp_path / "out")
    assert str(path) in str(refused.value)
    assert "line 3" in str(refused.value) or "the line at byte" in str(refused.value)


@pytest.mark.parametrize("reader", READERS)
def test_a_line_under_the_limit_is_read(reader, one_mib_lines, tmp_path):
    path = export_with(tmp_path / "long.csv", cell=b"x" * (900 << 10))
    report = READERS[reader](path, tmp_path / "out")
    assert report.rows_read == 5


def test_a_quoted_cell_never_closed_stops_at_the_limit_on_its_first_line(one_mib_lines, tmp_path):
    path = export_with(tmp_path / "open.csv", cell=b'"never closed\n' + b"more text,\n" * 200_000)
    with pytest.raises(ConfigurationError, match="the record that starts on line 3 is longer than 1,048,576 bytes"):
        slice_export(path, tmp_path / "out", SliceSpec(), chunk_size=1 << 16)
    with pytest.raises(ConfigurationError, match="a record .*field larger than field limit"):
        flatten_export(path, tmp_path / "flat")


def test_the_line_limit_holds_the_slicers_memory(tmp_path):
    """Without the limit, a line with no break grows its buffer (and a copy of it) to the file's size."""
    path = export_with(tmp_path / "long.csv", cell=b"x" * (96 << 20))
    command = [sys.executable, "-m", "zooflow", "export", "slice", str(path), "--out", str(tmp_path / "out")]
    measured = json.loads(subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True,
                                         check=True, timeout=120).stdout)
    assert measured["returncode"] == 2 and "is longer than 67,108,864 bytes" in measured["stderr"], measured
    assert measured["peak_kib"] < 500 * 1024, measured

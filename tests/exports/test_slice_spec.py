"""The slice spec: parsed and checked once, in the user's terms, before any file is touched."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from zooflow.errors import ConfigurationError
from zooflow.exports.lines import align, line_starts
from zooflow.exports.slice_spec import SliceSpec, parse_id_range, parse_utc, parse_version


def test_versions_are_pairs_of_numbers():
    assert parse_version("13.19") == (13, 19) > parse_version("13.9") == (13, 9)
    assert parse_version("1.10") > parse_version("1.9")
    assert parse_version("7") == (7, 0)
    for bad in ("1.2.3", "v1", "", "1.", "-1"):
        with pytest.raises(ConfigurationError, match="MAJOR.MINOR"):
            parse_version(bad)


def test_times_are_utc():
    assert parse_utc("2025-01-31") == datetime(2025, 1, 31, tzinfo=timezone.utc)
    assert parse_utc("2025-01-31 12:00:00 UTC") == datetime(2025, 1, 31, 12, tzinfo=timezone.utc)
    assert parse_utc("2025-01-31T14:00:00+02:00") == datetime(2025, 1, 31, 12, tzinfo=timezone.utc)
    assert parse_utc("2025-01-31T12:00:00Z") == parse_utc(datetime(2025, 1, 31, 12))
    assert parse_utc(date(2025, 1, 31)).tzinfo is timezone.utc
    with pytest.raises(ConfigurationError, match="not a UTC date"):
        parse_utc("31/01/2025")


def test_id_ranges_are_inclusive_and_checked():
    assert parse_id_range("100-200") == (100, 200)
    assert parse_id_range("150") == (150, 150)
    assert parse_id_range([5, 9]) == (5, 9)
    for bad in ("200-100", "a-b", [1, 2, 3]):
        with pytest.raises(ConfigurationError):
            parse_id_range(bad)


def test_from_mapping_and_its_errors():
    spec = SliceSpec.from_mapping({
        "workflow_ids": "12", "min_workflow_version": "1.10", "subject_ids": "1-5", "subject_set_ids": [3],
        "since": "2025-01-01", "until": "2025-02-01", "gold": "Only", "expert": "exclude", "formats": "parquet",
    })
    assert spec.workflow_ids == (12,) and spec.subject_id_ranges == ((1, 5),) and spec.gold == "only"
    assert spec.formats == ("parquet",)
    assert spec.to_dict()["min_workflow_version"] == "1.10" and spec.to_dict()["subject_ids"] == ["1-5"]
    assert SliceSpec.from_mapping(spec.to_dict()) == spec  # reports read back as specs
    assert SliceSpec.from_mapping(None) == SliceSpec()
    shifted = spec.with_window(spec.since + timedelta(days=1), None)
    assert shifted.until is None and shifted.workflow_ids == (12,)
    for bad, message in [
        ({"colour": "red"}, "unknown slice spec key"),
        ({"workflow_ids": ["x"]}, "whole numbers"),
        ({"gold": "maybe"}, "gold must be one of"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "window is empty"),
        ({"formats": ["xlsx"]}, "output formats"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            SliceSpec.from_mapping(bad)


def test_from_yaml(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("workflow_ids: [1, 2]\nsince: 2025-01-01\n")
    assert SliceSpec.from_yaml(path).since == datetime(2025, 1, 1, tzinfo=timezone.utc)
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigurationError, match="mapping"):
        SliceSpec.from_yaml(path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        SliceSpec.from_yaml(tmp_path / "missing.yaml")


def test_align_places_records_on_lines_and_sees_an_open_end():
    data = np.frombuffer(b'a,1\n"b\nc",2\nd,3\n', dtype=np.uint8)
    starts = line_starts(data)
    assert list(starts) == [0, 4, 7, 12, 16]
    placed = align(np.array([1, 2, 1]), 4, lambda line: 0)
    assert list(placed.first_line) == [0, 1, 3] and placed.ok and not placed.open_end
    # The parser counted the chunk's final line break inside the last record's cell: it goes on.
    placed = align(np.array([1, 2]), 2, lambda line: 1)
    assert placed.ok and placed.open_end
    # Rejected last record with an odd number of quotes: also open.
    placed = align(np.array([1, 1]), 2, lambda line: 3 if line == 1 else 0)
    assert placed.ok and placed.open_end
    # A line break in a cell the parser did not read: the counts disagree.
    assert not align(np.array([1, 1]), 3, lambda line: 0).ok

"""A manifest is checked before any upload, and its errors count everything while naming only a few rows."""

from __future__ import annotations

import pytest

from zooflow.errors import ConfigurationError
from zooflow.subjects.manifest import read_manifest

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a4944415408d763f80f00010101001b0a1e3f"
    "0000000049454e44ae426082"
)


def manifest(tmp_path, present: int, missing: int):
    for number in range(present):
        (tmp_path / f"here{number}.png").write_bytes(PNG)
    rows = [f"here{n}.png,{n}" for n in range(present)] + [f"gone{n}.png,{present + n}" for n in range(missing)]
    path = tmp_path / "m.csv"
    path.write_text("file,#id\n" + "\n".join(rows) + "\n")
    return path


def test_twenty_thousand_missing_files_are_all_counted_and_twenty_named(tmp_path):
    path = manifest(tmp_path, present=1, missing=20_000)
    with pytest.raises(ConfigurationError) as refused:
        read_manifest(path)
    message = str(refused.value)
    assert "20,000 file(s) are missing" in message
    assert "line 3: gone0.png; " in message and "line 22: gone19.png; and 19,980 more" in message
    assert "gone20.png" not in message and len(message) < 1_000


def test_allow_missing_uploads_the_rest_and_names_what_it_skipped(tmp_path):
    loaded = read_manifest(manifest(tmp_path, present=2, missing=3), allow_missing=True)
    assert [item.key for item in loaded.items] == ["here0.png", "here1.png"]
    assert loaded.skipped_missing == ("gone0.png", "gone1.png", "gone2.png")


def test_allow_missing_with_every_file_missing_is_an_error_not_an_empty_upload(tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        read_manifest(manifest(tmp_path, present=0, missing=30), allow_missing=True)
    message = str(refused.value)
    assert "every row's files are missing (30 file(s): line 2: gone0.png; " in message
    assert "and 10 more), so there is nothing to upload" in message and "Nothing was created or uploaded." in message


def test_a_long_cell_is_quoted_only_in_part(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("file,#id\n" + "x" * 100_000 + ".png,1\n")
    with pytest.raises(ConfigurationError, match=r"line 2: x{72}… \(99,932 more characters\)\. Nothing was created"):
        read_manifest(path)

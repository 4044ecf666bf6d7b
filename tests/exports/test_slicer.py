"""The slicer against a plain-Python reference, on every real sample and on rows broken on purpose."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from export_support import (
    CLASSIFICATION_SAMPLES, FIXTURES, SUBJECT_SAMPLES, physical_lines, quarantine_rows, read_bytes, records,
    reference_slice, replace_cell, written_rows,
)

from zooflow.errors import ConfigurationError
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing import slice_export

COLUMNS = {name: i for i, name in enumerate(
    "classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
    "gold_standard,expert,metadata,annotations,subject_data,subject_ids".split(","))}

CLASSIFICATION_SPECS = [
    {},
    {"gold": "include"},
    {"gold": "only"},
    {"gold": "include", "expert": "only"},
    {"expert": "exclude"},
    {"min_workflow_version": "13.16"},
    {"min_workflow_version": "44.20", "gold": "include"},
    {"workflow_ids": [28090, 3149]},
    {"workflow_ids": [1]},
    {"since": "2025-01-29", "until": "2025-01-30T09:50:18Z"},
    {"since": "2016-12-16T08:30:00Z"},
    {"subject_ids": ["5026478-5026500", "691284", "96588114"]},
    {"workflow_ids": [28090], "min_workflow_version": "13.10", "subject_ids": ["0-999999999"],
     "since": "2000-01-01", "until": "2100-01-01", "gold": "exclude", "expert": "exclude"},
]
SUBJECT_SPECS = [
    {},
    {"subject_set_ids": [125329]},
    {"subject_set_ids": [1]},
    {"subject_ids": ["458021-458030"]},
    {"workflow_ids": [28090], "since": "2015-05-25T21:03:00Z"},
]


def check(path: Path, spec: SliceSpec, tmp_path: Path, **options) -> tuple:
    """Slice ``path`` and compare every outcome with the reference; returns (report, out dir)."""
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    report = slice_export(path, out, spec, quarantine_dir=out / "_quarantine", **options)
    expected = reference_slice(path, spec)
    assert report.rows_read == expected.rows_read
    kept = written_rows(out)
    assert sorted(kept) == sorted(expected.kept)
    assert report.rows_kept == len(expected.kept) == sum(report.partitions.values())
    quarantined = quarantine_rows(report.quarantine_file)
    assert sorted(quarantined) == sorted(expected.quarantined)
    for line, keyword in expected.quarantined.items():
        assert keyword in quarantined[line][0], (line, quarantined[line])
    assert report.rows_quarantined == len(expected.quarantined) == sum(report.quarantine_reasons.values())
    assert +report.rows_filtered == +expected.filtered
    assert report.rows_read == report.rows_kept + report.rows_quarantined + sum(report.rows_filtered.values())
    for part in out.glob("created_date=*/part-*.csv"):
        day = part.parent.name.split("=")[1]
        for _, record in records(part.read_bytes())[1]:
            assert f",{day} ".encode() in record  # each row sits in the partition of its created_at date
    return report, out


@pytest.mark.parametrize("name", CLASSIFICATION_SAMPLES)
@pytest.mark.parametrize("spec", CLASSIFICATION_SPECS, ids=lambda s: json.dumps(s, sort_keys=True))
def test_classification_samples_match_the_reference(name, spec, tmp_path):
    check(FIXTURES / name, SliceSpec.from_mapping(spec), tmp_path)


@pytest.mark.parametrize("name", SUBJECT_SAMPLES)
@pytest.mark.parametrize("spec", SUBJECT_SPECS, ids=lambda s: json.dumps(s, sort_keys=True))
def test_subject_samples_match_the_reference(name, spec, tmp_path):
    check(FIXTURES / name, SliceSpec.from_mapping(spec), tmp_path)


def test_every_sample_keeps_all_its_rows_byte_for_byte_and_in_parquet(tmp_path):
    for name in CLASSIFICATION_SAMPLES + SUBJECT_SAMPLES:
        spec = SliceSpec.from_mapping({"gold": "include"})
        report, out = check(FIXTURES / name, spec, tmp_path)
        header, expected = records(read_bytes(name))
        assert report.rows_kept == len(expected) > 0 and report.rows_quarantined == 0
        assert sorted(written_rows(out)) == sorted(record for _, record in expected)
        for part in out.glob("created_date=*/part-*.csv"):
            assert part.read_bytes().startswith(header)
            table = pq.read_table(part.with_suffix(".parquet"))
            assert table.to_pylist() == pacsv.read_csv(part, convert_options=pacsv.ConvertOptions(
                column_types={c: "string" for c in table.column_names}, strings_can_be_null=False)).to_pylist()


def test_gold_standard_and_expert_counts_on_the_real_drawing_sample(tmp_path):
    path = FIXTURES / "dd_ap-aas229-test-classifications.csv"
    only_gold = slice_export(path, tmp_path / "gold", SliceSpec.from_mapping({"gold": "only"}))
    assert only_gold.rows_kept == 9
    experts = slice_export(path, tmp_path / "expert", SliceSpec.from_mapping({"gold": "include", "expert": "only"}))
    assert experts.rows_kept == 1
    default = slice_export(path, tmp_path / "default", SliceSpec())
    assert (default.rows_kept, default.rows_filtered["gold_standard"]) == (54, 9)


# -- synthetic rows ----------------------------------------------------------------------------


def _template() -> tuple[bytes, bytes]:
    header, rows = records(read_bytes("afc_batchagg_cls_export.csv"))
    return header, rows[0][1]


def make_export(path: Path, rows: list[dict[str, str]]) -> Path:
    """A classification export from the first real question-task row, with the given cells changed."""
    header, template = _template()
    out = [header]
    for number, cells in enumerate(rows):
        record = replace_cell(template, COLUMNS["classification_id"], str(600000000 + number))
        for name, value in cells.items():
            record = replace_cell(record, COLUMNS[name], value)
        out.append(record)
    path.write_bytes(b"".join(out))
    return path


def test_a_row_is_kept_when_any_of_its_subjects_is_in_range(tmp_path):
    path = make_export(tmp_path / "multi.csv", [
        {"subject_ids": "100;500"}, {"subject_ids": "150"}, {"subject_ids": "300;400"},
        {"subject_ids": "500;120;999"}, {"subject_ids": "99;201"}, {"subject_ids": "200"},
    ])
    spec = SliceSpec.from_mapping({"subject_ids": ["100-200"]})
    report, out = check(path, spec, tmp_path)
    kept_ids = [r.split(b",")[0] for r in written_rows(out)]
    assert kept_ids == [b"600000000", b"600000001", b"600000003", b"600000005"]
    assert report.rows_filtered["subject_ids"] == 2
    report, out = check(path, SliceSpec.from_mapping({"subject_ids": ["201-201", "999"]}), tmp_path)
    assert [r.split(b",")[0] for r in written_rows(out)] == [b"600000003", b"600000004"]


def test_workflow_versions_compare_as_version_numbers(tmp_path):
    versions = ["1.9", "1.10", "1.2", "1.100", "2.0", "0.99", "10.1", "1"]
    path = make_export(tmp_path / "versions.csv", [{"workflow_version": v} for v in versions])
    report, out = check(path, SliceSpec.from_mapping({"min_workflow_version": "1.10"}), tmp_path)
    kept = sorted(r.split(b",")[COLUMNS["workflow_version"]].decode() for r in written_rows(out))
    assert kept == ["1.10", "1.100", "10.1", "2.0"]
    report, _ = check(path, SliceSpec.from_mapping({"min_workflow_version": "1.9"}), tmp_path)
    assert report.rows_kept == 5


@pytest.mark.parametrize("column", ["gold_standard", "expert"])
def test_gold_and_expert_cells_whatever_they_hold(column, tmp_path):
    cells = ["", "NA", "false", "FALSE ", "0", "null", "true", "owner", "expert", "Alice", "t"]
    path = make_export(tmp_path / "flags.csv", [{column: c} for c in cells])
    name = "gold" if column == "gold_standard" else "expert"
    other = "expert" if name == "gold" else "gold"
    kept = {}
    for choice in ("exclude", "only", "include"):
        report, out = check(path, SliceSpec.from_mapping({name: choice, other: "include"}), tmp_path)
        kept[choice] = sorted(r.split(b",")[COLUMNS[column]].decode() for r in written_rows(out))
    assert kept["exclude"] == sorted(["", "NA", "false", "FALSE ", "0", "null"])
    assert kept["only"] == sorted(["true", "owner", "expert", "Alice", "t"])
    assert len(kept["include"]) == len(cells)


def test_created_at_window_is_utc_since_inclusive_until_exclusive(tmp_path):
    times = ["2025-03-01 23:59:59 UTC", "2025-03-02 00:00:00 UTC", "2025-03-02 12:00:00 UTC",
             "2025-03-03 00:00:00 UTC", "2025-03-02 23:59:59 UTC"]
    path = make_export(tmp_path / "times.csv", [{"created_at": t} for t in times])
    # 02:00 at UTC+2 is midnight UTC
    spec = SliceSpec.from_mapping({"since": "2025-03-02T02:00:00+02:00", "until": "2025-03-03"})
    report, out = check(path, spec, tmp_path)
    assert report.rows_kept == 3
    assert report.partitions == {"2025-03-02": 3}
    assert (report.rows_filtered["since"], report.rows_filtered["until"]) == (1, 1)


def corrupted_export(path: Path) -> tuple[Path, dict[int, str]]:
    """Real question-task rows with multi-line workflow names and rows broken on purpose.

    Returns the file and, for each row that must be quarantined, its first physical line and a
    word of the reason."""
    header, rows = records(read_bytes("afc_batchagg_cls_export.csv"))
    template = rows[1][1]
    plan = [
        ("good", lambda r: replace_cell(r, COLUMNS["workflow_name"], "Superluminous\nSupernovae\r\nrevisited")),
        ("good", lambda r: r),
        ("fields", lambda r: r.replace(b'}","[{', b'},"[{', 1)),  # a closing quote lost: the cells run together
        ("created_at", lambda r: replace_cell(r, COLUMNS["created_at"], "2025-02-30 10:00:00 UTC")),
        ("created_at", lambda r: replace_cell(r, COLUMNS["created_at"], "2025-01-01 25:00:00 UTC")),
        ("created_at", lambda r: replace_cell(r, COLUMNS["created_at"], "yesterday")),
        ("good", lambda r: replace_cell(r, COLUMNS["workflow_name"], "two\nlines")),
        ("workflow_id", lambda r: replace_cell(r, COLUMNS["workflow_id"], "10a")),
        ("subject_ids", lambda r: replace_cell(r, COLUMNS["subject_ids"], "96588114x")),
        ("subject_ids", lambda r: replace_cell(r, COLUMNS["subject_ids"], "1;;2")),
        ("classification_id", lambda r: replace_cell(r, COLUMNS["classification_id"], "")),
        ("UTF-8", lambda r: r.replace(b"Supernovae", b"Supernov\xe9e", 1)),
        ("UTF-8", lambda r: r.replace(b'""task""', b'""t\xff\xfeask""', 1)),
        ("blank", lambda r: b"\n"),
        # Its last cell opens a quote, which runs on into the next (good) row: both are one broken record.
        ("fields", lambda r: r[: r.rindex(b",") + 1] + b'"' + r[r.rindex(b",") + 1:]),
        ("swallowed", lambda r: r),
    ]
    out, line, expected = [header], 2, {}
    for number, (kind, change) in enumerate(plan):
        record = change(replace_cell(template, COLUMNS["classification_id"], str(700000000 + number)))
        assert kind == "blank" or record.startswith(b"7") or kind == "classification_id"
        if kind not in ("good", "swallowed"):
            expected[line] = kind
        out.append(record)
        line += record.count(b"\n")
    path.write_bytes(b"".join(out))
    return path, expected


@pytest.mark.parametrize("chunk_size", [1 << 20, 3000, 700])
def test_broken_rows_are_quarantined_on_their_physical_lines(chunk_size, tmp_path):
    path, expected = corrupted_export(tmp_path / "broken.csv")
    report, _ = check(path, SliceSpec(), tmp_path, chunk_size=chunk_size)
    quarantined = quarantine_rows(report.quarantine_file)
    assert sorted(quarantined) == sorted(expected)
    lines = physical_lines(path.read_bytes())
    for line, (reason, record) in quarantined.items():
        assert record.startswith(lines[line - 1].decode("utf-8", "backslashreplace").rstrip("\r\n"))
    assert report.rows_kept == 3
    assert (report.rows_read, report.rows_quarantined) == (15, 12)
    utf8 = [quarantined[line][0] for line, kind in expected.items() if kind == "UTF-8"]
    assert all(reason.startswith("not valid UTF-8") for reason in utf8)


def test_a_quoted_cell_left_open_at_the_end_of_the_file_is_quarantined(tmp_path):
    header, row = _template()
    path = tmp_path / "open.csv"
    last = row.rindex(b",") + 1
    path.write_bytes(header + row + row[:last] + b'"' + row[last:])
    for chunk_size in (1 << 20, 500):
        report = slice_export(path, tmp_path / f"out{chunk_size}", SliceSpec(), chunk_size=chunk_size)
        assert (report.rows_read, report.rows_kept, report.rows_quarantined) == (2, 1, 1)
        quarantined = quarantine_rows(report.quarantine_file)
        assert list(quarantined) == [3]
        assert "still open at the end of the file" in quarantined[3][0]


def test_a_bare_carriage_return_quarantines_only_its_line(tmp_path):
    header, rows = records(read_bytes("dd_wildcam_gorongosa_sample.csv"))
    data = [header] + [r for _, r in rows]
    data[5] = data[5].replace(b"volunteer-1", b"volun\rteer-1", 1)
    assert b"\r" in data[5]
    data[2] = replace_cell(data[2], COLUMNS["workflow_name"], "a\nname")
    path = tmp_path / "cr.csv"
    path.write_bytes(b"".join(data))
    for chunk_size in (1 << 20, 2000, 600):
        report = slice_export(path, tmp_path / f"out{chunk_size}", SliceSpec(), chunk_size=chunk_size)
        assert (report.rows_read, report.rows_kept, report.rows_quarantined) == (20, 19, 1)
        assert list(quarantine_rows(report.quarantine_file)) == [7]  # line 3 holds a line break


def test_crlf_line_ends_give_the_same_rows(tmp_path):
    lf = FIXTURES / "dd_ap-aas229-test-classifications.csv"
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    a = slice_export(lf, tmp_path / "a", SliceSpec())
    b = slice_export(crlf, tmp_path / "b", SliceSpec())
    assert (a.rows_read, a.rows_kept, dict(a.rows_filtered)) == (b.rows_read, b.rows_kept, dict(b.rows_filtered))
    assert [r.replace(b"\r\n", b"\n") for r in written_rows(tmp_path / "b")] == written_rows(tmp_path / "a")


def test_cells_of_any_size_and_records_longer_than_a_chunk(tmp_path):
    huge = "[" + ",".join(['{"task":"T0","value":"' + "x" * 1000 + '"}'] * 3000) + "]"  # about 3 MB
    path = make_export(tmp_path / "huge.csv", [{}, {"annotations": huge}, {}])
    for chunk_size in (1 << 20, 10_000):
        report, out = check(path, SliceSpec(), tmp_path, chunk_size=chunk_size)
        assert report.rows_kept == 3
        assert max(len(r) for r in written_rows(out)) > 3_000_000


def test_extra_columns_of_newer_exports_are_kept(tmp_path):
    header, rows = records(read_bytes("dd_wildcam_gorongosa_sample.csv"))
    data = header.rstrip(b"\n") + b",new_column\n" + b"".join(
        r.rstrip(b"\n") + b',"value, ' + str(i).encode() + b'"\n' for i, (_, r) in enumerate(rows))
    path = tmp_path / "newer.csv"
    path.write_bytes(data)
    report, out = check(path, SliceSpec(), tmp_path)
    assert report.rows_kept == 20
    part = next(out.glob("created_date=*/part-00000.parquet"))
    assert pq.read_table(part).column_names[-1] == "new_column"
    assert all(r.rstrip(b"\n").endswith(b'"') for r in written_rows(out))


# -- chunking, threads, input formats ---------------------------------------------------------


def _tree(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and "_quarantine" not in p.parts}


def _stable(report) -> dict:
    data = report.to_dict()
    for key in ("seconds", "finished_at", "outputs", "quarantine_file", "source"):
        data.pop(key)
    return data


def test_chunk_size_threads_and_compression_do_not_change_the_result(tmp_path):
    path, _ = corrupted_export(tmp_path / "broken.csv")
    header, rows = records(read_bytes("afc_cat-project-classifications.csv"))
    # Line breaks in names, one of them followed by what looks like the start of a record ("2,"),
    # so that some chunks end inside a record and hand it on.
    names = ["Draw,\nthen\nanswer", "Round\n2,5 stars", None]
    named = [replace_cell(r, COLUMNS["workflow_name"], names[i % 3]) if names[i % 3] else r
             for i, (_, r) in enumerate(rows)]
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(header + b"".join(named) + b"".join(r for _, r in records(path.read_bytes())[1]))
    gz = tmp_path / "mixed.csv.gz"
    gz.write_bytes(gzip.compress(mixed.read_bytes()))
    results = []
    for source, chunk_size, workers in [(mixed, 1 << 20, 2), (mixed, 256, 1), (mixed, 5000, 2), (gz, 777, 2),
                                        (gz, 1 << 22, 1)]:
        out = tmp_path / f"out-{len(results)}"
        report = slice_export(source, out, SliceSpec.from_mapping({"gold": "include"}), chunk_size=chunk_size,
                              workers=workers, quarantine_dir=tmp_path / f"q-{len(results)}")
        quarantined = Path(report.quarantine_file).read_bytes()
        results.append((_stable(report), _tree(out), quarantined))
    assert all(r == results[0] for r in results[1:])
    assert results[0][0]["rows_kept"] == 26 + 3
    check(mixed, SliceSpec.from_mapping({"gold": "include"}), tmp_path)


def test_a_rerun_gives_identical_outputs_and_replaces_only_its_partitions(tmp_path):
    path = FIXTURES / "afc_cat-project-classifications.csv"
    spec = SliceSpec.from_mapping({"since": "2025-01-29"})
    out = tmp_path / "slices"
    (out / "created_date=2020-01-01").mkdir(parents=True)
    (out / "created_date=2020-01-01" / "part-00000.csv").write_text("older slice\n")
    first = slice_export(path, out, spec)
    before = _tree(out)
    second = slice_export(path, out, spec)
    assert _tree(out) == before
    assert len(before) == 1 + 2 * len(first.partitions) and len(first.partitions) >= 2
    assert _stable(first) == _stable(second)
    assert (out / "created_date=2020-01-01" / "part-00000.csv").read_text() == "older slice\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_truncated_gzip_is_a_clear_error_and_leaves_the_previous_slices(tmp_path):
    data = read_bytes("afc_cat-project-classifications.csv")
    good = tmp_path / "export.csv.gz"
    good.write_bytes(gzip.compress(data))
    out = tmp_path / "slices"
    slice_export(good, out, SliceSpec(), quarantine_dir=tmp_path / "q")
    before = _tree(out)
    assert before
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    corrupt = tmp_path / "corrupt.csv.gz"
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"\x00" * 64
    corrupt.write_bytes(bytes(raw))
    for broken in (truncated, corrupt):
        for chunk_size in (1 << 20, 4096):
            with pytest.raises(ConfigurationError, match="damaged.*download the export again"):
                slice_export(broken, out, SliceSpec(), quarantine_dir=tmp_path / "q", chunk_size=chunk_size)
            assert _tree(out) == before
    # No staging folder, and no quarantine file (complete or partial) from the failed runs.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.csv.gz", "export.csv.gz", "slices",
                                                          "truncated.csv.gz"]


def test_gzip_and_plain_csv_give_the_same_slices(tmp_path):
    for name in CLASSIFICATION_SAMPLES:
        plain = FIXTURES / name
        gz = tmp_path / (name + ".gz")
        gz.write_bytes(gzip.compress(plain.read_bytes()))
        a = slice_export(plain, tmp_path / f"{name}-a", SliceSpec())
        b = slice_export(gz, tmp_path / f"{name}-b", SliceSpec())
        assert _stable(a) == _stable(b)
        assert _tree(tmp_path / f"{name}-a") == _tree(tmp_path / f"{name}-b")


# -- edges and report ---------------------------------------------------------------------------


def test_report_is_json_with_the_counts(tmp_path):
    path, _ = corrupted_export(tmp_path / "broken.csv")
    gz = tmp_path / "broken.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    seen = []
    report = slice_export(gz, tmp_path / "out", SliceSpec.from_mapping({"formats": "csv"}), chunk_size=2000,
                          progress=lambda done, total, rows: seen.append((done, total, rows)))
    assert seen and all(total == gz.stat().st_size for _, total, _ in seen)
    assert [rows for _, _, rows in seen] == sorted(rows for _, _, rows in seen) and seen[-1][2] == report.rows_read
    data = json.loads(json.dumps(report.to_dict()))
    assert {"rows_read", "rows_kept", "rows_quarantined", "quarantine_reasons", "rows_filtered", "partitions",
            "outputs", "quarantine_file", "spec"} <= set(data)
    assert (data["rows_read"], data["rows_kept"], data["rows_quarantined"]) == (15, 3, 12)
    assert data["outputs"] and all(p.endswith(".csv") for p in data["outputs"])
    assert any("quarantined" in line for line in report.summary_lines())


def test_header_only_empty_and_missing_files(tmp_path):
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(_template()[0])
    report = slice_export(header_only, tmp_path / "out", SliceSpec())
    assert (report.rows_read, report.rows_kept, report.outputs) == (0, 0, [])
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="empty"):
        slice_export(empty, tmp_path / "out", SliceSpec())
    with pytest.raises(ConfigurationError, match="does not exist"):
        slice_export(tmp_path / "missing.csv", tmp_path / "out", SliceSpec())
    workflows = FIXTURES / "afc_batchagg_wf_export.csv"
    with pytest.raises(ConfigurationError, match="neither a classification nor a subject export"):
        slice_export(workflows, tmp_path / "out", SliceSpec())


def test_subject_export_with_empty_ids_and_bad_set_ids(tmp_path):
    header, rows = records(read_bytes("afc_cat-project-subjects.csv"))
    data = [header] + [r for _, r in rows[:6]]
    data[2] = data[2].replace(b",28090,125329,", b",,,", 1)  # a subject in no set
    data[3] = data[3].replace(b",125329,", b",12x,", 1)
    data[4] = replace_cell(data[4], 9, "2015-05-25T21:03:01Z")  # created_at in ISO form: not what Panoptes writes
    path = tmp_path / "subjects.csv"
    path.write_bytes(b"".join(data))
    report, _ = check(path, SliceSpec.from_mapping({"subject_set_ids": [125329]}), tmp_path)
    assert (report.rows_kept, report.rows_quarantined, report.rows_filtered["subject_set_ids"]) == (3, 2, 1)
    report, _ = check(path, SliceSpec(), tmp_path)
    assert (report.rows_kept, report.rows_quarantined) == (5, 1)  # set ids are only checked when the spec uses them


def test_the_slice_path_does_not_import_pandas(tmp_path):
    code = (
        "import sys; from zooflow.exports.slicing import slice_export; from zooflow.exports.slice_spec import SliceSpec;"
        f"r = slice_export({str(FIXTURES / 'dd_ap-aas229-test-classifications.csv')!r}, {str(tmp_path / 'o')!r},"
        " SliceSpec.from_mapping({'min_workflow_version': '45.1', 'subject_ids': ['1-9999999'], 'since': '2016-01-01'}));"
        "assert r.rows_kept > 0; print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.stdout.strip() == "False"


# -- any spread of dates: one part per date and format ------------------------------------------


def _dated_export(path: Path, days: int, rows: int, seed: int) -> tuple[Path, dict[str, list[bytes]]]:
    """``rows`` rows over ``days`` dates in no order; returns the file and each date's records in file order."""
    import random

    rng = random.Random(seed)
    stamps = [f"2024-{1 + d // 28:02d}-{1 + d % 28:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00 UTC"
              for d in (rng.randrange(days) for _ in range(rows))]
    # Some records span lines (a workflow name with a line break), so that dates parsed together
    # for Parquet hold multi-line records too.
    make_export(path, [{"created_at": stamp} | ({"workflow_name": "Legacy\nquestions, v2"} if i % 7 == 3 else {})
                       for i, stamp in enumerate(stamps)])
    by_date: dict[str, list[bytes]] = {}
    for _, record in records(path.read_bytes())[1]:
        day = re.search(rb",(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d UTC,", record).group(1).decode()
        by_date.setdefault(day, []).append(record)
    return path, by_date


def _parts(out: Path) -> dict[str, list[str]]:
    return {folder.name.split("=")[1]: sorted(p.name for p in folder.iterdir()) for folder in out.glob("created_date=*")}


def _parquet_matches_csv(part: Path) -> pq.ParquetFile:
    parquet = pq.ParquetFile(part.with_suffix(".parquet"))
    table = parquet.read()
    assert table.to_pylist() == pacsv.read_csv(part, convert_options=pacsv.ConvertOptions(
        column_types={c: "string" for c in table.column_names}, strings_can_be_null=False)).to_pylist()
    return parquet


@pytest.mark.parametrize("chunk_size", [1 << 20, 2500])
def test_dates_in_no_order_give_one_part_per_date_and_format_in_file_order(chunk_size, tmp_path, monkeypatch):
    from zooflow.exports.slicing import output

    path, by_date = _dated_export(tmp_path / "shuffled.csv", days=40, rows=400, seed=7)
    default, _ = check(path, SliceSpec(), tmp_path, chunk_size=chunk_size)
    default_out = Path(default.outputs[0]).parent.parent
    # Budgets small enough that dates are appended many times, files are closed and reopened, and
    # row groups are cut inside a date: the same CSV bytes, the same Parquet rows.
    monkeypatch.setattr(output, "OPEN_FILES", 3)
    monkeypatch.setattr(output, "BUFFER_BYTES", 6000)
    monkeypatch.setattr(output, "SEGMENT_ROWS", 4)
    monkeypatch.setattr(output, "PARSE_BLOCK", 3000)
    small, out = check(path, SliceSpec(), tmp_path, chunk_size=chunk_size)
    assert _stable(small) == _stable(default)
    assert _parts(out) == {day: ["part-00000.csv", "part-00000.parquet"] for day in by_date}
    assert len(by_date) == 40
    for day, expected in by_date.items():
        part = out / f"created_date={day}" / "part-00000.csv"
        assert part.read_bytes() == records(path.read_bytes())[0] + b"".join(expected)  # header, then file order
        assert part.read_bytes() == (default_out / f"created_date={day}" / "part-00000.csv").read_bytes()
        # Row groups end where a chunk's records for the date end, once they reach SEGMENT_ROWS.
        metadata = _parquet_matches_csv(part).metadata
        groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        assert sum(groups) == len(expected) and all(rows >= 4 for rows in groups[:-1])
        if chunk_size < 10_000 and len(expected) > 12:
            assert len(groups) > 1
        assert _parquet_matches_csv(default_out / f"created_date={day}" / "part-00000.csv").num_row_groups == 1


def test_parquet_alone_leaves_no_csv_parts(tmp_path):
    path, by_date = _dated_export(tmp_path / "shuffled.csv", days=12, rows=90, seed=3)
    both = slice_export(path, tmp_path / "both", SliceSpec())
    alone = slice_export(path, tmp_path / "alone", SliceSpec.from_mapping({"formats": ["parquet"]}))
    assert _parts(tmp_path / "alone") == {day: ["part-00000.parquet"] for day in by_date}
    assert all(p.endswith(".parquet") for p in alone.outputs) and len(alone.outputs) == 12
    for day in by_date:
        name = f"created_date={day}/part-00000.parquet"
        assert pq.read_table(tmp_path / "alone" / name).equals(pq.read_table(tmp_path / "both" / name))
    assert _stable(alone)["partitions"] == _stable(both)["partitions"]


def test_a_failure_while_writing_parquet_leaves_the_previous_slices(tmp_path, monkeypatch):
    from zooflow.exports.slicing import output

    path, _ = _dated_export(tmp_path / "shuffled.csv", days=30, rows=300, seed=5)
    out = tmp_path / "slices"
    slice_export(path, out, SliceSpec.from_mapping({"since": "2024-01-10"}))
    before = _tree(out)
    parse, calls = output._parse_rows, []

    def failing(data, header):
        calls.append(1)
        if len(calls) == 7:
            raise OSError("No space left on device")
        return parse(data, header)

    monkeypatch.setattr(output, "_parse_rows", failing)
    monkeypatch.setattr(output, "SEGMENT_ROWS", 2)
    monkeypatch.setattr(output, "PARSE_BLOCK", 2000)  # no small dates parsed together: many parses
    with pytest.raises(OSError, match="No space left"):
        slice_export(path, out, SliceSpec())
    assert len(calls) >= 7
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shuffled.csv", "slices"]  # no staging folder left

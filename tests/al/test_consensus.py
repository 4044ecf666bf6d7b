"""Volunteer consensus from classification-export rows: what is labelled, and what is left out and why."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from al_support import EXPORT_COLUMNS, classification, export_bytes, votes, write_export

from zooflow.al.labels import consensus_from_export, consensus_labels
from zooflow.errors import ConfigurationError


def test_majority_with_enough_votes_is_the_label():
    report = consensus_labels(votes("p1", ["Glitch", "Glitch", "Clean"], 101) + votes("p2", ["Clean"] * 4, 102))
    assert report.labels == {"p1": "Glitch", "p2": "Clean"}
    assert report.votes == {"p1": {"Clean": 1, "Glitch": 2}, "p2": {"Clean": 4}}
    assert report.ties == report.low_agreement == report.too_few_votes == []


def test_too_few_votes_are_reported_and_left_out():
    report = consensus_labels(votes("p1", ["Glitch", "Glitch"], 101), min_votes=3)
    assert report.labels == {} and report.too_few_votes == ["p1"]
    assert consensus_labels(votes("p1", ["Glitch", "Glitch"], 101), min_votes=2).labels == {"p1": "Glitch"}


def test_ties_are_reported_and_left_out_even_above_the_agreement_share():
    report = consensus_labels(votes("p1", ["A", "B", "A", "B"], 101), agreement=0.5)
    assert report.labels == {} and report.ties == ["p1"] and report.low_agreement == []


def test_agreement_threshold():
    rows = votes("p1", ["A", "A", "B", "C", "D"], 101)  # majority share 0.4
    low = consensus_labels(rows, agreement=0.5)
    assert low.labels == {} and low.low_agreement == ["p1"]
    assert consensus_labels(rows, agreement=0.4).labels == {"p1": "A"}
    exactly_half = consensus_labels(votes("p2", ["A", "A", "B", "C"], 102), agreement=0.5)
    assert exactly_half.labels == {"p2": "A"}


def test_answer_map_and_unmapped_answers_counted_not_used():
    rows = votes("p1", ["Yes", "Yes", "Maybe", "Maybe", "Maybe", "No"], 101)
    report = consensus_labels(rows, answer_map={"Yes": "glitch", "No": "clean"}, min_votes=3)
    assert report.votes == {"p1": {"clean": 1, "glitch": 2}}
    assert report.labels == {"p1": "glitch"}
    assert report.unmapped_answers == {"Maybe": 3}
    assert any("Maybe" in line for line in report.summary_lines())


def test_only_the_chosen_task_counts_and_other_answers_are_skipped():
    rows = votes("p1", ["A", "A", "A"], 101)
    rows.append(classification("B", {101: {"#pool_id": "p1"}}, task="T1"))  # another task only
    rows.append(classification(["A", "B"], {101: {"#pool_id": "p1"}}))  # multiple choice: not one answer
    report = consensus_labels(rows)
    assert report.votes == {"p1": {"A": 3}} and report.without_task == 2
    assert consensus_labels(rows, task="T9").votes == {"p1": {"No": 5}}


def test_multi_subject_rows_vote_for_each_pool_item_and_subjects_without_pool_id_are_counted():
    both = {201: {"#pool_id": "p1"}, 202: {"#pool_id": 7, "name": "second"}, 203: {"name": "no pool id"}}
    rows = [classification("A", both) for _ in range(3)]
    rows.append(classification("A", {204: {"#pool_id": "p1"}, 205: {"#pool_id": "p1"}}))  # same item twice: one vote
    report = consensus_labels(rows)
    assert report.votes == {"7": {"A": 3}, "p1": {"A": 4}}  # a numeric pool id is compared as text
    assert report.labels == {"7": "A", "p1": "A"}
    assert report.without_pool_id == 3


def test_another_key_finds_the_pool_id():
    rows = [classification("A", {301: {"!item": "x9"}}) for _ in range(3)]
    assert consensus_labels(rows).labels == {}
    assert consensus_labels(rows, key="!item").labels == {"x9": "A"}


def test_malformed_json_is_counted_not_fatal():
    rows = votes("p1", ["A", "A", "A"], 101)
    broken = classification("A", {101: {"#pool_id": "p1"}}, classification_id=999)
    broken["annotations"] = broken["annotations"][:-5]
    not_keyed = classification("A", {101: {"#pool_id": "p1"}}, classification_id=998)
    not_keyed["subject_data"] = "[1,2]"
    report = consensus_labels(rows + [broken, not_keyed])
    assert report.labels == {"p1": "A"} and report.votes["p1"] == {"A": 3}
    assert report.malformed_rows == 2
    assert any("999" in e and "annotations is not valid JSON" in e for e in report.malformed_examples)
    assert any("998" in e and "subject_data" in e for e in report.malformed_examples)


def test_report_is_json_and_readable():
    rows = (votes("p1", ["A", "A", "A"], 101) + votes("p2", ["A", "B"], 102) + votes("p3", ["A", "B"] * 2, 103)
            + votes("p4", ["A", "A", "B", "C", "D"], 104))
    report = consensus_labels(rows)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["labels"] == {"p1": "A"} and data["too_few_votes"] == ["p2"] and data["ties"] == ["p3"]
    assert data["low_agreement"] == ["p4"] and data["rows_read"] == 14
    text = "\n".join(report.summary_lines())
    assert "1 of 4 voted items labelled" in text and "tied: 1 (p3)" in text and "waiting for more votes: 1 (p2)" in text


def test_bad_settings_are_refused():
    with pytest.raises(ConfigurationError, match="min_votes"):
        consensus_labels([], min_votes=0)
    with pytest.raises(ConfigurationError, match="agreement"):
        consensus_labels([], agreement=1.5)


def test_export_files_csv_gzip_and_slices_with_duplicates_counted_once(tmp_path):
    first = votes("p1", ["A", "A"], 101) + votes("p2", ["B", "B", "B"], 102)
    later = votes("p1", ["A"], 101)
    plain = write_export(tmp_path / "old.csv", first)
    gzipped = write_export(tmp_path / "new.csv.gz", first + later)  # a newer full export repeats the old rows
    report = consensus_from_export([plain, gzipped])
    assert report.labels == {"p1": "A", "p2": "B"} and report.votes["p1"] == {"A": 3}
    assert report.duplicate_rows == 5 and report.rows_read == 11

    slices = tmp_path / "slices"
    day = slices / "created_date=2024-02-23"
    write_export(day / "part-00000.csv", first)
    table = pa.Table.from_pylist(first, schema=pa.schema([(c, pa.string()) for c in EXPORT_COLUMNS]))
    pq.write_table(table, day / "part-00000.parquet")  # the same part as Parquet: read once
    (slices / "created_date=2024-02-24").mkdir()
    pq.write_table(pa.Table.from_pylist(later, schema=table.schema), slices / "created_date=2024-02-24" / "part-00000.parquet")
    write_export(slices / "_quarantine" / "part-99999.csv", votes("p9", ["Z"] * 5, 109))
    from_slices = consensus_from_export(slices)
    assert from_slices.rows_read == 6 and from_slices.duplicate_rows == 0
    assert from_slices.labels == {"p1": "A", "p2": "B"}


def test_export_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        consensus_from_export(tmp_path / "missing.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="no classification export parts"):
        consensus_from_export(tmp_path / "empty")
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("subject_id,project_id,metadata\n1,2,{}\n")
    with pytest.raises(ConfigurationError, match="not a classification export"):
        consensus_from_export(subjects)


def test_real_layout_round_trips_through_csv(tmp_path):
    rows = votes("p1", ["Yes, a glitch", "Yes, a glitch", "No"], 101)  # commas and quotes in cells
    path = write_export(tmp_path / "export.csv", rows)
    assert path.read_bytes() == export_bytes(rows)
    header = path.read_text().splitlines()[0].split(",")
    assert header == EXPORT_COLUMNS and len(header) == 14
    assert consensus_from_export(path).labels == {"p1": "Yes, a glitch"}

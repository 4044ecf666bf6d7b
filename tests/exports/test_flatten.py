"""Flattening every real export sample, each task type, and rows broken on purpose."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from export_support import CLASSIFICATION_SAMPLES, COLUMNS, FIXTURES, read_bytes, records, replace_cell, with_annotations

from zooflow.errors import ConfigurationError
from zooflow.exports.flatten import flatten_export, flatten_row, task_definitions

def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def source_rows(name: str) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    return read_csv_rows(FIXTURES / name)


def flat(tmp_path: Path, source: Path, **options) -> tuple:
    out = tmp_path / "flat"
    report = flatten_export(source, out / source.name.split(".")[0], **options)
    csv_rows = pd.read_csv(out / (source.name.split(".")[0] + ".csv"), dtype=str, keep_default_na=False)
    parquet = pd.read_parquet(out / (source.name.split(".")[0] + ".parquet"))
    assert list(csv_rows.columns) == list(parquet.columns) and len(csv_rows) == len(parquet) == report.rows_written
    return report, parquet


@pytest.mark.parametrize("name", CLASSIFICATION_SAMPLES)
def test_each_classification_sample_gives_one_row_per_classification_and_task(name, tmp_path):
    report, table = flat(tmp_path, FIXTURES / name)
    source = source_rows(name)
    assert report.rows_read == len(source) and report.rows_quarantined == 0
    expected = sum(len({a["task"] for a in json.loads(r["annotations"])}) for r in source)
    assert len(table) == expected
    assert not table.duplicated(["classification_id", "task"]).any()
    for row in source:
        metadata = json.loads(row["metadata"])
        mine = table[table.classification_id == row["classification_id"]].iloc[0]
        seconds = (datetime.fromisoformat(metadata["finished_at"].replace("Z", "+00:00"))
                   - datetime.fromisoformat(metadata["started_at"].replace("Z", "+00:00"))).total_seconds()
        assert mine.seconds_spent == pytest.approx(seconds)
        assert (mine.viewport_width, mine.viewport_height) == (metadata["viewport"]["width"], metadata["viewport"]["height"])
        assert bool(mine.logged_in) == (not row["user_name"].startswith("not-logged-in"))
        subject = json.loads(row["subject_data"])[row["subject_ids"]]
        for key, value in subject.items():
            if key != "retired" and value is not None and not isinstance(value, (dict, list)):
                assert str(mine[f"subject.{key}"]) == str(value)
        assert bool(mine.retired) == bool(subject["retired"])


def test_not_logged_in_volunteers_are_flagged(tmp_path):
    _, table = flat(tmp_path, FIXTURES / "dd_ap-aas229-test-classifications.csv")
    anonymous = {r["classification_id"] for r in source_rows("dd_ap-aas229-test-classifications.csv")
                 if r["user_name"].startswith("not-logged-in-")}
    assert len(anonymous) == 23
    assert set(table[~table.logged_in].classification_id) == anonymous
    assert table[~table.logged_in].user_id.isna().all() and table[table.logged_in].user_id.notna().all()


def test_question_answers_from_the_real_question_export(tmp_path):
    report, table = flat(tmp_path, FIXTURES / "afc_batchagg_cls_export.csv")
    source = source_rows("afc_batchagg_cls_export.csv")
    expected = [(r["classification_id"], a["task"], a["value"]) for r in source for a in json.loads(r["annotations"])]
    assert sorted(zip(table.classification_id, table.task, table.value)) == sorted(expected)
    assert set(table.task_type) == {"single"} and report.task_types == {"single": len(expected)}
    assert table.task_label.str.startswith(("**Has the lightcurve", "Is the cross-hair")).all()


def test_survey_choices_and_their_answers(tmp_path):
    _, table = flat(tmp_path, FIXTURES / "dd_wildcam_gorongosa_sample.csv")
    assert set(table.task_type) == {"survey"}
    source = {r["classification_id"]: json.loads(r["annotations"]) for r in source_rows("dd_wildcam_gorongosa_sample.csv")}
    for _, row in table.iterrows():
        picks = [c for a in source[row.classification_id] for c in a["value"]]
        assert row.choice == ";".join(c["choice"] for c in picks)
        assert row.choices_count == len(picks)
        assert json.loads(row.choice_answers) == [{"choice": c["choice"], "answers": c["answers"]} for c in picks]
    two = table[table.choices_count == 2]
    assert len(two) == 1 and two.iloc[0].choice == "MPL;BBN"  # two entries of task T1 in one classification


def test_drawing_marks_per_tool(tmp_path):
    _, table = flat(tmp_path, FIXTURES / "dd_ap-aas229-test-classifications.csv")
    source = {r["classification_id"]: json.loads(r["annotations"]) for r in source_rows("dd_ap-aas229-test-classifications.csv")}
    drawings = table[table.task == "T0"]
    assert len(drawings) == 63
    for _, row in drawings.iterrows():
        marks = [m for a in source[row.classification_id] if a["task"] == "T0" for m in a["value"]]
        assert row.marks_count == len(marks)
        per_tool = json.loads(row.marks_per_tool)
        assert sum(per_tool.values()) == len(marks)
        for mark in marks:
            assert str(mark.get("tool_label") or mark["tool"]) in per_tool
    assert drawings.marks_count.max() > 1
    freehand = flat(tmp_path / "cat", FIXTURES / "afc_cat-project-classifications.csv")[1]
    assert (freehand.task_type.isin(["drawing", "empty"])).all() and freehand.marks_count.sum() > 0


def test_multiple_answers_text_dropdown_combo_and_declared_types(tmp_path):
    path = with_annotations(tmp_path, [
        [{"task": "T0", "task_label": "Which?", "value": ["Red", "Blue"]}],
        [{"task": "T1", "task_label": "Describe it", "value": "a faint, fuzzy blob"}],
        [{"task": "T2", "value": [{"value": "opt-1", "option": True}]}],
        [{"task": "T3", "task_label": None, "value": [
            {"task": "T4", "task_label": "Yes?", "value": "Yes"},
            {"task": "T5", "task_label": "Mark", "value": [{"x": 1, "y": 2, "tool": 0, "tool_label": "Star"},
                                                            {"x": 3, "y": 4, "tool": 0, "tool_label": "Star"}]},
        ]}],
        [{"task": "T0", "task_label": "Which?", "value": []}],
    ])
    workflows = tmp_path / "workflows.csv"
    workflows.write_text(
        "workflow_id,display_name,version,active,tasks,strings,minor_version\n"
        + '10,W,16,true,"' + json.dumps({"T0": {"type": "multiple", "question": "T0.question"},
                                         "T1": {"type": "text", "instruction": "T1.instruction"}}).replace('"', '""')
        + '","' + json.dumps({"T0.question": "Which?", "T1.instruction": "Describe it"}).replace('"', '""') + '",55\n',
        encoding="utf-8",
    )
    assert task_definitions(workflows).types == {("10", "16", "T0"): "multiple", ("10", "16", "T1"): "text"}
    report, table = flat(tmp_path, path, workflows_export=workflows)
    rows = {(r.classification_id, r.task): r for r in table.itertuples()}
    assert rows[("800000000", "T0")].task_type == "multiple"
    assert json.loads(rows[("800000000", "T0")].answers) == ["Red", "Blue"]
    assert rows[("800000000", "T0")].value == "Red;Blue"
    assert (rows[("800000001", "T1")].task_type, rows[("800000001", "T1")].value) == ("text", "a faint, fuzzy blob")
    assert (rows[("800000002", "T2")].task_type, rows[("800000002", "T2")].value) == ("dropdown", "opt-1")
    assert (rows[("800000003", "T4")].value, rows[("800000003", "T5")].marks_count) == ("Yes", 2)
    assert json.loads(rows[("800000003", "T5")].marks_per_tool) == {"Star": 2}
    assert rows[("800000004", "T0")].task_type == "multiple" and rows[("800000004", "T0")].answers == "[]"
    assert report.task_types["multiple"] == 2
    without = flatten_export(path, tmp_path / "plain")
    with pytest.raises(ConfigurationError, match="would overwrite"):
        flatten_export(path, tmp_path / "synthetic")
    # Without the workflows export a text answer looks like a single answer (T1 and the combo's T4),
    # and the empty T0 list takes the type T0 has in another row.
    assert without.task_types == {"single": 2, "multiple": 2, "dropdown": 1, "drawing": 1}
    plain = pd.read_parquet(tmp_path / "plain.parquet").set_index(["classification_id", "task"])
    assert (plain.loc[("800000004", "T0")].task_type, plain.loc[("800000004", "T0")].answers) == ("multiple", "[]")
    assert pd.isna(plain.loc[("800000004", "T0")].marks_count)
    assert plain.loc[("800000003", "T4")].combo_task == "T3"


def test_broken_rows_are_quarantined_with_their_physical_lines(tmp_path):
    header, rows = records(read_bytes("afc_batchagg_cls_export.csv"))
    good = [r for _, r in rows]
    data = [
        header,
        replace_cell(good[0], COLUMNS["workflow_name"], "Two\nline name"),  # lines 2-3
        replace_cell(good[1], COLUMNS["annotations"], '[{"task":"T0","value":"Yes"'),  # line 4: invalid JSON
        good[2],  # line 5
        good[3].replace(b'}","[{', b'},"[{', 1),  # line 6: a lost quote
        replace_cell(good[4], COLUMNS["metadata"], '{"started_at":"x"} trailing'),  # line 7
        good[5].replace(b"Supernovae", b"Supernov\xe9e", 1),  # line 8: not UTF-8
        replace_cell(good[6], COLUMNS["annotations"], '{"task":"T0"}'),  # line 9: not a list
    ]
    path = tmp_path / "broken.csv"
    path.write_bytes(b"".join(data))
    report = flatten_export(path, tmp_path / "out" / "broken")
    assert (report.rows_read, report.rows_quarantined) == (7, 5)
    quarantined = {int(r["line"]): r["reason"] for r in read_csv_rows(Path(report.quarantine_file))}
    assert sorted(quarantined) == [4, 6, 7, 8, 9]
    assert quarantined[4].startswith("annotations is not valid JSON")
    assert "fields" in quarantined[6]
    assert quarantined[7].startswith("metadata is not valid JSON")
    assert quarantined[8] == "not valid UTF-8"
    assert quarantined[9] == "annotations is not a JSON list"
    table = pd.read_parquet(tmp_path / "out" / "broken.parquet")
    assert sorted(set(table.classification_id)) == sorted(r.split(b",")[0].decode() for r in (good[0], good[2]))


def test_gzip_input_and_the_other_export_kinds(tmp_path):
    plain = FIXTURES / "dd_wildcam_gorongosa_sample.csv"
    gz = tmp_path / "wildcam.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = flatten_export(plain, tmp_path / "a")
    b = flatten_export(gz, tmp_path / "b")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() and a.rows_written == b.rows_written

    report, subjects = flat(tmp_path, FIXTURES / "afc_cat-project-subjects.csv")
    assert report.kind == "subjects" and len(subjects) == 30
    assert subjects["metadata.origin"].eq("Flickr").all()
    assert all(json.loads(v)[0].startswith("https://panoptes-uploads") for v in subjects.locations)

    report, tasks = flat(tmp_path, FIXTURES / "afc_batchagg_wf_export.csv")
    assert report.kind == "workflows" and len(tasks) == 2 * 6
    first = tasks.iloc[0]
    assert first.question.startswith("**Has the lightcurve") and json.loads(first.answers) == ["Yes", "No"]
    assert set(tasks.workflow_version) == {f"{r['version']}.{r['minor_version']}" for r in source_rows("afc_batchagg_wf_export.csv")}


def test_not_an_export_and_header_only(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigurationError, match="not a Panoptes"):
        flatten_export(other, tmp_path / "flat-other")
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(records(read_bytes("afc_batchagg_cls_export.csv"))[0])
    report = flatten_export(header_only, tmp_path / "flat-header")
    assert (report.rows_read, report.rows_written, report.kind) == (0, 0, "classifications")
    assert pd.read_csv(tmp_path / "flat-header.csv").columns[0] == "classification_id"
    with pytest.raises(ConfigurationError, match="does not exist"):
        flatten_export(tmp_path / "missing.csv", tmp_path / "flat-missing")


def test_flatten_row_names_the_bad_cell():
    row = source_rows("afc_batchagg_cls_export.csv")[0]
    assert len(flatten_row(row)[0]) == 2
    with pytest.raises(ValueError, match="subject_data is not valid JSON"):
        flatten_row(row | {"subject_data": "{"})
    multi = row | {"subject_ids": "96588114;1"}
    assert flatten_row(multi)[0][0]["subject_id"] == "96588114"

"""The marks table and the task types beyond questions: each mark's shape and coordinates, the old
and new front-end formats alike, text/dropdown/slider/shortcut/combo rows, empty lists typed from
other rows, and a flatten written in parts that gives the same tables as one written at once."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from export_support import with_annotations

from zooflow.errors import ConfigurationError
from zooflow.exports.flat_tables import FlatTable, publish
from zooflow.exports.flatten import flatten_export

OLD_MARKS = [
    {"x": 10, "y": 20, "tool": 0, "frame": 0, "details": [{"value": 1}], "tool_label": "Penguin"},
    {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "tool": 1, "frame": 1, "details": [], "tool_label": "Glitch"},
    {"points": [{"x": 5, "y": 6}, {"x": 7, "y": 8}, {"x": 9, "y": 5}], "tool": 2, "frame": 0, "details": [],
     "tool_label": "Outline"},
]
NEW_MARKS = [
    {"x": 10, "y": 20, "toolIndex": 0, "toolType": "point", "frame": 0, "details": [{"value": 1}], "markId": "a"},
    {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "toolIndex": 1, "toolType": "line", "frame": 1, "details": [], "markId": "b"},
    {"pathX": [5, 7, 9], "pathY": [6, 8, 5], "toolIndex": 2, "toolType": "freehandLine", "frame": 0, "details": [],
     "markId": "c"},
]
SHAPES = {  # a mark of each shape the parameters alone tell apart, and what it reads as
    "point": {"x": 1, "y": 2}, "circle": {"x": 1, "y": 2, "r": 3, "angle": 0}, "ellipse": {"x": 1, "y": 2, "rx": 3, "ry": 4, "angle": 5},
    "rectangle": {"x": 1, "y": 2, "width": 3, "height": 4}, "rotateRectangle": {"x": 1, "y": 2, "width": 3, "height": 4, "angle": 9},
    "column": {"x": 1, "width": 3}, "fullWidthLine": {"y": 7}, "fullHeightLine": {"x": 7},
    "fan": {"x": 1, "y": 2, "radius": 3, "spread": 40, "rotation": 10}, "temporalPoint": {"x": 1, "y": 2, "displayTime": 0.5},
    "temporalRotateRectangle": {"x_center": 1, "y_center": 2, "width": 3, "height": 4, "angle": 5, "displayTime": 1.5},
}


def workflows_export(path: Path, tasks: dict, strings: dict) -> Path:
    def cell(value: dict) -> str:
        return '"' + json.dumps(value).replace('"', '""') + '"'

    path.write_text("workflow_id,display_name,version,active,tasks,strings,minor_version\n"
                    f"10,W,16,true,{cell(tasks)},{cell(strings)},55\n", encoding="utf-8")
    return path


def flat(tmp_path: Path, annotations: list[list[dict]], name: str = "flat", **options) -> tuple:
    source = with_annotations(tmp_path, annotations, name=f"{name}-source.csv")
    report = flatten_export(source, tmp_path / name, **options)
    return report, pd.read_parquet(tmp_path / f"{name}.parquet"), pd.read_parquet(tmp_path / f"{name}-marks.parquet")


def test_old_and_new_front_end_marks_come_out_the_same(tmp_path):
    report, table, marks = flat(tmp_path, [[{"task": "T0", "value": OLD_MARKS}], [{"task": "T0", "value": NEW_MARKS}]])
    assert report.marks_written == 6 and report.outputs[2:] == [str(tmp_path / "flat-marks.csv"), str(tmp_path / "flat-marks.parquet")]
    old, new = (marks[marks.classification_id == c].drop(columns=["classification_id", "tool_label", "shape"])
                .reset_index(drop=True) for c in ("800000000", "800000001"))
    pd.testing.assert_frame_equal(old, new)
    first = marks.iloc[0]
    assert (first.task, first.mark_index, first.frame, first.tool_index, first.x, first.y) == ("T0", 0, 0, 0, 10.0, 20.0)
    assert json.loads(first.details) == [{"value": 1}]
    line = marks.iloc[1]
    assert (line.frame, line.x1, line.y1, line.x2, line.y2, line.x, line.y) == (1, 1.0, 2.0, 30.0, 40.0, 1.0, 2.0)
    polygon = marks.iloc[2]
    assert json.loads(polygon.points) == [[5, 6], [7, 8], [9, 5]] and (polygon.x, polygon.y) == (5.0, 6.0)
    assert list(marks.tool_label[:3]) == ["Penguin", "Glitch", "Outline"] and marks.tool_label[3:].isna().all()
    assert list(marks["shape"]) == ["point", "line", "polygon", "point", "line", "freehandLine"]
    assert json.loads(table.marks_per_tool[0]) == {"Glitch": 1, "Outline": 1, "Penguin": 1}
    assert json.loads(table.marks_per_tool[1]) == {"0": 1, "1": 1, "2": 1}


def test_each_shape_is_read_from_its_parameters(tmp_path):
    values = [dict(params, tool=index) for index, params in enumerate(SHAPES.values())]
    _, _, marks = flat(tmp_path, [[{"task": "T0", "value": values}]])
    assert list(marks["shape"]) == list(SHAPES)
    for (_, mark), params in zip(marks.iterrows(), SHAPES.values()):
        for name, number in params.items():
            assert mark[name] == number
        assert all(pd.isna(mark[name]) for name in ("r", "rx", "width", "displayTime") if name not in params)


def test_the_workflows_export_names_each_tool_and_its_shape(tmp_path):
    tools = [{"type": "triangle", "label": "T0.tools.0.label"}, {"type": "bezier", "label": "T0.tools.1.label"}]
    workflows = workflows_export(tmp_path / "workflows.csv", {"T0": {"type": "drawing", "tools": tools}},
                                 {"T0.tools.0.label": "Crater", "T0.tools.1.label": "Ridge"})
    value = [{"x": 1, "y": 2, "r": 3, "angle": 4, "tool": 0}, {"points": [{"x": 1, "y": 1}], "tool": 1},
             {"x": 1, "y": 2, "tool": 5}]
    _, table, marks = flat(tmp_path, [[{"task": "T0", "value": value}]], workflows_export=workflows)
    assert list(marks["shape"]) == ["triangle", "bezier", "point"]  # the unknown tool 5 by its parameters
    assert list(marks.tool_label[:2]) == ["Crater", "Ridge"] and pd.isna(marks.tool_label[2])
    assert json.loads(table.marks_per_tool[0]) == {"5": 1, "Crater": 1, "Ridge": 1}


def test_text_dropdown_slider_shortcut_and_a_drawing_inside_a_combo(tmp_path):
    tasks = {"T0": {"type": "text"}, "T1": {"type": "dropdown", "selects": [{"id": "s", "options": {"*": [
        {"value": "v-a", "label": "T1.selects.0.options.*.0.label"}, {"value": "v-b", "label": "T1.selects.0.options.*.1.label"}]}}]},
        "T2": {"type": "slider"}, "T3": {"type": "combo", "tasks": ["T4", "T5"]}, "T4": {"type": "single"},
        "T5": {"type": "drawing", "tools": [{"type": "circle", "label": "Ring"}]}}
    workflows = workflows_export(tmp_path / "workflows.csv", tasks, {"T1.selects.0.options.*.0.label": "Alpha",
                                                                     "T1.selects.0.options.*.1.label": "Beta"})
    rows = [
        [{"task": "T0", "value": "a faint blob"}, {"task": "T1", "value": [{"value": "v-b", "option": True}]},
         {"task": "T2", "value": "0.75"}],
        [{"task": "T0", "value": ""}, {"task": "T1", "value": [{"value": "typed in", "option": False}]}],
        [{"task": "T0", "value": None}, {"task": "T6", "taskType": "shortcut", "value": [0, 2]},
         {"task": "T3", "value": [{"task": "T4", "value": 1}, {"task": "T5", "value": [{"x": 1, "y": 2, "r": 3, "tool": 0}]}]}],
    ]
    report, table, marks = flat(tmp_path, rows, workflows_export=workflows)
    by = table.set_index(["classification_id", "task"])
    text = by.xs("T0", level="task")
    assert list(text.value) == ["a faint blob", "", None] and list(text.text_empty) == [False, True, True]
    csv_text = pd.read_csv(tmp_path / "flat.csv", dtype=str, keep_default_na=False).set_index(["classification_id", "task"])
    assert list(csv_text.xs("T0", level="task").value) == ["a faint blob", "", ""]  # null and "" alike in CSV
    dropdown = by.xs("T1", level="task")
    assert list(dropdown.value) == ["v-b", "typed in"] and list(dropdown.value_labels[:1]) == ["Beta"]
    assert pd.isna(dropdown.value_labels.iloc[1])
    assert (by.loc[("800000000", "T2")].task_type, by.loc[("800000000", "T2")].value) == ("slider", "0.75")
    shortcut = by.loc[("800000002", "T6")]
    assert (shortcut.task_type, json.loads(shortcut.answers), shortcut.value) == ("shortcut", [0, 2], "0;2")
    assert (by.loc[("800000002", "T4")].combo_task, by.loc[("800000002", "T5")].combo_task) == ("T3", "T3")
    assert ("800000002", "T3") not in by.index
    assert (marks.task[0], marks["shape"][0], marks.tool_label[0], marks.r[0]) == ("T5", "circle", "Ring", 3.0)
    assert report.task_types == {"text": 3, "dropdown": 2, "slider": 1, "shortcut": 1, "single": 1, "drawing": 1}


def test_an_empty_list_takes_the_type_of_its_task_elsewhere_in_the_file(tmp_path):
    survey = [{"choice": "ZEBRA", "answers": {"HOWMANY": "1"}, "filters": {}}]
    rows = [[{"task": "T0", "value": []}, {"task": "T1", "value": []}, {"task": "T9", "value": []}],
            [{"task": "T0", "value": survey}, {"task": "T1", "value": [{"x": 1, "y": 1, "tool": 0}]}]]
    report, table, _ = flat(tmp_path, rows)
    first = table[table.classification_id == "800000000"].set_index("task")
    assert (first.loc["T0"].task_type, first.loc["T0"].choices_count, first.loc["T0"].choice_answers) == ("survey", 0, "[]")
    assert pd.isna(first.loc["T0"].marks_count)
    assert (first.loc["T1"].task_type, first.loc["T1"].marks_count, first.loc["T1"].marks_per_tool) == ("drawing", 0, "{}")
    assert first.loc["T9"].task_type == "empty"  # nothing says what T9 is
    assert report.task_types == {"survey": 2, "drawing": 2, "empty": 1}


def test_written_in_parts_the_tables_are_those_written_at_once(tmp_path):
    rows = []
    for number in range(9):
        value = [dict(OLD_MARKS[number % 3], tool=number % 3)] if number % 4 else []
        rows.append([{"task": "T0", "value": value}, {"task": "T1", "value": "yes" if number % 2 else "no"}])
    source = with_annotations(tmp_path, rows)
    # a subject key seen only in a later part, a number in one part and text in another
    data = source.read_text(encoding="utf-8").splitlines(keepends=True)
    data[-1] = data[-1].replace('""ramean"":', '""late_key"":""x"",""ramean"":', 1)
    source.write_text("".join(data), encoding="utf-8")
    once = flatten_export(source, tmp_path / "once")
    parts = flatten_export(source, tmp_path / "parts", chunk_rows=2)
    assert (once.rows_written, once.marks_written) == (parts.rows_written, parts.marks_written) == (18, 6)
    for suffix in (".csv", "-marks.csv"):
        assert (tmp_path / f"once{suffix}").read_bytes() == (tmp_path / f"parts{suffix}").read_bytes()
    for suffix in (".parquet", "-marks.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"once{suffix}"), pd.read_parquet(tmp_path / f"parts{suffix}"))
    late = pd.read_parquet(tmp_path / "parts.parquet")["subject.late_key"]
    assert late.notna().sum() == 2 and late.isna().sum() == 16
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no part or temporary left


def test_a_flatten_that_fails_leaves_the_last_tables_and_no_parts(tmp_path):
    source = with_annotations(tmp_path, [[{"task": "T0", "value": OLD_MARKS}]] * 40)
    flatten_export(source, tmp_path / "flat")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("flat*")}
    damaged = tmp_path / "damaged.csv.gz"
    whole = gzip.compress(source.read_bytes())
    damaged.write_bytes(whole[: len(whole) * 2 // 3])  # a download cut short: rows, then the end of the file
    with pytest.raises(ConfigurationError, match="is damaged.*download the export again"):
        flatten_export(damaged, tmp_path / "flat", chunk_rows=4)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("flat*")} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_long_marks_are_spilled_by_their_size_not_only_their_count(tmp_path):
    table = FlatTable(tmp_path / "new-folder" / "marks", ["points"], formats=("csv",), sized_columns=("points",),
                      chunk_rows=1_000, chunk_text_bytes=10_000)
    for _ in range(6):  # one classification's marks at a time, as flatten adds them: ~5 kB each
        table.add([{"points": "[" + "1.5, " * 1_000 + "]"}])
    assert table.rows_written == 6 and len(table._parts) == 3
    outputs = publish(table.stage())
    assert len(pd.read_csv(outputs[0])) == 6


def test_an_out_base_with_a_dot_keeps_its_whole_name(tmp_path):
    """Only a .csv or .parquet suffix of --out is replaced: run.2024-06 is a name, not a suffix."""
    source = with_annotations(tmp_path, [[{"task": "T0", "value": OLD_MARKS}]] * 3)
    flatten_export(source, tmp_path / "out" / "run.2024-06")
    flatten_export(source, tmp_path / "given" / "flat.csv")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "run.2024-06-marks.csv", "run.2024-06-marks.parquet", "run.2024-06.csv", "run.2024-06.parquet"]
    assert sorted(p.name for p in (tmp_path / "given").iterdir()) == [
        "flat-marks.csv", "flat-marks.parquet", "flat.csv", "flat.parquet"]

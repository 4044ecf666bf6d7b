"""zooflow's flattened tables against panoptes-aggregation's extracts, one classification at a time.

``Comparison.run()`` walks every extract ``tests/support/reference_extract.py`` printed for one export and
checks zooflow's tidy row (answers, choices, sub-answers, text, slider, dropdown) or marks (per tool and
frame, every coordinate, sub-task answers) against it. The reference's keys are slugs, so zooflow's raw
values are slugged through the reference's own ``slugify_or_null`` table (the ``slugs`` line).

Where the reference is wrong the comparison says so instead of matching it:
* ``REFERENCE_FAULTS``: the exceptions it raises on valid input; each is allowed only when the
  classification really has what triggers it, and the marks concerned must be covered by another extractor;
* gaps, counted in the summary: it reads only the first entry of a task repeated in one classification
  (checked against its own ``recursive`` extract, which zooflow must match), it does not look inside an
  old-style combo annotation (zooflow must match its extract of the lifted sub-tasks), and it drops
  polygons with no points.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# The marks table's columns, in the order the issue 18 spec gives them.
SPEC_MARK_COLUMNS = [
    "classification_id", "user_name", "subject_id", "workflow_id", "workflow_version", "created_at", "task",
    "mark_index", "frame", "tool_index", "tool_label", "shape", "x", "y", "x1", "y1", "x2", "y2", "r", "rx", "ry",
    "width", "height", "angle", "radius", "spread", "rotation", "x_center", "y_center", "displayTime", "points",
    "details"]
MARK_EXTRACTORS = ("shape_extractor", "point_extractor_by_frame", "polygon_extractor", "bezier_extractor")
TASK_TYPES = {"question_extractor": {"single", "multiple"}, "shortcut_extractor": {"shortcut"},
              "survey_extractor": {"survey"}, "text_extractor": {"text"}, "slider_extractor": {"slider"},
              "dropdown_extractor": {"dropdown", "dropdown-simple"}}
# Shapes that a mark's keys alone cannot tell apart (no workflows export, no toolType).
LOOK_ALIKE = [{"circle", "triangle"}, {"polygon", "freehandLine", "bezier"}, {"rectangle", "rotateRectangle"}]
KEY = re.compile(r"^(?P<task>.+?)_tool(?:Index)?(?P<tool>\d+)_(?P<param>.+)$")


def _v2(mark: dict) -> bool:
    return "toolIndex" in mark


# (what the reference raised, when it is a fault of the reference, why): checked on the task's source marks.
REFERENCE_FAULTS = [
    ("DeprecationWarning: point_extractor_by_frame does not support classifier v2.0",
     lambda marks: any(_v2(m) for m in marks),
     "point_extractor_by_frame refuses new front-end marks (the config machinery still picks it for points)"),
    ("KeyError: 'frame'", lambda marks: any("frame" not in m for m in marks),
     "needs `frame` on every mark once details are configured, as the config machinery always does (zooflow: 0)"),
    ("KeyError: ('", lambda marks: any(_v2(m) and m.get("details") for m in marks),
     "looks a sub-task answer up by the mark's position among its tool's marks, not by its markIndex"),
]


@dataclass
class Reference:
    version: str = ""
    shape_lut: dict = field(default_factory=dict)
    configs: dict = field(default_factory=dict)  # label -> config line
    extracts: list = field(default_factory=list)
    commands: list = field(default_factory=list)
    slugs: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, stdout: str) -> "Reference":
        out = cls()
        for text in stdout.splitlines():
            line = json.loads(text)
            kind = line["kind"]
            if kind == "reference":
                out.version, out.shape_lut = line["version"], line["shape_lut"]
            elif kind == "config":
                out.configs[line["config"]] = line
            elif kind == "extract":
                out.extracts.append(line)
            elif kind == "command":
                out.commands.append(line)
            elif kind == "slugs":
                out.slugs = line["map"]
        return out


@dataclass
class Tally:
    fixture: str
    classifications: set = field(default_factory=set)
    tasks: set = field(default_factory=set)
    marks: set = field(default_factory=set)
    extracts: int = 0
    faults: Counter = field(default_factory=Counter)
    gaps: Counter = field(default_factory=Counter)
    note: str = ""


SUMMARY: list[Tally] = []


def source_annotations(path: Path) -> dict[str, list[dict]]:
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8", newline="") as handle:
        return {r["classification_id"]: json.loads(r["annotations"]) for r in csv.DictReader(handle)}


def is_pfe_combo(annotation: dict) -> bool:
    value = annotation.get("value")
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, dict) and "task" in v and "value" in v for v in value)


def lift(annotations: list[dict]) -> list[dict]:
    return [sub for a in annotations for sub in (a["value"] if is_pfe_combo(a) else [a])]


def empty(extract) -> bool:
    if isinstance(extract, list):
        return not extract
    frames = [v for k, v in extract.items() if k.startswith("frame")]
    if frames:
        return all(set(frame) <= {"gold_standard"} for frame in frames)
    return not (set(extract) - {"classifier_version"}) or extract == {"value": []}


def _na(value) -> bool:
    return value is None or (not isinstance(value, (list, dict)) and pd.isna(value))


def _number(value):
    return [_number(v) for v in value] if isinstance(value, list) else float(value)


class Comparison:
    def __init__(self, reference: Reference, tidy: pd.DataFrame, marks: pd.DataFrame, source: dict[str, list],
                 tally: Tally, declared: bool) -> None:
        self.ref, self.tally, self.declared = reference, tally, declared
        self.source = source
        self.numeric = {p for params in reference.shape_lut.values() for p in params} | {"pathX", "pathY"}
        tidy, marks = (t.assign(classification_id=t.classification_id.astype(str)) for t in (tidy, marks))
        self.rows = {key: group for key, group in tidy.groupby(["classification_id", "task"])}
        self.marks = {key: group.sort_values("mark_index") for key, group in marks.groupby(["classification_id", "task"])}
        self.covered: set = set()
        self.problems: list[str] = []

    # -- the reference's slugs ------------------------------------------------------------------
    def slug(self, value) -> str:
        if value is None or isinstance(value, (bool, int)):
            return str(value)
        text = str(value)
        if text in self.ref.slugs:
            return self.ref.slugs[text]
        assert re.fullmatch(r"[a-z0-9-]*", text), f"{text!r} is in no annotation of the export (zooflow made it up?)"
        return text

    def counts(self, values) -> dict:
        return dict(Counter(self.slug(v) for v in (values if isinstance(values, list) else [values])))

    # -- zooflow's side ---------------------------------------------------------------------------
    def row(self, cid: str, task: str):
        found = self.rows.get((cid, task))
        if found is None:
            return None
        assert len(found) == 1, f"zooflow has {len(found)} rows for classification {cid} task {task}"
        return found.iloc[0]

    def source_marks(self, cid: str, task: str) -> list[dict]:
        return [m for a in lift(self.source[cid]) if a["task"] == task and isinstance(a["value"], list)
                for m in a["value"]]

    # -- the walk ---------------------------------------------------------------------------------
    def run(self) -> None:
        groups = defaultdict(dict)
        for line in self.ref.extracts:
            groups[(line["classification_id"], line["config"], line["extractor"], line["index"])][line["lifted"]] = line
        for (cid, *_), pair in groups.items():
            line = pair[False]
            try:
                if True in pair and pair[True]["extract"] != line["extract"]:
                    assert line["error"] is None and empty(line["extract"]), (cid, line)
                    self.tally.gaps["does not look inside old-style combo annotations"] += 1
                    line = pair[True]
                    self.check_combo(cid, line["keywords"]["task"])
                if line["error"]:
                    self.fault(cid, line)
                    continue
                self.tally.extracts += 1
                self.tally.classifications.add(cid)
                self.compare(cid, line, pair)
            except AssertionError as exc:  # go on: one failure lists every disagreement
                self.problems.append(f"classification {cid}, {line['extractor']} {line['keywords']}: {exc}")
        assert not self.problems, (f"{len(self.problems)} extracts disagree with zooflow:\n"
                                   + "\n".join(p[:600] for p in self.problems[:40]))
        self.check_commands()
        self.check_mark_coverage()

    def fault(self, cid: str, line: dict) -> None:
        marks = self.source_marks(cid, line["keywords"].get("task", ""))
        for start, applies, why in REFERENCE_FAULTS:
            if line["error"].startswith(start) and applies(marks):
                self.tally.faults[f"{line['extractor']}: {why}"] += 1
                return
        raise AssertionError(f"the reference failed on classification {cid} for a reason not known to be its own: "
                             f"{line['extractor']} {line['keywords']}: {line['error']}")

    def check_combo(self, cid: str, task: str) -> None:
        combo = next(a["task"] for a in self.source[cid] if is_pfe_combo(a) and any(s["task"] == task for s in a["value"]))
        row = self.row(cid, task)
        assert row is not None and row.combo_task == combo, f"{cid} {task}: zooflow's combo_task is not {combo}"

    def compare(self, cid: str, line: dict, pair: dict) -> None:
        name, keywords = line["extractor"], line["keywords"]
        family = next((f for f in MARK_EXTRACTORS if name.startswith(f)), name)
        if family in MARK_EXTRACTORS:
            return self.compare_marks(cid, family, keywords, line["extract"])
        task = keywords["task"]
        entries = [a for a in lift(self.source[cid]) if a["task"] == task]
        extract = line["extract"]
        if keywords.get("recursive"):
            extract = [] if not extract else ([e for part in extract for e in part] if family == "survey_extractor"
                                              else extract[0] if len(extract) == 1 else None)
            assert extract is not None, f"a recursive {family} over {len(entries)} entries is not compared"
        elif len(entries) > 1:
            sibling = next((l for l in self.ref.extracts if l["classification_id"] == cid and l["extractor"] == name
                            and l["keywords"].get("recursive") and l["keywords"]["task"] == task), None)
            assert sibling, f"{cid} repeats {task}: give {name} a recursive entry too"
            assert extract == sibling["extract"][0], "the reference's extract is not its first entry's"
            self.tally.gaps[f"{name} reads only the first entry of a repeated task"] += 1
            return
        row = self.row(cid, task)
        if row is None:
            assert empty(extract), f"zooflow has no row for classification {cid} task {task}; the reference: {extract}"
            return
        if self.declared:
            assert row.task_type in TASK_TYPES[family], (cid, task, row.task_type, family)
        getattr(self, family)(row, extract, line)
        self.tally.tasks.add((cid, task))

    # -- per task type ----------------------------------------------------------------------------
    def question_extractor(self, row, extract, line) -> None:
        values = json.loads(row.answers) if not _na(row.answers) else ([] if _na(row.value) else [row.value])
        assert self.counts(values) == extract, f"zooflow's answers {values}, the reference's {extract}"

    shortcut_extractor = question_extractor

    def survey_extractor(self, row, extract, line) -> None:
        mine = []
        for pick in json.loads(row.choice_answers) if not _na(row.choice_answers) else []:
            item = {"choice": self.slug(pick["choice"])}
            for question, answer in (pick.get("answers") or {}).items():
                item[f"answers_{self.slug(question)}"] = self.counts(answer)
            mine.append(item)
        assert mine == extract, (row.classification_id, row.task, mine, extract)
        assert (0 if _na(row.choices_count) else int(row.choices_count)) == len(extract)
        if extract:
            assert [self.slug(c) for c in row.choice.split(";")] == [e["choice"] for e in extract]

    def dropdown_extractor(self, row, extract, line) -> None:
        values = [] if _na(row.answers) else json.loads(row.answers)
        assert {"value": [self.counts(v) for v in values]} == extract, (
            f"zooflow's answers {values} ({row.task_type}), the reference's {extract}")
        labels = self.ref.configs[line["config"]].get("labels") or {}
        names = {h: text for key, table in labels.items() if key.startswith(f"{row.task}.selects.")
                 and isinstance(table, dict) for h, text in table.items()}
        if names and values and all(v in names for v in values):
            assert row.value_labels == ";".join(names[v] for v in values), (row.classification_id, row.value_labels)

    def text_extractor(self, row, extract, line) -> None:
        text = extract["text"]
        assert (None if _na(row.value) else row.value) == text, (row.classification_id, row.task, row.value, text)
        assert bool(row.text_empty) == (text is None or not str(text).strip())

    def slider_extractor(self, row, extract, line) -> None:
        assert str(row.value) == str(extract["slider_value"]), (row.classification_id, row.value, extract)

    # -- marks ------------------------------------------------------------------------------------
    def compare_marks(self, cid: str, family: str, keywords: dict, extract: dict) -> None:
        task, tools = keywords["task"], keywords.get("tools")
        assert tools is not None, "give every mark extractor `tools`: zooflow anchors lines and polygons at x, y"
        reference = defaultdict(list)
        for frame, values in extract.items():
            for key, value in (values.items() if frame.startswith("frame") else ()):
                if key != "gold_standard":
                    found = KEY.match(key)
                    assert found and found["task"] == task, key
                    numeric = found["param"] in self.numeric
                    reference[(int(frame[5:]), int(found["tool"]), found["param"])] = _number(value) if numeric else value
        group = self.marks.get((cid, task))
        source = self.source_marks(cid, task)
        row = self.row(cid, task)
        if group is None:
            assert not reference, f"zooflow has no marks for classification {cid} task {task}; the reference has"
            if row is not None:
                assert int(row.marks_count or 0) == 0
                self.tally.tasks.add((cid, task))
            return
        assert row is not None and int(row.marks_count) == len(group) == len(source), (cid, task)
        assert sum(json.loads(row.marks_per_tool).values()) == len(group)
        expected = defaultdict(list)
        for mark in group.itertuples():
            if int(mark.tool_index) not in tools:
                continue
            where = (int(mark.frame), int(mark.tool_index))
            original = source[int(mark.mark_index)]
            compared = self.expect(family, keywords, mark, where, expected)
            if compared:
                self.check_shape(family, keywords, mark, original)
                self.details(keywords, task, mark, where, original, expected)
                self.tally.marks.add((cid, task, int(mark.mark_index)))
                self.covered.add((cid, task, int(mark.mark_index)))
        if family == "bezier_extractor":
            return self.bezier(cid, reference, expected)
        assert dict(reference) == dict(expected), f"classification {cid} task {task} {keywords}"
        self.tally.tasks.add((cid, task))

    def expect(self, family, keywords, mark, where, expected) -> bool:
        if family in ("polygon_extractor", "bezier_extractor"):
            points = json.loads(mark.points) if not _na(mark.points) else []
            if family == "polygon_extractor" and not points:
                self.tally.gaps["polygon_extractor drops polygons with no points"] += 1
                self.covered.add((mark.classification_id, mark.task, int(mark.mark_index)))
                return False
            if family == "bezier_extractor" and len(points) < 3:
                return False
            expected[(*where, "pathX")].append([float(p[0]) for p in points])
            expected[(*where, "pathY")].append([float(p[1]) for p in points])
            assert [mark.x, mark.y] == points[0], f"a polygon's x, y are its first point: {mark}"
            return True
        params = self.ref.shape_lut[keywords["shape"]] if family == "shape_extractor" else ["x", "y"]
        if any(_na(getattr(mark, p)) for p in params):
            return False
        for p in params:
            expected[(*where, p)].append(float(getattr(mark, p)))
        if "x1" in params:
            assert (mark.x, mark.y) == (mark.x1, mark.y1), f"a line's x, y are its x1, y1: {mark}"
        return True

    def check_shape(self, family, keywords, mark, original) -> None:
        wanted = {"shape_extractor": {keywords.get("shape")}, "point_extractor_by_frame": {"point"},
                  "polygon_extractor": {"polygon", "freehandLine", "bezier"}, "bezier_extractor": {"bezier"}}[family]
        if original.get("toolType"):
            assert mark.shape == original["toolType"], (mark.classification_id, mark.mark_index, mark.shape)
        elif self.declared:
            assert mark.shape in wanted, (mark.classification_id, mark.mark_index, mark.shape, wanted)
        else:  # inferred from the mark's keys
            assert mark.shape in set().union(wanted, *(g for g in LOOK_ALIKE if g & wanted)), (mark.shape, wanted)

    def details(self, keywords, task, mark, where, original, expected) -> None:
        functions = keywords.get("details") or {}
        answers = json.loads(mark.details) if not _na(mark.details) else []
        if _v2(original):
            for detail in answers:
                number = detail["task"].split(".")[-1]
                function = functions.get(f"{task}_toolIndex{int(mark.tool_index)}_subtask{number}")
                if function:
                    assert "value" in detail, (
                        f"zooflow's details for classification {mark.classification_id} mark {mark.mark_index} lack the "
                        "sub-task answer: the new front-end writes it as an annotation of its own with markIndex")
                    expected[(*where, f"subtask{number}")].append(self.detail(function, detail["value"]))
        elif f"{task}_tool{int(mark.tool_index)}" in functions:
            names = functions[f"{task}_tool{int(mark.tool_index)}"]
            expected[(*where, "details")].append([self.detail(names[i], d["value"]) for i, d in enumerate(answers)])

    def detail(self, function, value):
        if function in ("question_extractor", "shortcut_extractor"):
            return self.counts(value)
        if function == "dropdown_extractor":
            return {"value": [self.counts(v["value"]) for v in value]}
        return "No extractor for this subtask type"

    def bezier(self, cid, reference, expected) -> None:
        """The reference returns the curve, not its control points: the curve's ends must be them."""
        assert {k[:2] for k in reference} == {k[:2] for k in expected}, cid
        for key, curves in expected.items():
            assert len(reference[key]) == len(curves), (cid, key)
            for curve, points in zip(reference[key], curves):
                closed = points + points[:1] if len(points) % 2 == 0 else points
                ends = [curve[0]] + [curve[10 * k + 9] for k in range(len(closed) // 2)]
                assert ends == closed[0::2], (cid, key, ends, closed)

    # -- the file as a whole ----------------------------------------------------------------------
    def check_commands(self) -> None:
        """extract_csv wrote, per extractor, the rows of the extracts printed here that did not fail."""
        for command in self.ref.commands:
            if command["error"] is not None:
                continue
            made = Counter()
            for line in self.ref.extracts:
                if line["config"] == command["config"] and not line["lifted"] and line["error"] is None:
                    made[line["extractor"]] += len(line["extract"]) if isinstance(line["extract"], list) else 1
            assert {k: v for k, v in command["rows"].items() if v} == {k: v for k, v in made.items() if v}

    def check_mark_coverage(self) -> None:
        """Every mark of a task a mark extractor looked at was compared by one that did not fail."""
        tasks = {(l["classification_id"], l["keywords"]["task"]) for l in self.ref.extracts
                 if l["extractor"].startswith(MARK_EXTRACTORS)}
        for key in sorted(tasks & set(self.marks)):
            missed = set(self.marks[key].mark_index.astype(int)) - {m for *k, m in self.covered if tuple(k) == key}
            assert not missed, f"marks {sorted(missed)} of classification {key[0]} task {key[1]} were compared with nothing"

"""zooflow's flatten against Zooniverse's own extractors (panoptes-aggregation 5.3.1), issue 18 point 4.

Every classification export under tests/fixtures/exports/ (the real samples and synthetic_tasks.csv, which
covers each task type and drawing shape in both front-ends' formats) goes through zooflow's
``flatten_export`` here and through the reference's extractors in their own environment
(tests/support/reference.py builds .venv-reference when missing; it is never skipped). Per classification
the answers, survey choices and sub-answers, dropdown, text and slider values, the marks per tool and
frame, every mark's coordinates and sub-task answers must agree (tests/exports/reference_compare.py).
Where the reference is wrong (it fails on valid input, reads only the first entry of a repeated task,
ignores old-style combos, crashes on a header-only file) the test asserts that and says so instead of
matching it. The counts compared per fixture are printed at the end of the run.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from export_support import FIXTURES, read_bytes, records
from reference_compare import SPEC_MARK_COLUMNS, SUMMARY, Comparison, Reference, Tally, source_annotations

from support.reference import ReferenceUnavailable, run_reference
from zooflow.exports.flatten import flatten_export

ALL_VERSIONS = {"min": "1.1"}


@dataclass(frozen=True)
class Case:
    workflows: str | None = None  # a workflows export: the reference's config machinery makes the config
    config: dict | None = None  # else (or as well) extractors chosen by hand, in the reference's config format
    # `recursive` entries (one extract per entry of a repeated task), in a config of their own: next to plain
    # entries of the same extractor, the reference's extract command fails writing them (AttributeError)
    recursive: dict | None = None


# Hand configurations name the tools per shape from the marks' labels (dd_ap) or toolType (cat project).
CASES = {
    "afc_cat-project-classifications.csv": Case(config={
        "workflow_id": 28090, "workflow_version": ALL_VERSIONS,
        "extractor_config": {"polygon_extractor": [{"task": "T0", "tools": [0, 1]}]}}),  # freehandLine, polygon
    "afc_batchagg_cls_export.csv": Case(workflows="afc_batchagg_wf_export.csv"),
    "dd_wildcam_gorongosa_sample.csv": Case(config={
        "workflow_id": 2649, "workflow_version": ALL_VERSIONS,
        "extractor_config": {"survey_extractor": [{"task": "T1"}]}}, recursive={
        # one classification repeats T1; `recursive` gives every entry (without `no_version` it raises TypeError)
        "workflow_id": 2649, "workflow_version": ALL_VERSIONS,
        "extractor_config": {"survey_extractor": [{"task": "T1", "recursive": True, "no_version": True}]}}),
    "dd_ap-aas229-test-classifications.csv": Case(config={
        "workflow_id": 3149, "workflow_version": ALL_VERSIONS, "extractor_config": {
            # Cluster, Background Galaxy, Other Object (with a question per mark), Ellipse, Bezier, Line, Polygon
            "shape_extractor_circle": [{"task": "T0", "shape": "circle", "tools": [0, 1, 2],
                                        "details": {"T0_tool2": ["question_extractor"]}}],
            "shape_extractor_ellipse": [{"task": "T0", "shape": "ellipse", "tools": [3]}],
            "shape_extractor_line": [{"task": "T0", "shape": "line", "tools": [5]}],
            "polygon_extractor": [{"task": "T0", "tools": [4, 6]}],  # the Bézier curve's control points as well
            "bezier_extractor": [{"task": "T0", "tools": [4]}],
            "question_extractor": [{"task": "T1"}]}}),
    "synthetic_tasks.csv": Case(workflows="synthetic_tasks_workflows.csv", config={
        "workflow_id": 90001, "workflow_version": "3.7", "extractor_config": {
            # new front-end points (point_extractor_by_frame refuses them), with and without their sub-task
            "shape_extractor_point": [
                {"task": "T10", "shape": "point", "tools": [0], "details": {"T10_toolIndex0_subtask0": "question_extractor"}},
                {"task": "T10", "shape": "point", "tools": [0]}, {"task": "T9", "shape": "point", "tools": [0]}],
            "shape_extractor_circle": [{"task": "T10", "shape": "circle", "tools": [1]}],  # marks without frame
            "polygon_extractor": [{"task": "T10", "tools": [13]}],  # the Bézier curves' control points
            "dropdown_extractor": [{"task": "T11"}]}},  # dropdown-simple: the machinery has no extractor for it
        recursive={"workflow_id": 90001, "workflow_version": "3.7", "extractor_config": {
            "survey_extractor": [{"task": "T6", "recursive": True, "no_version": True}]}}),
}
HEADER_ONLY = "header-only.csv"
HEADER_ONLY_CONFIG = {"workflow_id": 10, "workflow_version": "16.55",
                      "extractor_config": {"question_extractor": [{"task": "T0"}, {"task": "T1"}]}}


def _reference_args(name: str, case: Case, source: Path, scratch: Path) -> list[str]:
    args = [str(source)]
    for suffix, config in (("config", case.config), ("recursive", case.recursive)):
        if config:
            path = scratch / f"{Path(name).stem}-{suffix}.json"
            path.write_text(json.dumps(config), encoding="utf-8")
            args += ["--config", str(path)]
    if case.workflows:
        args += ["--workflows", str(FIXTURES / case.workflows)]
    return args


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Reference]:
    """The reference's output for every case, from one run of reference_extract.py (its start-up takes seconds)."""
    scratch = tmp_path_factory.mktemp("reference")
    header_only = scratch / HEADER_ONLY
    header_only.write_bytes(records(read_bytes("afc_batchagg_cls_export.csv"))[0])
    jobs = {name: _reference_args(name, case, FIXTURES / name, scratch) for name, case in CASES.items()}
    jobs[HEADER_ONLY] = _reference_args(HEADER_ONLY, Case("afc_batchagg_wf_export.csv", HEADER_ONLY_CONFIG),
                                        header_only, scratch)
    (scratch / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    try:
        result = run_reference(["--jobs", str(scratch / "jobs.json")])
    except ReferenceUnavailable as exc:
        pytest.fail(f"panoptes-aggregation's environment could not be built, so zooflow cannot be checked against it:\n{exc}")
    assert result.returncode == 0, f"reference_extract.py failed:\n{result.stderr[-3000:]}"
    lines = defaultdict(list)
    for line in result.stdout.splitlines():
        lines[json.loads(line)["job"]].append(line)
    assert set(lines) == set(jobs)
    return {name: Reference.parse("\n".join(found)) for name, found in lines.items()}


def _flatten(tmp_path: Path, source: Path, workflows: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path / "flat" / source.stem
    flatten_export(source, out, workflows_export=FIXTURES / workflows if workflows else None)
    marks_csv = pd.read_csv(out.with_name(f"{source.stem}-marks.csv"), dtype=str, keep_default_na=False)
    marks = pd.read_parquet(out.with_name(f"{source.stem}-marks.parquet"))
    assert list(marks_csv.columns) == list(marks.columns) == SPEC_MARK_COLUMNS
    return pd.read_parquet(out.with_name(f"{source.stem}.parquet")), marks


def test_every_classification_export_is_compared():
    exports = set()
    for path in FIXTURES.glob("*.csv"):
        with open(path, encoding="utf-8", newline="") as handle:
            if "annotations" in next(csv.reader(handle)):
                exports.add(path.name)
    assert exports == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_flatten_agrees_with_the_reference(name, reference, tmp_path):
    ref = reference[name]
    assert ref.version == "5.3.1"
    assert all(c["error"] is None for c in ref.configs.values()), ref.configs
    tally = Tally(name)
    assert all(c["error"] is None for c in ref.commands), ref.commands  # its own extract command accepts the file
    tidy, marks = _flatten(tmp_path, FIXTURES / name, CASES[name].workflows)
    Comparison(ref, tidy, marks, source_annotations(FIXTURES / name), tally, bool(CASES[name].workflows)).run()
    source = source_annotations(FIXTURES / name)
    assert tally.classifications == set(source), "every classification was compared"
    SUMMARY.append(tally)
    print(f"\n{name}: {len(tally.classifications)} classifications, {len(tally.tasks)} tasks, "
          f"{len(tally.marks)} marks compared; reference faults {dict(tally.faults)}; gaps {dict(tally.gaps)}")


def test_synthetic_export_matches_its_generator():
    spec = importlib.util.spec_from_file_location("make_synthetic_tasks", FIXTURES / "make_synthetic_tasks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (FIXTURES / "synthetic_tasks.csv").read_text(encoding="utf-8") == generator.classification_csv()
    assert (FIXTURES / "synthetic_tasks_workflows.csv").read_text(encoding="utf-8") == generator.workflows_csv()


def test_header_only_export(reference, tmp_path):
    """The reference's extract command crashes on an export with no rows; zooflow writes empty tables."""
    ref = reference[HEADER_ONLY]
    # Its config machinery makes no configuration (it configures per workflow version found in the rows) ...
    assert [c["source"] for c in ref.configs.values()] == ["hand"] and not ref.extracts
    # ... and extract_csv, given one, fails an assertion instead of writing empty extracts.
    [command] = ref.commands
    assert command["error"].startswith(
        "AssertionError: There are no classifications matching the configured workflow ID"), command
    source = tmp_path / HEADER_ONLY
    source.write_bytes(records(read_bytes("afc_batchagg_cls_export.csv"))[0])
    tidy, marks = _flatten(tmp_path, source, "afc_batchagg_wf_export.csv")
    assert len(tidy) == 0 and len(marks) == 0
    SUMMARY.append(Tally(HEADER_ONLY, note="reference extract_csv: AssertionError (no classifications)"))

"""The export report, built from real exports: four public Panoptes samples sliced and flattened by the
library, and the demo sandbox's export through the real exports DAG. Each page is read back: its charts
decoded and checked for drawn marks, its numbers compared with the rows on disk and in the source."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from report_support import Image, broken_links, chart_problems, read_page
from support.sandboxes import demo_sandbox_with

from zooflow.airflow_env import connection_env
from zooflow.exports.flatten import flatten_export
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing import slice_export
from zooflow.paths import DataRoot
from zooflow.reports.export_report import write_export_report
from zooflow.sandbox import seed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exports"
SAMPLES = ["afc_cat-project-classifications.csv", "afc_batchagg_cls_export.csv", "dd_wildcam_gorongosa_sample.csv",
           "dd_ap-aas229-test-classifications.csv"]
PROJECT = seed.DEMO_PROJECT_SLUG
MARKUP_NAME = "Cats & <b>dogs</b>"  # a workflow name that must show as text, not markup


def sample_export(path: Path) -> list[dict[str, str]]:
    """The four samples as one export (they share the 14-column layout); the Superluminous Supernovae
    workflow renamed to ``MARKUP_NAME``. Returns the rows as written."""
    rows = []
    for name in SAMPLES:
        with open(FIXTURES / name, encoding="utf-8", newline="") as handle:
            rows += list(csv.DictReader(handle))
    for row in rows:
        if row["workflow_id"] == "10":
            row["workflow_name"] = MARKUP_NAME
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return rows


def slice_and_flatten(source: Path, root: DataRoot, spec: SliceSpec):
    """What the DAG's slice and flatten steps do, by the library."""
    sliced = slice_export(source, root.slices_dir(PROJECT, "classifications"), spec)
    flattened = {}
    for day in sliced.partitions:
        folder = root.slices_dir(PROJECT, "classifications") / f"created_date={day}"
        for part in sorted(folder.glob("part-*.csv")):
            flattened[f"{day}/{part.stem}"] = flatten_export(part, root.flat_dir(PROJECT) / f"created_date={day}" / part.stem).to_dict()
    return sliced, flattened


@pytest.mark.parametrize("since, unit", [("2016-12-17", "month"), ("2025-01-01", "day")])
def test_report_charts_the_days_and_workflows_the_slice_kept(tmp_path, since, unit) -> None:
    source = tmp_path / "classifications-export.csv"
    rows = sample_export(source)
    root = DataRoot(tmp_path / "data")
    sliced, flattened = slice_and_flatten(source, root, SliceSpec.from_mapping({"since": since}))
    files = write_export_report(root, PROJECT, "manual__2026-11-21T09:00:00+00:00", sliced, flattened,
                                export_bytes=source.stat().st_size)

    # What the slice should have kept, from the source rows: on or after `since`, not gold standard.
    kept = [r for r in rows if r["created_at"][:10] >= since and not r["gold_standard"]]
    page = read_page(files.html)
    per_day = {day: int(count) for day, count, *_ in page.table("day (UTC)")}
    assert per_day == Counter(r["created_at"][:10] for r in kept)
    assert sum(per_day.values()) == sliced.rows_kept == len(kept) > 0
    per_workflow = {workflow: int(count) for workflow, _name, count in page.table("workflow id")}
    assert per_workflow == Counter(r["workflow_id"] for r in kept)
    figures = page.figures()
    assert figures["Classifications kept"] == str(len(kept))
    assert figures["Rows outside the slice"] == str(len(rows) - len(kept))
    assert figures["Export size"].endswith(f"({source.stat().st_size:,} bytes)")
    assert figures["Task rows (flattened)"] == str(sum(f["rows_written"] for f in flattened.values()))

    charts = {image.alt: image for image in page.images}
    assert set(charts) == {f"Bar chart of classifications per {unit}", "Bar chart of classifications per workflow"}
    for chart in charts.values():
        assert chart_problems(chart) == []
    assert broken_links(page, files.html) == [] and len(page.links) == 6 * len(per_day)  # slice, flat and marks, CSV and Parquet

    summary = json.loads(files.json.read_text())
    assert summary["days"] == per_day and summary["rows_kept"] == len(kept)
    assert {w: v["classifications"] for w, v in summary["workflows"].items()} == per_workflow
    assert summary["export_bytes"] == source.stat().st_size
    assert root.root / summary["html"] == files.html
    assert datetime.fromisoformat(summary["generated_at"]).utcoffset() == timedelta(0)


def test_text_from_the_export_is_shown_as_text(tmp_path) -> None:
    source = tmp_path / "classifications-export.csv"
    sample_export(source)
    root = DataRoot(tmp_path / "data")
    sliced, flattened = slice_and_flatten(source, root, SliceSpec.from_mapping({"since": "2024-01-01"}))
    page = read_page(write_export_report(root, PROJECT, "run", sliced, flattened).html)
    assert [name for workflow, name, _ in page.table("workflow id") if workflow == "10"] == [MARKUP_NAME]
    assert "b" not in page.tags and page.tags.count("script") == 0
    assert page.figures()["Export size"] == "unknown"  # not given: said so, not guessed


def test_a_run_that_kept_nothing_says_so(tmp_path) -> None:
    source = tmp_path / "classifications-export.csv"
    sample_export(source)
    root = DataRoot(tmp_path / "data")
    sliced, flattened = slice_and_flatten(source, root, SliceSpec.from_mapping({"workflow_ids": [1]}))
    page = read_page(write_export_report(root, PROJECT, "run", sliced, flattened).html)
    assert page.images == [] and page.figures()["Classifications kept"] == "0"
    assert any("kept no classifications" in note for note in page.notes)
    assert page.table("test") == [["workflow_ids", str(sliced.rows_read)]]


def test_the_chart_check_fails_an_empty_chart() -> None:
    """The check the tests above rely on: axes with nothing plotted, or a flat image, are reported."""
    figure = Figure(figsize=(8, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    figure.add_subplot().set_title("Classifications per day (UTC)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    empty_axes = Image("empty axes", imread(io.BytesIO(buffer.getvalue()), format="png"))
    assert any("no coloured marks" in p for p in chart_problems(empty_axes))
    flat = Image("flat", empty_axes.pixels * 0 + 1)
    assert any("flat colour" in p for p in chart_problems(flat))


# -- through the DAG ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with demo_sandbox_with(tmp_path_factory.mktemp("report-sandbox"), subjects=12) as sb:
        yield sb


def test_the_exports_dag_writes_the_report_of_its_run(airflow_db, dags_folder, sandbox, data_root, monkeypatch) -> None:
    for name, value in connection_env(sandbox.config).items():
        monkeypatch.setenv(name, value)
    sandbox.admin.run_volunteers(30, seed=3)
    dag = DagBag(dag_folder=str(dags_folder / "zooniverse_exports.py")).dags["zooniverse_exports"]
    run = dag.test(run_conf={"project": PROJECT, "export_types": ["classifications"], "poll_seconds": 1,
                             "wait_timeout_minutes": 0.5})
    assert run.state == "success"
    results = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    sliced, download = results["classifications.slice"], results["classifications.download"]
    report = Path(results["classifications.flatten"]["report"])
    assert report.parent == DataRoot(data_root).reports_dir(PROJECT, "export-report")

    page = read_page(report)
    today = sandbox.admin.now().date().isoformat()
    assert page.table("day (UTC)")[0][:3] == [today, "30", "30"]  # 30 classifications of one question task each
    assert sliced["rows_kept"] == 30
    assert page.figures()["Export size"].endswith(f"({download['bytes']:,} bytes)")
    (chart, by_workflow) = page.images
    assert chart.alt == "Bar chart of classifications per day"
    assert chart_problems(chart) == [] and chart_problems(by_workflow) == []
    assert broken_links(page, report) == []
    assert json.loads(report.with_suffix(".json").read_text())["days"] == {today: 30}

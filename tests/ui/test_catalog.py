"""``zooflow.catalog`` on a data root written by the library itself, against the sandbox.

The Zooniverse page is only as true as this listing, and the listing reads files other code writes
(``latest.json``, slice reports, ``state.json``). So the data root here is made by the same calls
the DAGs make: a requested, a half-downloaded and a downloaded-and-sliced export, an uploaded
active-learning round and a chosen one. The HTML reports (another part of zooflow) are placed where
they will be written, to check that they are linked when present and not invented when absent.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from panoptes_client import Project, Workflow

from zooflow.al.demo_data import write_digits_pool
from zooflow.al.round import RoundConfig, select_round, upload_round
from zooflow.al.state import RoundState
from zooflow.catalog import (
    AL_DAG,
    build_catalog,
    format_ago,
    format_size,
    render_catalog,
    render_run,
    resolve_file,
    run_summary,
)
from zooflow.errors import PanoptesError
from zooflow.exports.download import download_export
from zooflow.exports.export_requests import ExportTarget, describe, export_complete, parse_time, request_export
from zooflow.exports.slice_spec import SliceSpec
from zooflow.exports.slicing import slice_export
from zooflow.files import atomic_write_json
from zooflow.panoptes import connect
from zooflow.paths import DataRoot, safe_name
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config
from zooflow.workflows import ensure_question_workflow

SLUG = seed.DEMO_PROJECT_SLUG
EXPORT_RUN = "manual__2026-03-01T10:00:00.123456+00:00"
FIRST_ROUND_RUN = "asset_triggered__2026-03-01T10:05:00+00:00"
SECOND_ROUND_RUN = "manual__2026-03-02T08:00:00+00:00"
ODD_SET_NAME = "round <2> & \"friends\""


def _ready(target: ExportTarget, requested_at: str) -> None:
    deadline = time.monotonic() + 30
    while not export_complete(describe(target), parse_time(requested_at)):
        assert time.monotonic() < deadline, f"the {target} never became ready"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def built(demo_sandbox, tmp_path_factory) -> dict:
    """A data root as a day of the labelling loop leaves it; returns what was made, for the checks."""
    folder = tmp_path_factory.mktemp("catalog")
    root = DataRoot(folder / "data")
    config = demo_user_config(demo_sandbox.endpoint)
    demo_sandbox.admin.configure(export_delay=0.2, drop_download_after_bytes=None)
    demo_sandbox.admin.advance_clock(hours=25)  # other modules may have asked for these exports within 24 hours
    made: dict = {"root": root}
    with connect(config):
        add_demo_subjects(6, start=5000)
        assert demo_sandbox.admin.run_volunteers(12, seed=31) > 0
        project = Project.find(slug=SLUG)
        project_id = int(project.id)

        classifications = ExportTarget("project", project_id, "classifications")
        exports_dir = root.exports_dir(SLUG, "classifications")
        outcome = request_export(classifications, exports_dir / "last_request.json")
        _ready(classifications, outcome.requested_at)
        made["download"] = download_export(classifications, exports_dir, requested_at=outcome.requested_at)

        subjects = ExportTarget("project", project_id, "subjects")
        subjects_dir = root.exports_dir(SLUG, "subjects")
        outcome = request_export(subjects, subjects_dir / "last_request.json")
        _ready(subjects, outcome.requested_at)
        demo_sandbox.admin.configure(drop_download_after_bytes=40, drop_download_count=10)
        with pytest.raises(PanoptesError, match="did not complete"):
            download_export(subjects, subjects_dir, requested_at=outcome.requested_at, max_attempts=1)
        demo_sandbox.admin.configure(drop_download_after_bytes=None)

        workflow, _ = ensure_question_workflow(project, "Catalog digits", "Which digit is this?",
                                               [str(d) for d in range(10)], retirement_count=3)
        al_config = folder / "al.yaml"
        al_config.write_text(yaml.safe_dump({"pool": str(write_digits_pool(folder)), "workflow_id": int(workflow.id),
                                             "k": 3, "m": 0}))
        round_config = RoundConfig.load(al_config)
        state = RoundState(root.al_dir(SLUG, workflow.id))
        download = Path(made["download"].path)
        first = select_round(round_config, state, [download], run_id=FIRST_ROUND_RUN)
        made["upload"] = upload_round(first, state, project, Workflow.find(workflow.id))
        made["second"] = select_round(round_config, state, [download], run_id=SECOND_ROUND_RUN, set_name=ODD_SET_NAME)
        made["workflow_id"] = str(workflow.id)

    report = slice_export(download, root.slices_dir(SLUG, "classifications"), SliceSpec())
    # What SliceExportOperator writes for its run.
    atomic_write_json(root.report(SLUG, "slice-classifications", EXPORT_RUN),
                      report.to_dict() | {"project": SLUG, "export_type": "classifications"})
    made["slice"] = report
    # The HTML reports' own code writes these; here they only need to exist where it puts them.
    export_report = root.reports_dir(SLUG, "export-report")
    export_report.mkdir(parents=True)
    (export_report / f"{safe_name(EXPORT_RUN)}.html").write_text("<!doctype html><p>export report</p>")
    (export_report / f"{safe_name(EXPORT_RUN)}.json").write_text(json.dumps({"export": download.name, "run_id": EXPORT_RUN}))
    round_report = root.reports_dir(SLUG, "al-round-report")
    round_report.mkdir(parents=True)
    (round_report / f"workflow-{workflow.id}-round-001.html").write_text("<!doctype html><p>round one</p>")
    return made


def _project(catalog):
    (project,) = [p for p in catalog.projects if p.folder == safe_name(SLUG)]
    return project


def test_each_export_shows_its_state_size_and_age(built) -> None:
    root, download = built["root"], built["download"]
    built_at = datetime.fromisoformat(download.updated_at)
    project = _project(build_catalog(root, now=built_at + timedelta(hours=2, minutes=5)))
    assert project.name == SLUG
    exports = {e.export_type: e for e in project.exports}
    assert set(exports) == {"classifications", "subjects"}

    sliced = exports["classifications"]
    assert sliced.state == "sliced" and sliced.owner == "project"
    assert sliced.file == Path(download.path).name
    assert sliced.bytes == Path(download.path).stat().st_size == download.bytes
    assert sliced.age == timedelta(hours=2, minutes=5) and format_ago(sliced.age) == "2 h 5 min ago"
    assert sliced.partitions == built["slice"].partitions and sliced.rows_kept == built["slice"].rows_kept > 0
    assert sliced.run_id == EXPORT_RUN, "the id as Airflow shows it, from the export report"
    assert [link.path.rsplit("/", 2)[-2:] for link in sliced.reports] == [
        ["export-report", f"{safe_name(EXPORT_RUN)}.html"], ["export-report", f"{safe_name(EXPORT_RUN)}.json"],
        ["slice-classifications", f"{safe_name(EXPORT_RUN)}.json"]]
    assert all(resolve_file(root, link.path) for link in sliced.reports)

    partial = exports["subjects"]
    assert partial.state == "downloading" and partial.file is None and partial.partial_bytes == 40
    assert partial.bytes is None and partial.age is None and partial.reports == ()


def test_a_download_whose_file_is_gone_says_so(built, tmp_path) -> None:
    source = built["root"].exports_dir(SLUG, "classifications")
    copy = DataRoot(tmp_path)
    target = copy.exports_dir(SLUG, "classifications")
    target.mkdir(parents=True)
    (target / "latest.json").write_bytes((source / "latest.json").read_bytes())
    (entry,) = _project(build_catalog(copy)).exports
    assert entry.state == "file missing" and entry.file == Path(built["download"].path).name


def test_rounds_show_their_set_picks_accuracy_and_reports(built) -> None:
    project = _project(build_catalog(built["root"]))
    rounds = {r.round: r for r in project.rounds if r.workflow_id == built["workflow_id"]}
    assert set(rounds) == {1, 2}
    first, second = rounds[1], rounds[2]
    assert first.state == "uploaded" and first.set_id == built["upload"].subject_set_id
    assert first.picked == 3 and first.subjects == len(built["upload"].subject_ids) == 3
    assert first.run_ids == (FIRST_ROUND_RUN,) and first.uploaded_at is not None
    assert [link.path.rsplit("/", 1)[1] for link in first.reports] == [f"workflow-{built['workflow_id']}-round-001.html"]
    assert second.state == "chosen, not uploaded" and second.set_id is None and second.set_name == ODD_SET_NAME
    assert second.picked == 3 and second.reports == () and second.uploaded_at is None
    assert second.labelled == built["second"].labelled and second.accuracy == built["second"].metrics["accuracy"]
    assert [r.round for r in project.rounds][:2] == [2, 1], "newest first"
    # Three labels per round are too few to hold any out: the chart the AL step drew is empty, so not linked.
    assert all(r.accuracy is None for r in rounds.values())
    assert (built["root"].al_dir(SLUG, built["workflow_id"]) / "learning_curve.png").is_file()
    assert project.learning_curves == ()


@pytest.mark.parametrize("accuracies", [[None, None], [None, 0.5], [0.5, 0.6]], ids=["no point", "one point", "two"])
def test_a_learning_curve_is_linked_only_with_two_points(accuracies, built, tmp_path) -> None:
    """Zero or one scored round draws empty axes or a lone dot with a stray legend: the page says when
    the curve will come instead of linking it."""
    source = built["root"].al_dir(SLUG, built["workflow_id"])
    copy = DataRoot(tmp_path)
    target = copy.al_dir(SLUG, built["workflow_id"])
    target.mkdir(parents=True)
    state = json.loads((source / "state.json").read_text())
    for record, accuracy in zip(state["rounds"], accuracies, strict=True):
        record["metrics"]["accuracy"] = accuracy
    (target / "state.json").write_text(json.dumps(state))
    (target / "learning_curve.png").write_bytes((source / "learning_curve.png").read_bytes())
    catalog = build_catalog(copy)
    html = render_catalog(catalog, str, data_root_label="x")
    drawn = None not in accuracies
    assert len(_project(catalog).learning_curves) == drawn
    assert ("learning_curve.png" in html) == drawn
    assert ("No learning curve yet: it is drawn once 2 rounds have held-out scores." in html) != drawn


def test_a_run_summary_holds_only_its_own_dag_outputs(built) -> None:
    root = built["root"]
    exports = run_summary(root, "zooniverse_exports", EXPORT_RUN)
    assert exports.project == SLUG and exports.run_id == EXPORT_RUN
    slices = [r for r in _project(build_catalog(root)).reports if r.kind == "slice-classifications"]
    assert [(r.name, r.run_id) for r in slices] == [(safe_name(EXPORT_RUN), EXPORT_RUN)], "named as Airflow shows it"
    assert any(line.startswith(f"classifications export {Path(built['download'].path).name} (")
               and f"{built['slice'].rows_kept} of {built['slice'].rows_read} rows kept" in line
               for line in exports.lines), exports.lines
    assert any(link.path.endswith(f"export-report/{safe_name(EXPORT_RUN)}.html") for link in exports.links)
    first = run_summary(root, AL_DAG, FIRST_ROUND_RUN)
    assert len(first.lines) == 1 and f"round 1: 3 items uploaded to subject set {built['upload'].subject_set_id}" in first.lines[0]
    assert [link.path.rsplit("/", 1)[1] for link in first.links] == [f"workflow-{built['workflow_id']}-round-001.html"]
    second = run_summary(root, AL_DAG, SECOND_ROUND_RUN)
    assert "round 2: 3 items chosen for subject set" in second.lines[0] and "not uploaded yet" in second.lines[0]
    # Same run id, another DAG: a connection check started at that second left nothing here.
    assert run_summary(root, "zooniverse_connection_check", EXPORT_RUN).lines == ()
    assert run_summary(root, "zooniverse_exports", "manual__1999-01-01T00:00:00+00:00").lines == ()
    html = render_run(run_summary(root, "zooniverse_exports", "nothing"), lambda p: f"/f/{p}")
    assert "Nothing under the data root names this run yet" in html


def test_the_page_escapes_what_it_shows_and_links_through_the_file_route(built) -> None:
    catalog = build_catalog(built["root"])
    html = render_catalog(catalog, lambda path: f"/zooniverse/files/{path}", data_root_label="/data")
    assert ODD_SET_NAME not in html and "round &lt;2&gt; &amp; &#34;friends&#34;" in html
    assert html.count('class="export"') == 2 and html.count('class="round"') >= 2
    assert 'data-export-type="classifications" data-state="sliced"' in html
    assert f'href="/zooniverse/files/projects/{safe_name(SLUG)}/reports/export-report/{safe_name(EXPORT_RUN)}.html"' in html
    assert "learning_curve.png" not in html, "an empty chart is not linked"
    assert html.count('<tr class="run" data-dag="zooniverse_active_learning">') == 2
    assert FIRST_ROUND_RUN in html and EXPORT_RUN in html


def test_only_report_files_under_projects_are_served(built, tmp_path) -> None:
    root = built["root"]
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    project_dir = root.project_dir(SLUG)
    (project_dir / "reports" / "link.json").symlink_to(outside)
    (project_dir / "reports" / ".hidden.json").write_text("{}")
    good = f"projects/{safe_name(SLUG)}/reports/slice-classifications/{safe_name(EXPORT_RUN)}.json"
    assert resolve_file(root, good) == (root.root / good).resolve()
    for bad in (f"projects/{safe_name(SLUG)}/reports/link.json", f"projects/{safe_name(SLUG)}/reports/.hidden.json",
                f"projects/{safe_name(SLUG)}/../../../{outside.name}", "../secret.json", str(outside),
                f"projects/{safe_name(SLUG)}/exports/project/classifications/{Path(built['download'].path).name}",
                f"projects/{safe_name(SLUG)}/reports/export-report/missing.html", "", "projects",
                f"projects/{safe_name(SLUG)}/reports/slice-classifications/\0.json", f"projects/\0/{'x' * 5000}.csv"):
        assert resolve_file(root, bad) is None, bad
    # The data files reports link are served: slices (CSV or Parquet) and the rounds' manifests.
    slices = sorted(root.slices_dir(SLUG, "classifications").rglob("part-*"))
    manifests = sorted(root.project_dir(SLUG).glob("al/workflow-*/round-*/manifest.csv"))
    assert slices and manifests
    for served in (slices[0], manifests[0]):
        assert resolve_file(root, served.relative_to(root.root).as_posix()) == served.resolve()


def test_an_empty_data_root_lists_nothing_and_times_must_be_utc(tmp_path) -> None:
    assert build_catalog(DataRoot(tmp_path / "never-written")).projects == ()
    with pytest.raises(ValueError, match="timezone-aware"):
        build_catalog(DataRoot(tmp_path), now=datetime(2026, 1, 1))
    assert "No project has exports" in render_catalog(build_catalog(DataRoot(tmp_path)), str, data_root_label="x")


def test_ages_and_sizes_read_the_way_people_say_them() -> None:
    assert [format_ago(timedelta(seconds=s)) for s in (5, 59, 60, 3599, 3600, 7260, 86400, 90000, -1)] == [
        "5 s ago", "59 s ago", "1 min ago", "59 min ago", "1 h ago", "2 h 1 min ago", "1 d ago", "1 d 1 h ago",
        "ahead of this machine's clock"]
    assert [format_size(n) for n in (None, 999, 1000, 1_234_567, 3_000_000_000)] == ["n/a", "999 B", "1.0 kB", "1.2 MB", "3.0 GB"]



def test_projects_the_deployment_schedules_are_listed_before_they_write_anything(tmp_path) -> None:
    root = DataRoot(tmp_path)
    catalog = build_catalog(root, expected=["lab/penguins", "lab/craters"])
    assert [(p.name, p.folder) for p in catalog.projects] == [("lab/craters", "lab__craters"),
                                                              ("lab/penguins", "lab__penguins")]
    page = render_catalog(catalog, lambda path: path, data_root_label=str(tmp_path))
    assert "lab/penguins" in page and "lab/craters" in page

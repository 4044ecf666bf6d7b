"""The active-learning round report, built from the demo digits: a round chosen by the real learner and
uploaded to a sandbox, a cold-start dry run, and rounds run by the real DAG. Each page is read back: its
charts and thumbnails decoded and checked for drawn pixels, its numbers compared with the round's own."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from panoptes_client import Project, Workflow
from report_support import broken_links, chart_problems, read_page, thumbnail_problems

from zooflow.airflow_env import connection_env
from zooflow.al.demo_data import write_digits_pool
from zooflow.al.round import RoundConfig, select_round, upload_round
from zooflow.al.state import RoundState
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.reports.round_report import write_round_report
from zooflow.sandbox import seed
from zooflow.sandbox.populate import demo_user_config
from zooflow.sandbox.process import SandboxProcess
from zooflow.workflows import ensure_question_workflow

PROJECT = seed.DEMO_PROJECT_SLUG
KNOWN = 120  # digits whose label the pool gives; the rest are for the learner to ask about
CHARTS = {"Learning curve: held-out accuracy and macro F1 against items labelled",
          "Bar chart of labelled items and picked items per class", "Confusion matrix of the held-out labels"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A sandbox with a digits workflow, and the digits pool with the first ``KNOWN`` labels kept."""
    folder = tmp_path_factory.mktemp("round-report")
    with SandboxProcess(folder / "sandbox", seed="demo") as sandbox:
        config = demo_user_config(sandbox.endpoint)
        with connect(config):
            workflow, _ = ensure_question_workflow(Project.find(slug=PROJECT), "Digits", "Which digit is this?",
                                                   [str(d) for d in range(10)], retirement_count=3)
        pool, _ = partly_labelled_pool(folder / "pool")
        yield {"sandbox": sandbox, "config": config, "workflow_id": int(workflow.id), "pool": pool, "folder": folder}


def partly_labelled_pool(folder: Path) -> tuple[Path, pd.Series]:
    """The digits pool with only the first ``KNOWN`` labels given, and every true label by id."""
    pool = write_digits_pool(folder)
    frame = pd.read_parquet(pool)
    truth = frame.set_index("id")["label"]
    frame.loc[frame.index >= KNOWN, "label"] = ""
    frame.to_parquet(pool, index=False)
    return pool, truth


def uploaded_round(world, config: RoundConfig, state: RoundState):
    selection = select_round(config, state, [])
    with connect(world["config"]):
        upload = upload_round(selection, state, Project.find(slug=PROJECT), Workflow.find(config.workflow_id))
    return selection, upload.to_dict()


def test_an_uploaded_round_shows_what_it_learned_and_chose(world, tmp_path) -> None:
    """Round 2, after the team labelled round 1's items in the pool: a learning curve with two points."""
    root = DataRoot(tmp_path / "data")
    pool, truth = partly_labelled_pool(tmp_path / "pool")
    config = RoundConfig(pool=pool, workflow_id=world["workflow_id"], label_column="label", k=6, m=1,
                         set_name_template="report-test-{round:03d}")
    state = RoundState(root.al_dir(PROJECT, config.workflow_id))
    first, first_upload = uploaded_round(world, config, state)
    lone = read_page(write_round_report(root, PROJECT, config, first, state, first_upload).html)
    assert first.metrics["accuracy"] is not None and CHARTS - {image.alt for image in lone.images} == {
        "Learning curve: held-out accuracy and macro F1 against items labelled"}, "one point is no curve"
    assert any("Only 1 round has held-out scores so far; the learning curve is drawn once 2" in n for n in lone.notes)
    frame = pd.read_parquet(pool)
    picked = frame["id"].isin([p["pool_id"] for p in first.picks])
    frame.loc[picked, "label"] = truth[frame.loc[picked, "id"]].to_numpy()
    frame.to_parquet(pool, index=False)
    selection, upload = uploaded_round(world, config, state)
    assert selection.labelled == KNOWN + len(first.picks)
    files = write_round_report(root, PROJECT, config, selection, state, upload)
    assert files.html.name == f"workflow-{config.workflow_id}-round-002.html"

    page = read_page(files.html)
    charts = [image for image in page.images if image.alt in CHARTS]
    thumbnails = [image for image in page.images if image.alt not in CHARTS]
    assert {chart.alt for chart in charts} == CHARTS and len(charts) == 3
    for chart in charts:
        assert chart_problems(chart) == []
    assert len(thumbnails) == len(selection.picks) == len(upload["subject_ids"])  # one digit image per item
    for thumbnail in thumbnails:
        assert thumbnail_problems(thumbnail) == []

    scores = selection.metrics
    figures = page.figures()
    assert figures["Items picked"] == str(len(selection.picks))
    assert figures["Held-out accuracy"] == f"{scores['accuracy']:.3f}" and figures["Held-out macro F1"] == f"{scores['f1']:.3f}"
    assert figures["Subject set"] == f"{upload['subject_set_id']} ({selection.set_name})"
    right = round(scores["accuracy"] * scores["held_out"])
    assert any(c.startswith(f"{right} of {scores['held_out']} held-out items predicted right") for c in page.captions)
    assert sum(map(sum, scores["confusion"]["matrix"])) == scores["held_out"]

    # Each thumbnail's caption: the item, why it was picked, the model's probability, its Zooniverse subject.
    expected = [f"{p['pool_id']} | reason: {p['reason']} | p = {p['probability']:.2f} for {p['predicted']} | "
                f"subject {upload['subject_ids'][p['pool_id']]}" for p in selection.picks]
    assert [c for c in page.captions if c.startswith("d")] == expected
    assert {p["reason"] for p in selection.picks} == {"margin", "high_probability"}
    assert any(f"Uploaded to subject set {upload['subject_set_id']}" in note for note in page.notes)
    assert broken_links(page, files.html) == [] and len(page.links) == 3  # manifest, selection, uploaded

    summary = json.loads(files.json.read_text())
    assert (summary["round"], summary["set_id"], summary["picked"]) == (2, upload["subject_set_id"], len(selection.picks))
    assert summary["reasons"] == selection.reasons and summary["accuracy"] == scores["accuracy"]
    assert datetime.fromisoformat(summary["generated_at"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "chosen"])
def test_a_cold_start_says_plainly_what_it_cannot_show(world, tmp_path, dry_run) -> None:
    root = DataRoot(tmp_path / "data")
    config = RoundConfig(pool=world["pool"], workflow_id=world["workflow_id"], k=5, m=0)  # no label column: no labels
    state = RoundState(root.al_dir(PROJECT, config.workflow_id))
    selection = select_round(config, state, [], dry_run=dry_run, dry_run_dir=state.folder / "dry-runs" / "preview")
    files = write_round_report(root, PROJECT, config, selection, state)
    assert files.html.name == f"workflow-{config.workflow_id}-round-001{'-dry-run' if dry_run else ''}.html"

    page = read_page(files.html)
    assert [image.alt for image in page.images] == [f"{p['pool_id']}, image 1" for p in selection.picks]
    assert all(thumbnail_problems(image) == [] for image in page.images)
    notes = " ".join(page.notes)
    assert "No labels yet (cold start)" in notes
    assert "No confusion matrix for this round: 0 labelled item(s)" in notes
    if dry_run:
        assert "Dry run: nothing was uploaded" in notes and "A dry run records no round" in notes
        assert state.rounds == []
    else:
        assert "Chosen, not uploaded yet" in notes and "No round has held-out scores yet" in notes
        assert [r["round"] for r in state.rounds] == [1]
    assert all(caption.endswith("reason: cold_start | no model yet") for caption in page.captions)
    assert json.loads(files.json.read_text())["dry_run"] is dry_run


# -- through the DAG ---------------------------------------------------------------------------


def load_dag(dags_folder):
    """A freshly parsed DAG for each run: dag.test() renders the templated fields of the DAG's own task
    objects, so a second run of the same object would keep the first run's values (its dry run)."""
    return DagBag(dag_folder=str(dags_folder / "zooniverse_active_learning.py")).dags["zooniverse_active_learning"]


def test_the_active_learning_dag_writes_each_rounds_report(airflow_db, dags_folder, world, data_root, monkeypatch) -> None:
    for name, value in connection_env(world["config"]).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ZOOFLOW_CONFIG_DIR", str(world["folder"]))
    al_config = world["folder"] / "al.yaml"
    al_config.write_text(yaml.safe_dump({"pool": str(world["pool"]), "workflow_id": world["workflow_id"],
                                         "label_column": "label", "k": 4, "m": 1}))
    conf = {"project": PROJECT, "config": al_config.name, "subject_set_name": "dag-round-report", "poll_seconds": 1,
            "wait_timeout_minutes": 0.5}
    reports = DataRoot(data_root).reports_dir(PROJECT, "al-round-report")

    dry = load_dag(dags_folder).test(run_conf=conf | {"dry_run": True})
    assert dry.state == "success"
    results = {ti.task_id: (ti.state, ti.xcom_pull(task_ids=ti.task_id)) for ti in dry.get_task_instances()}
    assert results["upload"][0] == "skipped"
    preview = Path(results["select"][1]["report"])
    assert preview == reports / f"workflow-{world['workflow_id']}-round-001-dry-run.html"
    assert "Active-learning round 1 (dry run)" in read_page(preview).text

    real = load_dag(dags_folder).test(run_conf=conf)
    assert real.state == "success"
    (upload,) = [ti for ti in real.get_task_instances() if ti.task_id == "upload"]
    result = upload.xcom_pull(task_ids="upload")
    report = Path(result["report"])
    assert report == reports / f"workflow-{world['workflow_id']}-round-001.html"
    page = read_page(report)
    drawn = CHARTS - {"Learning curve: held-out accuracy and macro F1 against items labelled"}  # one round: no curve
    assert {image.alt for image in page.images} & CHARTS == drawn
    assert all(chart_problems(image) == [] for image in page.images if image.alt in CHARTS)
    assert len(page.images) - len(drawn) == len(result["subject_ids"])
    assert json.loads(report.with_suffix(".json").read_text())["set_id"] == result["subject_set_id"]

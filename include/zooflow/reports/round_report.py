"""The active-learning round report: what a round learned, what it chose and why, as a page for people.

A round's folder holds everything as files (manifest, selection, consensus, model); this page puts
them side by side for the team that decides whether the loop is working: the learning curve so far,
the classes learned and picked, the confusion matrix on held-out labels, and a contact sheet of the
images volunteers are shown, each with the reason it was chosen and the model's probability.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zooflow.al.round import RoundConfig, Selection, draw_learning_curve, manifest_items
from zooflow.al.state import RoundState
from zooflow.catalog import CURVE_MIN_POINTS, scored_rounds
from zooflow.paths import DataRoot, safe_name
from zooflow.reports import charts
from zooflow.reports.html import Chart, link, render_report
from zooflow.reports.publish import ReportFiles, write_report

KIND = "al-round-report"
LABELLED = "labels so far"
PICKED = "picked batch (model's class)"


def report_path(root: DataRoot, project: str, workflow_id: int | str, number: int, *, dry_run: bool = False) -> Path:
    """``workflow-<id>-round-NNN.html``; a dry run's preview of the next round is ``...-dry-run.html``, so it
    never stands in for the round that is later really chosen."""
    stem = f"workflow-{safe_name(str(workflow_id))}-round-{number:03d}" + ("-dry-run" if dry_run else "")
    return root.reports_dir(project, KIND) / f"{stem}.html"


def _score(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.3f}"


def _status(selection: Selection, upload: Mapping[str, Any] | None, workflow_id: int) -> str:
    if selection.dry_run:
        return "Dry run: nothing was uploaded. The manifest and images are in the dry run's folder."
    if upload is None:
        return "Chosen, not uploaded yet."
    return (f"Uploaded to subject set {upload['subject_set_id']} ({selection.set_name!r}), linked to workflow "
            f"{workflow_id}: {len(upload['subject_ids'])} subjects.")


def write_round_report(
    root: DataRoot,
    project: str,
    config: RoundConfig,
    selection: Selection,
    state: RoundState,
    upload: Mapping[str, Any] | None = None,
    *,
    generated_at: datetime | None = None,
) -> ReportFiles:
    """Write the round's page and its JSON figures under ``reports/al-round-report/``.

    ``upload`` is the upload report (``UploadReport.to_dict()``); None for a dry run. The learning
    curve is the one the round keeps (``learning_curve.png``), drawn again from the state so it is
    current on any worker; a dry run records no round, so its page has none.
    """
    generated_at = generated_at or datetime.now(timezone.utc)
    target = report_path(root, project, config.workflow_id, selection.round, dry_run=selection.dry_run)
    scores = selection.metrics
    picked = dict(sorted(Counter(p["predicted"] for p in selection.picks if p["predicted"] is not None).items()))
    figures = [
        ("Workflow", config.workflow_id),
        ("Subject set", f"{upload['subject_set_id']} ({selection.set_name})" if upload else selection.set_name),
        ("Items picked", len(selection.picks)),
        ("Why", ", ".join(f"{reason}: {n}" for reason, n in sorted(selection.reasons.items()))),
        ("Labelled items", selection.labelled),
        ("… by volunteer consensus", scores["labelled_by_volunteers"]),
        ("… known in the pool", scores["labelled_in_pool"]),
        ("Strategy", f"{config.strategy} (k={config.k}, m={config.m}, threshold={config.threshold:g})"),
        ("Held-out accuracy", _score(scores["accuracy"])),
        ("Held-out macro F1", _score(scores["f1"])),
        ("Held out / trained on", f"{scores['held_out']} / {scores['trained_on']}"),
    ]
    title = f"Active-learning round {selection.round}" + (" (dry run)" if selection.dry_run else "")
    html = render_report(
        "round_report.html.j2", title=title, project=project, generated_at=generated_at,
        status=_status(selection, upload, config.workflow_id), figures=figures, consensus=selection.consensus,
        learning_curve=_learning_curve(selection, state), class_balance=_class_balance(scores["class_balance"], picked),
        confusion=_confusion(scores), picked=len(selection.picks), sheet=_contact_sheet(selection, upload),
        skills=_skills(Path(selection.folder)), retired_early=_retired_early(state),
        files=[link(name, Path(selection.folder) / name, target)
               for name in ("manifest.csv", "selection.json", "consensus.json", "uploaded.json")
               if (Path(selection.folder) / name).is_file()])
    summary = {
        "kind": KIND, "project": project, "workflow_id": config.workflow_id, "round": selection.round,
        "dry_run": selection.dry_run, "set_name": selection.set_name,
        "set_id": upload["subject_set_id"] if upload else None, "picked": len(selection.picks),
        "reasons": dict(selection.reasons), "labelled": selection.labelled,
        "accuracy": scores["accuracy"], "f1": scores["f1"], "held_out": scores["held_out"],
    }
    return write_report(root, target, html, summary, generated_at)


def _learning_curve(selection: Selection, state: RoundState) -> Chart | str:
    """The learning curve so far, or (a note) why there is none."""
    if selection.dry_run:
        return "A dry run records no round, so it adds no point to the learning curve."
    rounds = [r for r in state.rounds if r.get("metrics")]
    scored = scored_rounds(rounds)
    if not scored:
        return ("No round has held-out scores yet (too few labels to score), so the learning curve has no "
                "point to draw.")
    if scored < CURVE_MIN_POINTS:
        return (f"Only {scored} round has held-out scores so far; the learning curve is drawn once "
                f"{CURVE_MIN_POINTS} rounds have them.")
    curve = draw_learning_curve(state)
    return Chart(curve.read_bytes(), "Learning curve: held-out accuracy and macro F1 against items labelled",
                 f"{len(rounds)} round(s), {scored} with held-out scores")


def _skills(folder: Path) -> Chart | None:
    """The estimated accuracy of each volunteer, when the round's consensus was weighted by skill."""
    try:
        skills = json.loads((folder / "consensus.json").read_text()).get("skills") or []
    except FileNotFoundError:
        return None
    if not skills:
        return None
    return Chart(charts.histogram(skills, title="Volunteers by estimated accuracy", xlabel="estimated accuracy"),
                 "Histogram of the volunteers' estimated accuracy",
                 f"{len(skills)} volunteers (the not-logged-in ones as one), from their confusion matrices (Dawid-Skene)")


def _retired_early(state: RoundState) -> list[str]:
    """The subjects the retire step retired early, each with the votes that made it clear."""
    return [f"subject {e['subject_id']} ({e['pool_id']}): {e['label']} at confidence {e['confidence']:.3f} after "
            f"{e['votes_used']} votes ({', '.join(answer for _, answer in e['votes'])}), {e['at'][:16]} UTC"
            for e in state.retired_early()]


def _class_balance(labelled: Mapping[str, int], picked: Mapping[str, int]) -> Chart | str:
    series = {name: counts for name, counts in ((LABELLED, labelled), (PICKED, picked)) if counts}
    if not series:
        return ("No labels yet (cold start): the learner had nothing to learn from, so this batch was picked "
                "at random and has no predicted classes.")
    caption = f"{sum(labelled.values())} labels in {len(labelled)} class(es)" + (
        "; the picked batch by the class the model predicts for each item" if picked else "")
    return Chart(charts.bars(series, title="Class balance", value_label="items"),
                 "Bar chart of labelled items and picked items per class", caption)


def _confusion(scores: Mapping[str, Any]) -> Chart | str:
    matrix = scores.get("confusion")
    if not matrix:
        reason = scores.get("note") or "this round's metrics have no held-out predictions"
        return f"No confusion matrix for this round: {reason}."
    total = sum(map(sum, matrix["matrix"]))
    right = sum(matrix["matrix"][i][i] for i in range(len(matrix["classes"])))
    return Chart(charts.confusion(matrix["classes"], matrix["matrix"], title="Held-out items: true against predicted"),
                 "Confusion matrix of the held-out labels",
                 f"{right} of {total} held-out items predicted right, by a model trained on the other labelled items")


def _contact_sheet(selection: Selection, upload: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Thumbnails of the images uploaded for each item (from the manifest, as volunteers see them),
    captioned with the item, why it was picked, and what the model made of it."""
    predicted = {p["pool_id"]: p["predicted"] for p in selection.picks}
    subjects = (upload or {}).get("subject_ids", {})
    cells = []
    for item in manifest_items(Path(selection.manifest)):
        probability = item.metadata["#model_probability"]
        lines = [f"reason: {item.metadata['#query_reason']}",
                 "no model yet" if probability is None else f"p = {probability:.2f} for {predicted.get(item.key)}"]
        if item.key in subjects:
            lines.append(f"subject {subjects[item.key]}")
        cells.append({"key": item.key, "lines": lines, "thumbnails": [
            (charts.thumbnail(path), f"{item.key}, image {n + 1}") for n, path in enumerate(item.files)]})
    return cells

"""The active-learning round's steps over a data root: the one sequence the DAG's tasks and ``zooflow al round`` run.

``plan_round`` says which round comes next and which batch must be retired first; ``pull_step``
brings the workflow's classifications made since the last pull into the store (``zooflow.classifications``);
``select_step`` reads the labels (from that store, or the latest export with ``labels_from: export``)
and chooses (``zooflow.al.round.select_round``); ``upload_step`` uploads and links (``upload_round``). Each pulls the state, exports and round folders it reads and pushes what it
wrote through a ``zooflow.storage.Storage`` (nothing to move for a local root), and writes the round
report: the select step for a dry run, the upload step for a real round.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zooflow.al.labels import store_rows
from zooflow.al.round import RoundConfig, Selection, select_round, upload_round
from zooflow.al.state import RoundState
from zooflow.classifications.pull import PullReport, pull_classifications
from zooflow.classifications.reader import read_table
from zooflow.files import atomic_write_json
from zooflow.paths import safe_name
from zooflow.reports.round_report import write_round_report
from zooflow.storage import Storage, has_download, pull_latest_download
from zooflow.subjects.upload import UploadReport


def round_state(store: Storage, project: str, config: RoundConfig) -> RoundState:
    """The round state of the config's workflow, pulled from a remote data root first."""
    state = RoundState(store.root.al_dir(project, config.workflow_id))
    store.pull(state.path)
    return state


def plan_round(store: Storage, project: str, config: RoundConfig, run_id: str) -> dict[str, Any]:
    """Which round comes next, and the batch that must be retired before it.

    A run that chose a round already (a rerun), or a round chosen and not uploaded (resuming), has no
    batch to wait for: in "counts" mode the workflow's counters already include that round's own
    batch, so a wait would not end. ``expected_subjects`` is 0 when unknown.
    """
    state = round_state(store, project, config)
    own = state.round_of_run(run_id)
    current = own or state.pending()
    batch = {"sets": [], "subjects": 0, "expected_subjects": None} if current else state.current_batch()
    return {
        "workflow_id": config.workflow_id,
        "round": current["round"] if current else state.next_round(),
        "rerun": own is not None,
        "resuming": current is not None and not current.get("uploaded_at"),
        "current_batch_sets": batch["sets"],
        "batch_subjects": batch["subjects"],
        "expected_subjects": batch["expected_subjects"] or 0,
        "retirement_mode": config.retirement_mode,
        "refill_below": config.refill_below,
    }


TASKS_FILE = "workflow-tasks.json"  # the workflow's tasks when its classifications were last pulled


def pull_step(store: Storage, project: str, config: RoundConfig, *, project_id: int, workflow: Any) -> PullReport:
    """The config's workflow's classifications made since the last pull, into the store, and the
    workflow's tasks beside the rounds (the API gives answer indexes; the tasks name them). Call
    inside a logged-in client; ``workflow`` is the panoptes-client ``Workflow``."""
    folder = store.root.classifications_dir(project)
    store.pull(folder)
    report = pull_classifications(store.root, project, project_id=project_id, workflow_id=config.workflow_id)
    state = round_state(store, project, config)
    tasks = atomic_write_json(state.folder / TASKS_FILE, workflow.raw.get("tasks") or {})
    store.push(folder, tasks)
    return report


def store_votes(store: Storage, project: str, state: RoundState, workflow_id: int) -> Iterator[dict[str, Any]] | None:
    """The workflow's stored classifications as the consensus reads export rows, or None before the
    first pull (nothing stored, no tasks to name the answers)."""
    store.pull(store.root.classifications_dir(project), state.folder / TASKS_FILE)
    try:
        tasks = json.loads((state.folder / TASKS_FILE).read_text())
    except FileNotFoundError:
        return None
    table = read_table(store.root, project, workflow_id, columns=["classification_id", "annotations", "subject_ids",
                                                                  "user_id", "created_at", "workflow_id"])
    return store_rows(table.to_pylist(), state.subject_pool(), tasks)


def select_step(store: Storage, project: str, config: RoundConfig, *, run_id: str, set_name: str | None = None,
                dry_run: bool = False) -> tuple[Selection, dict[str, str]]:
    """Labels from the classification store (or the latest export, with ``labels_from: export``), then
    ``select_round``. Returns the selection and, for a dry run (which ends here), ``{"report": url}`` of
    the round report it wrote."""
    exports_dir = store.root.exports_dir(project, "classifications")
    from_export = config.labels_from == "export"
    exports = [pull_latest_download(store, exports_dir)] if from_export and has_download(store, exports_dir) else []
    state = round_state(store, project, config)
    if (chosen := state.round_of_run(run_id) or state.pending()) and not dry_run:
        store.pull(state.round_dir(chosen["round"]))  # chosen earlier, perhaps on another worker
    classifications = None if from_export else store_votes(store, project, state, config.workflow_id)
    selection = select_round(config, state, exports, classifications=classifications, set_name=set_name or None,
                             dry_run=dry_run, dry_run_dir=state.folder / "dry-runs" / safe_name(run_id), run_id=run_id)
    if not dry_run:
        store.push(state.round_dir(selection.round), state.path, selection.learning_curve)
        return selection, {}
    page = write_round_report(store.root, project, config, selection, state)
    store.push(selection.folder, *page.paths())
    return selection, {"report": store.url(page.html)}


def chosen_round(store: Storage, project: str, config: RoundConfig, selection: Selection) -> tuple[RoundState, Selection]:
    """The round state, and the selection with its folder pulled into this worker's working root (the
    select step may have run on another worker)."""
    state = round_state(store, project, config)
    folder = state.round_dir(selection.round)
    store.pull(folder)
    return state, dataclasses.replace(selection, folder=str(folder), manifest=str(folder / Path(selection.manifest).name))


def upload_step(store: Storage, project: str, config: RoundConfig, selection: Selection, *, project_record: Any,
                workflow: Any, progress: Callable[[int, int], None] | None = None,
                warn: Callable[..., None] | None = None) -> tuple[UploadReport, str]:
    """Upload the chosen batch (``upload_round``) and write the round report; returns the upload
    report and the report page's URL. ``project_record`` and ``workflow`` are panoptes-client objects.

    The round's folder is pulled first (``chosen_round``). A failed upload still pushes its journal, so a retry on any worker uploads
    only what is missing."""
    state, selection = chosen_round(store, project, config, selection)
    folder = Path(selection.folder)
    try:
        report = upload_round(selection, state, project_record, workflow, progress=progress)
    except BaseException:
        try:
            store.push(folder)
        except Exception as exc:  # the upload's own error matters more
            if warn is not None:
                warn("Could not push the upload journal to %s: %s", store.location, exc)
        raise
    store.push(folder, state.path)
    page = write_round_report(store.root, project, config, selection, state, report.to_dict())
    store.push(*page.paths())
    return report, store.url(page.html)

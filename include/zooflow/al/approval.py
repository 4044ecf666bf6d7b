"""A researcher's approval of a chosen batch before it goes to volunteers (``approve_before_upload``).

The Airflow step (``zooflow.airflow.operators.approval``) asks through Airflow's human-in-the-loop
requests; what it shows and what a rejection does live here, so they do not depend on Airflow. The
request shows the round's report page (written now, "chosen, not uploaded yet") and, as its contact
sheet, each item's images with why it was picked and what the model made of it. A rejection keeps
the round on record but frees its items (``RoundState.reject``): nothing is uploaded, and the next
round may choose them again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zooflow.al.round import RoundConfig, Selection, manifest_items
from zooflow.al.steps import chosen_round, round_state
from zooflow.reports.round_report import write_round_report
from zooflow.storage import Storage

SHEET_ROWS = 60  # items shown with their images; a larger batch is listed in full on the report page


def approval_request(store: Storage, project: str, config: RoundConfig, selection: Selection,
                     link: Callable[[Path], str]) -> tuple[str, str]:
    """The request's subject and Markdown body. ``link`` turns a file under the data root into a URL
    the reviewer's browser can open (the Zooniverse page's file route for a local root)."""
    state, selection = chosen_round(store, project, config, selection)
    page = write_round_report(store.root, project, config, selection, state)
    store.push(*page.paths())
    predicted = {p["pool_id"]: p["predicted"] for p in selection.picks}
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(selection.reasons.items()))
    accuracy = selection.metrics.get("accuracy")
    lines = [
        f"Round {selection.round} chose **{len(selection.picks)} items** ({reasons}) for subject set "
        f"*{selection.set_name}*, from {selection.labelled} labelled items"
        + ("" if accuracy is None else f" (held-out accuracy {accuracy:.3f})") + ".",
        "",
        f"[The round's report, with its learning curve and contact sheet]({link(page.html)})",
        "",
        "Approve to upload them and link the set to the workflow; reject to upload nothing and leave the "
        "items free for the next round.",
        "",
        "| item | images | why | model |",
        "|---|---|---|---|",
    ]
    for item in manifest_items(Path(selection.manifest))[:SHEET_ROWS]:
        probability = item.metadata["#model_probability"]
        model = "no model yet" if probability is None else f"p = {probability:.2f} for {predicted.get(item.key)}"
        images = " ".join(f"![{item.key}]({link(path)})" for path in item.files)
        lines.append(f"| {item.key} | {images} | {item.metadata['#query_reason']} | {model} |")
    if len(selection.picks) > SHEET_ROWS:
        lines.append(f"\n… and {len(selection.picks) - SHEET_ROWS} more on the report page.")
    return f"Upload round {selection.round} ({len(selection.picks)} subjects) to workflow {config.workflow_id}?", "\n".join(lines)


def reject_round(store: Storage, project: str, config: RoundConfig, selection: Selection, *,
                 by: str | None = None) -> dict[str, Any]:
    """Record the rejection: the round is kept, its items freed for the next round."""
    state = round_state(store, project, config)
    record = state.reject(selection.round, by=by)
    store.push(state.path)
    return record

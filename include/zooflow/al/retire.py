"""Retiring subjects early, once their answer is clear (``retire_confidence`` in the AL config).

A subject keeps collecting classifications until the workflow's count rule retires it, though after a
few careful answers its label is settled: the clicks it still gets are lost to the next batch. With
``retire_confidence``, each run of the AL DAG pulls the new classifications, takes the config's
consensus (volunteer skill, for ``consensus: weighted``) over all of the workflow's classifications,
and retires through the API (reason ``consensus``) each subject zooflow uploaded whose confidence
reached the threshold after at least ``min_votes`` votes and which the count rule has not retired yet.
A dry run (the default) only reports them. Every retirement is logged and kept, one JSON line each in
``early-retirements.jsonl`` beside the rounds (``RoundState.retired_early``), with the votes (in time
order) that justified it; the round's consensus counts such subjects as labelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from zooflow.al.labels import store_rows
from zooflow.al.round import RoundConfig
from zooflow.al.steps import TASKS_FILE, pull_step, round_state
from zooflow.classifications.reader import read_table
from zooflow.consensus.table import consensus
from zooflow.consensus.votes import votes_from_rows
from zooflow.retirement import retirement_count
from zooflow.storage import Storage

log = logging.getLogger(__name__)
REASON = "consensus"


def retire_step(store: Storage, project: str, config: RoundConfig, *, project_id: int, workflow: Any,
                dry_run: bool = True, run_id: str | None = None, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Pull, take the consensus, and retire (or, in a dry run, list) the subjects that are clear.
    ``workflow`` is the panoptes-client ``Workflow``; call inside a logged-in client."""
    if config.retire_confidence is None:
        return {"enabled": False, "reason": "retire_confidence is not set in the AL config"}
    pull_step(store, project, config, project_id=project_id, workflow=workflow)
    state = round_state(store, project, config)
    store.pull(state.early_retirements)
    subject_pool = state.subject_pool()
    table = read_table(store.root, project, config.workflow_id,
                       columns=["classification_id", "annotations", "subject_ids", "user_id", "created_at", "workflow_id"])
    tasks = json.loads((state.folder / TASKS_FILE).read_text())
    votes = votes_from_rows(store_rows(table.to_pylist(), subject_pool, tasks), task=config.task,
                            answer_map=config.answer_map, workflow_id=config.workflow_id)
    report: dict[str, Any] = {"enabled": True, "dry_run": dry_run, "method": config.consensus,
                              "confidence": config.retire_confidence, "min_votes": config.min_votes,
                              "classifications": len(votes), "retired": []}
    if not len(votes):
        return report
    needed = retirement_count(workflow.raw)
    result = consensus(votes, method=config.consensus, retire_confidence=config.retire_confidence,
                       min_votes=config.min_votes, retire_count=needed)
    report["confidence"], report["rule"] = result.retire_confidence, result.retire_rule
    done = {str(entry["subject_id"]) for entry in state.retired_early()}
    codes = {name: code for code, name in enumerate(votes.items)}
    chosen = [row for row in result.rows() if row["retire"] and row["subject_id"] in subject_pool
              and row["subject_id"] not in done and (needed is None or row["votes"] < needed)]
    now = datetime.now(timezone.utc).isoformat()
    entries = []
    for row in chosen:
        mine = np.flatnonzero(votes.item == codes[row["subject_id"]])[: row["votes_used"]]
        entries.append({"subject_id": int(row["subject_id"]), "pool_id": subject_pool[row["subject_id"]],
                        "label": row["label"], "confidence": row["confidence"], "votes_used": row["votes_used"],
                        "votes": [[votes.workers[votes.worker[i]], votes.classes[votes.label[i]]] for i in mine],
                        "at": now, "run_id": run_id})
        say(f"{'Would retire' if dry_run else 'Retiring'} subject {row['subject_id']} (pool id "
            f"{subject_pool[row['subject_id']]}) as {row['label']!r}: confidence {row['confidence']:.3f} after "
            f"{row['votes_used']} votes {entries[-1]['votes']}")
    report["retired"] = entries
    if entries and not dry_run:
        workflow.retire_subjects([entry["subject_id"] for entry in entries], reason=REASON)
        state.record_early_retirements(entries)
        store.push(state.early_retirements)
    return report

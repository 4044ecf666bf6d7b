"""The round's labels by volunteer skill (``consensus: weighted``), in the report the round already keeps.

The majority rule (``zooflow.al.labels``) counts every vote alike. Weighted consensus fits each
volunteer's confusion matrix over all the workflow's classifications (``zooflow.consensus``) and labels
an item when its posterior reaches ``agreement`` after ``min_votes`` votes, or when it was clear at the
round's ``retire_confidence`` (an item the retire step may have retired early: it counts as labelled).
The result fills the same ``ConsensusReport``, with each volunteer's estimated accuracy for the
report's skill plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from zooflow.al.labels import POOL_KEY, ConsensusReport
from zooflow.consensus.table import consensus
from zooflow.consensus.votes import votes_from_rows

_SKIPPED = {"duplicate": "duplicate_rows", "malformed": "malformed_rows", "no answer to the task": "without_task",
            "no item": "without_pool_id"}


def weighted_labels(rows: Iterable[Mapping[str, Any]], *, task: str = "T0", answer_map: Mapping[str, str] | None = None,
                    min_votes: int = 3, agreement: float = 0.5, key: str = POOL_KEY, workflow_id: int | None = None,
                    retire_confidence: float | None = None) -> ConsensusReport:
    """Labels per pool item by Dawid–Skene over export-like ``rows`` (the store's or an export's)."""
    votes = votes_from_rows(rows, task=task, key=key, answer_map=answer_map, workflow_id=workflow_id)
    report = ConsensusReport(task=task, min_votes=min_votes, agreement=agreement, method="weighted")
    for reason, count in votes.skipped.items():
        if reason in _SKIPPED:
            setattr(report, _SKIPPED[reason], count)
    report.rows_read = votes.rows
    if not len(votes):
        return report
    result = consensus(votes, method="weighted", retire_confidence=retire_confidence, min_votes=min_votes)
    k = len(votes.classes)
    counts = np.bincount(votes.item * k + votes.label, minlength=len(votes.items) * k).reshape(-1, k)
    codes = {name: code for code, name in enumerate(votes.items)}
    for row in result.rows():
        item = row["subject_id"]
        report.votes[item] = {votes.classes[c]: int(n) for c, n in enumerate(counts[codes[item]]) if n}
        if row["gold"] or row["retire"]:
            report.labels[item] = row["label"]
            if row["retire"]:
                report.clear_early.append(item)
        elif row["votes"] < min_votes:
            report.too_few_votes.append(item)
        elif row["confidence"] < agreement:
            report.low_agreement.append(item)
        else:
            report.labels[item] = row["label"]
    report.skills = [round(float(a), 4) for a in result.model.worker_accuracy]
    return report

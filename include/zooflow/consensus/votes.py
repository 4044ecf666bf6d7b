"""Votes: one row per (classification, item) answer to one question task, as integer codes for numpy.

Skill-weighted consensus needs to know who answered what, in which order: the item (a subject id, or
the pool id an active-learning round put in the subject's hidden metadata), the volunteer (the user
id; every not-logged-in classification shares one pooled volunteer, since Panoptes gives them no
stable identity), the answer, and the time. Gold-standard classifications (Panoptes' ``gold_standard``:
made by a project expert) are not votes but known labels, kept apart as ``gold``. Rows that cannot be
read are counted, never silently dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zooflow.al.labels import answer_of
from zooflow.al.pool import cell_text

ANONYMOUS = "not-logged-in"  # the pooled volunteer of every classification made without logging in
COLUMNS = ("classification_id", "user_id", "workflow_id", "created_at", "gold_standard", "annotations",
           "subject_data", "subject_ids")


@dataclass
class Votes:
    """Votes in time order, as codes into ``items``, ``workers`` and ``classes``."""

    item: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    items: list[str]
    workers: list[str]
    classes: list[str]
    gold: dict[str, str] = field(default_factory=dict)  # item -> label, from gold-standard classifications
    skipped: dict[str, int] = field(default_factory=dict)  # why rows were left out, and how many
    rows: int = 0  # classification rows read

    def __len__(self) -> int:
        return len(self.item)

    def counts(self) -> np.ndarray:
        """Votes per item."""
        return np.bincount(self.item, minlength=len(self.items))

    @classmethod
    def from_arrays(cls, items: Iterable[Any], workers: Iterable[Any], labels: Iterable[Any], *,
                    classes: Iterable[str] | None = None, gold: Mapping[str, str] | None = None) -> Votes:
        """Votes from parallel sequences already in time order (simulations, tests, other readers)."""
        item_codes, item_names = _codes(np.asarray(list(items), dtype=str))
        worker_codes, worker_names = _codes(np.asarray(list(workers), dtype=str))
        label_text = np.asarray(list(labels), dtype=str)
        known = [str(c) for c in (classes if classes is not None else sorted(set(label_text) | set((gold or {}).values())))]
        lookup = {name: code for code, name in enumerate(known)}
        return cls(np.asarray(item_codes, np.int64), np.asarray(worker_codes, np.int64),
                   np.array([lookup[text] for text in label_text], dtype=np.int64),
                   item_names, worker_names, known, dict(gold or {}))


def votes_from_rows(rows: Iterable[Mapping[str, Any]], *, task: str, workflow_id: int | None = None,
                    key: str | None = None, answer_map: Mapping[str, str] | None = None) -> Votes:
    """Votes from classification-export rows (dicts with the export's column names).

    :param task: the question task whose single answer is the vote.
    :param workflow_id: keep only this workflow's classifications (None: all).
    :param key: items are the values of this hidden metadata key (``#pool_id``) in ``subject_data``;
        None: items are subject ids.
    :param answer_map: answer text -> class; answers it lacks are counted and left out.
    """
    skipped: Counter = Counter()
    seen: set[str] = set()
    records: list[tuple[str, str, str, str, str]] = []  # created_at, classification id, item, worker, label
    gold: dict[str, str] = {}
    read = 0
    for read, row in enumerate(rows, start=1):
        classification_id = str(row.get("classification_id") or "")
        if classification_id in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(classification_id)
        if workflow_id is not None and str(row.get("workflow_id") or "").strip() not in ("", str(workflow_id)):
            skipped["other workflow"] += 1
            continue
        try:
            answer = answer_of(row.get("annotations"), task)
            items = _items(row, key)
        except ValueError:
            skipped["malformed"] += 1
            continue
        if answer is None:
            skipped["no answer to the task"] += 1
            continue
        if answer_map is not None:
            if answer not in answer_map:
                skipped["answer not in the answer map"] += 1
                continue
            answer = str(answer_map[answer])
        if not items:
            skipped["no item"] += 1
            continue
        if str(row.get("gold_standard") or "").strip().lower() in ("true", "1"):
            gold.update((item, answer) for item in items)
            continue
        worker = cell_text(row.get("user_id")) or ANONYMOUS
        created = str(row.get("created_at") or "")
        records.extend((created, classification_id.zfill(20), item, worker, answer) for item in items)
    records.sort()
    votes = Votes.from_arrays([r[2] for r in records], [r[3] for r in records], [r[4] for r in records], gold=gold)
    votes.skipped, votes.rows = dict(skipped), read
    return votes


def _items(row: Mapping[str, Any], key: str | None) -> list[str]:
    if key is None:
        ids = row.get("subject_ids")
        if ids not in (None, ""):
            return [part.strip() for part in str(ids).split(";") if part.strip()]
    subjects = row.get("subject_data")
    subjects = json.loads(subjects) if isinstance(subjects, str) else subjects
    if not isinstance(subjects, dict):
        raise ValueError("subject_data is not an object keyed by subject id")
    if key is None:
        return list(subjects)
    found = [cell_text(meta.get(key)) for meta in subjects.values() if isinstance(meta, dict)]
    return list(dict.fromkeys(item for item in found if item))


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each value's code, numbered by first appearance, and the values in code order."""
    if not len(values):
        return np.zeros(0, dtype=np.int64), []
    names, first, codes = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], [str(names[i]) for i in order]

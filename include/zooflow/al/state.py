"""What each active-learning round chose, uploaded and learned, kept under the data root.

The state is the loop's memory between runs: which pool items went up (never picked again),
which set is the current batch (what the batch-labelled sensor waits on), and each round's metrics
for the learning curve. It is keyed by round number, never by a run's logical date, which manual
and asset-triggered runs do not have; each round also lists the run ids that worked on it, so a rerun
of the same DAG run (Airflow's "Clear") finds its round instead of starting the next one. Every
write replaces ``state.json`` atomically.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zooflow.files import atomic_write_bytes, atomic_write_json


class RoundState:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.early_retirements = self.folder / "early-retirements.jsonl"  # one JSON line per subject retired early

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"rounds": []}

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.path, data)

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return self._load()["rounds"]

    def completed(self) -> list[dict[str, Any]]:
        return [r for r in self.rounds if r.get("uploaded_at")]

    def pending(self) -> dict[str, Any] | None:
        """A round chosen but not (fully) uploaded nor rejected: the next run finishes it instead of choosing again."""
        return next((r for r in self.rounds if not r.get("uploaded_at") and not r.get("rejected_at")), None)

    def uploaded(self, number: int) -> bool:
        """Whether round ``number`` is closed: a rerun of its upload must leave its record as it is."""
        return any(r["round"] == number for r in self.completed())

    def round_of_run(self, run_id: str) -> dict[str, Any] | None:
        """The round this DAG run started or resumed, if any: its rerun redoes that round, not the next.

        Rounds recorded before run ids were kept have none, and belong to no run.
        """
        return next((r for r in self.rounds if run_id in r.get("run_ids", ())), None)

    def next_round(self) -> int:
        return len(self.rounds) + 1

    def round_dir(self, number: int) -> Path:
        return self.folder / f"round-{number:03d}"

    def uploaded_pool_ids(self) -> set[str]:
        """Items chosen by a round that was not rejected: never chosen again."""
        return {pool_id for r in self.rounds if not r.get("rejected_at") for pool_id in r.get("picked", [])}

    def subject_pool(self) -> dict[str, str]:
        """Subject id -> pool id for every subject the rounds uploaded: how classifications read from
        the API, which carry subject ids but not the subjects' hidden metadata, reach the pool."""
        return {str(subject_id): str(pool_id) for r in self.completed() if isinstance(r.get("subject_ids"), dict)
                for pool_id, subject_id in r["subject_ids"].items()}

    def current_batch(self) -> dict[str, Any]:
        """The batch volunteers are labelling now, as the retirement gate needs it: its set(s), how many
        subjects it linked, and the workflow's ``subjects_count`` once Panoptes has counted it (None for
        rounds recorded before the count was kept)."""
        done = self.completed()
        if not done:
            return {"sets": [], "subjects": 0, "expected_subjects": None}
        last = done[-1]
        subjects = len(last.get("subject_ids", []))
        before = last.get("workflow_subjects_before")
        return {"sets": [last["set_id"]], "subjects": subjects,
                "expected_subjects": None if before is None else before + subjects}

    def note_before_upload(self, number: int, workflow_subjects: int) -> None:
        """The workflow's ``subjects_count`` before round ``number`` first links anything; a retried upload
        keeps the first value, read before its own batch could have been counted."""
        data = self._load()
        record = next(r for r in data["rounds"] if r["round"] == number)
        if "workflow_subjects_before" not in record:
            record["workflow_subjects_before"] = int(workflow_subjects)
            self._save(data)

    def record_selection(self, number: int, *, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A new round, chosen by the run ``run_id`` (None outside Airflow: the command line)."""
        data = self._load()
        if any(r["round"] == number for r in data["rounds"]):
            raise ValueError(f"round {number} is already recorded")
        record = {"round": number, "selected_at": datetime.now(timezone.utc).isoformat(),
                  "run_ids": [run_id] if run_id else [], **fields}
        data["rounds"].append(record)
        self._save(data)
        return record

    def add_run(self, number: int, run_id: str) -> None:
        """``run_id`` resumed round ``number``, chosen by an earlier run: a rerun of it must find the round too."""
        data = self._load()
        record = next(r for r in data["rounds"] if r["round"] == number)
        if run_id not in record.setdefault("run_ids", []):
            record["run_ids"].append(run_id)
            self._save(data)

    def reject(self, number: int, *, by: str | None = None) -> dict[str, Any]:
        """A researcher rejected round ``number`` before upload: it stays on record (its folder too) but
        its items are free for the next round, which gets the next number."""
        data = self._load()
        record = next(r for r in data["rounds"] if r["round"] == number)
        if record.get("uploaded_at"):
            raise ValueError(f"round {number} is uploaded already and cannot be rejected")
        record.setdefault("rejected_at", datetime.now(timezone.utc).isoformat())
        record.setdefault("rejected_by", by)
        self._save(data)
        return record

    def retired_early(self) -> list[dict[str, Any]]:
        """The subjects retired early by consensus (``zooflow.al.retire``), oldest first."""
        try:
            text = self.early_retirements.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def record_early_retirements(self, entries: list[dict[str, Any]]) -> None:
        lines = [json.dumps(entry) for entry in self.retired_early() + entries]
        atomic_write_bytes(self.early_retirements, ("\n".join(lines) + "\n").encode("utf-8"))

    def record_upload(self, number: int, **fields: Any) -> dict[str, Any]:
        data = self._load()
        record = next(r for r in data["rounds"] if r["round"] == number)
        record.update(fields, uploaded_at=datetime.now(timezone.utc).isoformat())
        self._save(data)
        return record

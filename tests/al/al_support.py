"""Small pools and classification exports in the real 14-column layout, built inside the tests."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

EXPORT_COLUMNS = ("classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,"
                  "created_at,gold_standard,expert,metadata,annotations,subject_data,subject_ids").split(",")
METADATA = {"source": "api", "session": "7a1f4a17", "viewport": {"width": 1710, "height": 948},
            "started_at": "2024-02-23T16:16:35.085Z", "finished_at": "2024-02-23T16:17:42.334Z",
            "utc_offset": "0", "live_project": True, "user_language": "en"}
RETIRED = {"id": 125510348, "workflow_id": 10, "classifications_count": 3, "created_at": "2024-02-21T09:44:28.745Z",
           "updated_at": "2024-02-23T16:17:42.488Z", "retired_at": "2024-02-23T16:17:42.479Z",
           "subject_id": 0, "retirement_reason": "classification_count"}
_next_id = iter(range(543695319, 10**12))


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def classification(answer, subjects: dict[int, dict], *, task: str = "T0", other_tasks: bool = True,
                   classification_id: int | None = None, user: str = "volunteer-01") -> dict[str, str]:
    """One export row: ``subjects`` maps subject id -> metadata (``retired`` is put first, as Panoptes does)."""
    annotations = [{"task": task, "task_label": "**Is this a glitch?**\n\nLook closely.", "value": answer}]
    if other_tasks:
        annotations.append({"task": "T9", "task_label": "Anything else?", "value": "No"})
    subject_data = {str(sid): {"retired": dict(RETIRED, subject_id=sid), **meta} for sid, meta in subjects.items()}
    return {
        "classification_id": str(classification_id or next(_next_id)), "user_name": user, "user_id": "1325",
        "user_ip": "b644753d0e3948f81dc2", "workflow_id": "10", "workflow_name": "Glitch, or not", "workflow_version": "16.55",
        "created_at": "2024-02-23 16:17:42 UTC", "gold_standard": "", "expert": "", "metadata": compact(METADATA),
        "annotations": compact(annotations), "subject_data": compact(subject_data),
        "subject_ids": ";".join(str(sid) for sid in subjects),
    }


def votes(pool_id, answers: list[str], subject_id: int, **options) -> list[dict[str, str]]:
    return [classification(answer, {subject_id: {"#pool_id": pool_id, "name": f"s{subject_id}"}}, **options)
            for answer in answers]


def export_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")  # minimal quoting, like Ruby's CSV
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def write_export(path: Path, rows: list[dict[str, str]]) -> Path:
    data = export_bytes(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def blobs(n_per_class: int = 60, classes: tuple[str, ...] = ("cosmic ray", "point source", "other"),
          seed: int = 0) -> pd.DataFrame:
    """Well separated Gaussian blobs: id, three features, a text column, and the true label."""
    rng = np.random.default_rng(seed)
    frames = []
    for number, label in enumerate(classes):
        centre = np.array([number * 4.0, (number % 2) * 4.0, -number * 2.0])
        features = rng.normal(centre, 1.0, size=(n_per_class, 3))
        frames.append(pd.DataFrame({"f1": features[:, 0], "f2": features[:, 1], "f3": features[:, 2], "truth": label}))
    frame = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.insert(0, "id", [f"p{i:03d}" for i in range(len(frame))])
    frame.insert(4, "stream", "H1:GDS-CALIB")  # text: never a feature
    return frame


def fake_renderer(pool, pool_id, out_dir):
    """A project's own renderer, found through a dotted name."""
    target = Path(out_dir) / f"custom-{pool_id}.png"
    target.write_bytes(b"not really a png")
    return [target]

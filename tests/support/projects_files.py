"""Projects files for the DAG tests: three projects of one lab, one with two AL workflows, and their AL
configs (pool and workflow id only: the DAGs read no more when they are parsed)."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECTS = [
    {"project": "lab/glitches", "schedule": "0 2 * * *", "slice": {"workflow_ids": [28090], "gold": "include"},
     "active_learning": [{"config": "al/glitch-shapes.yaml"}, {"config": "al/glitch-sources.yaml"}]},
    {"project": "lab/penguins", "conn_id": "zooniverse_lab", "exports": ["classifications"]},
    {"project": "lab/craters", "schedule": "@weekly", "active_learning": [{"config": "al/craters.yaml"}]},
]
AL = {"glitch-shapes": (101, "*/15 * * * *"), "glitch-sources": (102, None), "craters": (301, None)}


def write_projects(folder: Path, projects: list[dict] = PROJECTS) -> Path:
    """``projects.yaml`` in ``folder`` with the AL configs it names under ``folder/al``."""
    (folder / "al").mkdir(parents=True, exist_ok=True)
    for name, (workflow_id, cadence) in AL.items():
        settings = {"pool": "pool.csv", "workflow_id": workflow_id} | ({"cadence": cadence} if cadence else {})
        (folder / "al" / f"{name}.yaml").write_text(yaml.safe_dump(settings))
    path = folder / "projects.yaml"
    path.write_text(yaml.safe_dump({"projects": projects}))
    return path

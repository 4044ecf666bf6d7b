"""The team ``make up`` and the demo show: two projects on the sandbox, in one projects file.

A research team rarely runs one project; the local Airflow shows what a team would see, a projects
file (``zooflow.projects_file``) with the glitch demo and its active-learning workflow, and a second
project with exports only, each with its own DAGs.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from zooflow.files import atomic_write_bytes
from zooflow.sandbox import seed


def write_team_projects(path: Path, *, al_config: Path, second_project: str) -> Path:
    """``projects.yaml`` at ``path``: the glitch demo daily with its AL workflow (``al_config``, on a
    15-minute cadence if the config sets one), and ``second_project`` exporting classifications at 02:00 UTC."""
    projects = {"projects": [
        {"project": seed.DEMO_PROJECT_SLUG, "active_learning": [{"config": str(al_config)}]},
        {"project": second_project, "schedule": "0 2 * * *", "exports": ["classifications", "subjects"]},
    ]}
    return atomic_write_bytes(path, yaml.safe_dump(projects, sort_keys=False).encode())

"""The generic exports DAG: the project named by ``ZOOFLOW_PROJECT`` daily (the one-entry shorthand of the
projects file), or, when a projects file makes one exports DAG per project, any project by hand.
Its tasks and documentation: ``zooflow.airflow.builders.exports``."""

from __future__ import annotations

from pathlib import Path

from zooflow.airflow.builders.exports import build_exports_dag
from zooflow.airflow.params import DEFAULT_PROJECT
from zooflow.airflow.projects import projects_in_use

zooniverse_exports = build_exports_dag(
    "zooniverse_exports", Path(__file__).parent, project=DEFAULT_PROJECT,
    # daily for $ZOOFLOW_PROJECT; ad hoc only when the projects file schedules each project itself
    schedule=None if projects_in_use(Path(__file__).parent) else "0 0 * * *",
)

"""One exports DAG per project of the projects file (``$ZOOFLOW_PROJECTS``, else ``projects.yaml`` beside
the DAGs), and one active-learning DAG per AL workflow of each; none without a projects file. A broken
entry shows as a DAG that says what is wrong, and the others still load (``zooflow.airflow.projects``).
Check the file without Airflow: ``zooflow projects check``."""

from __future__ import annotations

from pathlib import Path

from zooflow.airflow.projects import declare_project_dags

declare_project_dags(Path(__file__).parent, globals())

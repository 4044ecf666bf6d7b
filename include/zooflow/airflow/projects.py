"""The DAGs a projects file asks for, declared into the DAG file that reads it.

Each valid entry of the file (``zooflow.projects_file``) becomes an exports DAG on its own schedule and
one AL DAG per AL workflow; a broken entry becomes a DAG of the id it would have had, paused-looking
and manual, whose description and only task say what is wrong (file, entry, key, fix), so the team
sees the error where it looks for the DAG while every other entry's DAGs still load.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, dag

from zooflow.airflow.builders.active_learning import AL_DOC, build_al_dag
from zooflow.airflow.builders.exports import EXPORTS_DOC, build_exports_dag
from zooflow.airflow.operators.form import ProjectsFileErrorOperator
from zooflow.exports.slice_spec import SliceSpec
from zooflow.projects_file import ProjectsFile, load_projects, projects_path


FILE_ERRORS_DAG = "zooniverse_projects_file_errors"  # where errors no entry's DAG can show are shown


def projects_in_use(dags_folder: Path) -> bool:
    """Whether a projects file schedules the projects (then the generic DAGs are for ad hoc runs only)."""
    return projects_path(dags_folder) is not None


def declare_project_dags(dags_folder: Path, namespace: MutableMapping[str, Any]) -> ProjectsFile | None:
    """Build the projects file's DAGs and put each in ``namespace`` (the DAG file's globals)."""
    path = projects_path(dags_folder)
    if path is None:
        return None
    projects = load_projects(path)
    for entry in projects.entries:
        header = f"**{entry.project}**, entry {entry.index + 1} of `{path}`.\n\n"
        made = [build_exports_dag(entry.dag_id, dags_folder, schedule=entry.schedule, project=entry.project,
                                  conn_id=entry.conn_id, export_types=tuple(entry.exports), spec=_set_by_the_file(entry.slice),
                                  tags=(entry.project,), doc_md=header + EXPORTS_DOC,
                                  description=f"Exports of {entry.project} ({entry.schedule} UTC)")]
        made += [build_al_dag(al.dag_id, dags_folder, project=entry.project, config_path=al.config, cadence=al.cadence,
                              conn_id=entry.conn_id, tags=(entry.project,), doc_md=header + AL_DOC,
                              description=f"Active learning on workflow {al.workflow_id} of {entry.project} ({al.config.name})")
                 for al in entry.active_learning]
        namespace.update({made_dag.dag_id: made_dag for made_dag in made})
    homeless = []
    for error in projects.errors:
        message = "\n".join(error.lines())
        for dag_id in error.dag_ids:
            namespace[dag_id] = broken_dag(dag_id, message)
        if not error.dag_ids:  # the file itself, or an entry with no project to name a DAG after
            homeless.append(message)
    if homeless:
        namespace[FILE_ERRORS_DAG] = broken_dag(FILE_ERRORS_DAG, "\n".join(homeless))
    return projects


def _set_by_the_file(spec: SliceSpec) -> dict[str, Any]:
    """The slice settings the entry sets (those that differ from an empty spec): the form's defaults."""
    empty = SliceSpec().to_dict()
    return {key: value for key, value in spec.to_dict().items() if value != empty.get(key)}


def broken_dag(dag_id: str, message: str) -> DAG:
    """A manual DAG standing where an entry's DAG would be, saying what is wrong with the entry."""

    @dag(dag_id=dag_id, schedule=None, catchup=False, tags=["zooniverse", "config-error"],
         description=f"Not scheduled: {message}"[:1000],
         doc_md="### The projects file is broken here\n\n" + "\n".join(f"- {line}" for line in message.splitlines()),
         default_args={"owner": "zooflow", "retries": 0, "retry_delay": timedelta(0)})
    def broken():
        ProjectsFileErrorOperator(task_id="fix_the_projects_file", message=message)

    return broken()

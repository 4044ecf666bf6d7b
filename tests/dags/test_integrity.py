"""Every DAG file imports cleanly and every DAG says who owns it, how it retries and what it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from support.projects_files import write_projects

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p.name for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> DagBag:
    """Every DAG file, with a projects file so ``zooniverse_projects.py`` makes its DAGs too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOOFLOW_PROJECTS", str(write_projects(tmp_path_factory.mktemp("projects"))))
        return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dag_files_import_without_errors(dagbag: DagBag) -> None:
    assert DAG_FILES, "no DAG files found"
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("file_name", DAG_FILES)
def test_each_file_defines_a_dag(dagbag: DagBag, file_name: str) -> None:
    dags_in_file = [d for d in dagbag.dags.values() if d.fileloc.endswith(file_name)]
    assert dags_in_file, f"{file_name} defines no DAG"


def test_every_dag_has_tags_owner_retries_and_docs(dagbag: DagBag) -> None:
    assert dagbag.dags
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries} < 2"

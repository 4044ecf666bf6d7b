"""A DAG from the real dags/ folder, ready for ``dag.test()`` in a test that runs it more than once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG


def load_dag(dags_folder: Path, name: str) -> DAG:
    """A fresh DAG with retry delays cut to zero (the retries themselves stay).

    Fresh each time: dag.test() renders templated fields onto the task objects it runs, so a DAG
    object used twice would carry one run's Params into the next."""
    bag = DagBag(dag_folder=str(dags_folder / f"{name}.py"))
    assert bag.import_errors == {}
    dag = bag.dags[name]
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return dag

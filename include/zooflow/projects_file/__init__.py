"""The projects file: which projects and active-learning workflows one deployment schedules.

``load_projects`` reads and checks a file (each entry on its own); ``projects_path`` finds the one in
use; ``shorthand_projects`` is the ``ZOOFLOW_PROJECT`` / ``ZOOFLOW_AL_CONFIG`` one-entry form.
No Airflow here: the DAG files build their DAGs from what these return.
"""

from zooflow.projects_file.load import (
    deployment_projects, load_projects, projects_path, schedule_problem, schema, shorthand_projects,
)
from zooflow.projects_file.spec import (
    ALEntry, EntryError, Problem, ProjectEntry, ProjectsFile, al_dag_id, exports_dag_id, project_part,
)

__all__ = [
    "ALEntry", "EntryError", "Problem", "ProjectEntry", "ProjectsFile", "al_dag_id", "deployment_projects",
    "exports_dag_id", "load_projects", "project_part", "projects_path", "schedule_problem", "schema",
    "shorthand_projects",
]

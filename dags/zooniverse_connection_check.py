"""
### Zooniverse connection check

Logs in to Panoptes through the `zooniverse` connection and reports the project with each of its
workflows: subjects linked, subjects retired, completeness and classifications. Run it after
creating or changing the connection, or to see how far volunteers have got.

**Trigger** it by hand with the form: the project (slug `owner/name` or numeric id; the default comes
from the `ZOOFLOW_PROJECT` environment variable) and the connection id.

**Output**: the report in the task log, in XCom, and as JSON under the data root
(`$ZOOFLOW_DATA_ROOT/projects/<owner__name>/reports/connection_check/<run id>.json`).
A wrong slug or wrong credentials fail at once without retries; an unreachable server is retried.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from zooflow.airflow.operators.project import ProjectReportOperator
from zooflow.airflow.params import DEFAULT_PROJECT, admin_dag, conn_id_param


@dag(
    dag_id="zooniverse_connection_check",
    doc_md=__doc__,
    **admin_dag(
        project=Param(DEFAULT_PROJECT, type="string", title="Project",
                      description="Slug (owner/name, as in the project's URL) or numeric id."),
        conn_id=conn_id_param(),
    ),
)
def zooniverse_connection_check():
    ProjectReportOperator(
        task_id="project_report",
        project="{{ params.project }}",
        zooniverse_conn_id="{{ params.conn_id }}",
    )


zooniverse_connection_check()

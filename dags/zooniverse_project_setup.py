"""
### Zooniverse project setup

Creates a project with its first workflow and subject set — the founding "project initializer" as a
form. Each part is found before it is created, so a rerun creates nothing new.

1. The **project** (display name, description, language; private unless you untick it), found by its
   slug `<your login>/<name>` if it exists.
2. Its **workflow**, whose first task is a single-answer question with the form's answers.
3. The first **subject set**, uploaded from a manifest in panoptes-cli's layout: columns of media files
   (paths relative to the manifest's folder) or URLs, and metadata columns, where `#name` is hidden from
   everyone and `!name` from volunteers. It is linked to the workflow once every subject is in.

The manifest is checked before anything is created: files that are missing (all are listed; tick
*allow missing* to upload the rest), over the 1 MB upload limit, or outside the manifest's folder (`../`)
stop the run with nothing changed. **Dry run** (on by default) only reports what would be created.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag

from zooflow.airflow.operators.setup import ProjectSetupOperator
from zooflow.airflow.params import admin_dag, conn_id_param, dry_run_param

FIELDS = ("display_name", "description", "language", "private", "workflow_name", "question", "answers",
          "retirement_count", "manifest", "subject_set", "allow_missing")


@dag(
    dag_id="zooniverse_project_setup",
    doc_md=__doc__,
    **admin_dag(
        retry_delay=timedelta(seconds=30),
        display_name=Param("", type="string", minLength=1, title="Project name"),
        description=Param("", type="string", minLength=1, title="Description"),
        language=Param("en", type="string", title="Language"),
        private=Param(True, type="boolean", title="Private project"),
        workflow_name=Param("Classification", type="string", minLength=1, title="Workflow name"),
        question=Param("", type="string", minLength=1, title="Question"),
        answers=Param([], type="array", items={"type": "string"}, minItems=2, title="Answers"),
        retirement_count=Param(15, type="integer", minimum=1, maximum=1000, title="Retire a subject after (classifications)"),
        manifest=Param("", type="string", minLength=1, title="Manifest (CSV path on the workers)"),
        subject_set=Param("first batch", type="string", minLength=1, title="First subject set's name"),
        allow_missing=Param(False, type="boolean", title="Allow missing files (upload the rest)"),
        dry_run=dry_run_param("create the project, workflow and subject set, and upload"),
        conn_id=conn_id_param(),
    ),
)
def zooniverse_project_setup():
    ProjectSetupOperator(
        task_id="set_up_project",
        spec={field: "{{ params.%s }}" % field for field in FIELDS},
        dry_run="{{ params.dry_run }}",
        zooniverse_conn_id="{{ params.conn_id }}",
    )


zooniverse_project_setup()

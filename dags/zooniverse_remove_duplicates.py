"""
### Zooniverse: remove duplicate subjects

Keeps one subject per value of a metadata field (for example `filename`) in a subject set and unlinks
the others from the set. Subjects are unlinked, not deleted; subjects without the field are never removed.
The whole set is read before anything is unlinked, so no duplicate is skipped.

**Trigger** it by hand with the form: the subject set id, the metadata field, which subject of a group to
keep (`oldest` or `newest`; ties go to the lowest id), and **dry run** (on by default: nothing is changed,
the report lists what would be unlinked). Turn dry run off to unlink.

**Output**: the report (unique values, duplicates, removed, subjects missing the field, and per value the
kept and removed ids) in the task log, in XCom, and as JSON under the data root
(`$ZOOFLOW_DATA_ROOT/projects/<owner__name>/reports/remove_duplicates/<run id>.json`).
A bad subject set id or form value fails at once without retries.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag

from zooflow.airflow.operators.subjects import RemoveDuplicateSubjectsOperator
from zooflow.airflow.params import conn_id_param, dry_run_param


@dag(
    dag_id="zooniverse_remove_duplicates",
    schedule=None,
    catchup=False,
    tags=["zooniverse", "admin"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    default_args={"owner": "zooflow", "retries": 2, "retry_delay": timedelta(seconds=20)},
    params={
        "subject_set_id": Param(None, type=["null", "integer"], title="Subject set id",
                                description="The numeric id of the subject set to de-duplicate."),
        "field": Param("filename", type="string", minLength=1, title="Metadata field",
                       description="Subjects with the same value of this metadata key are duplicates."),
        "keep": Param("oldest", type="string", enum=["oldest", "newest"], title="Keep",
                      description="Which subject of each group stays in the set."),
        "dry_run": dry_run_param("unlink the duplicates from the set"),
        "conn_id": conn_id_param(),
    },
)
def zooniverse_remove_duplicates():
    RemoveDuplicateSubjectsOperator(
        task_id="remove_duplicates",
        subject_set_id="{{ params.subject_set_id }}",
        field="{{ params.field }}",
        keep="{{ params.keep }}",
        dry_run="{{ params.dry_run }}",
        zooniverse_conn_id="{{ params.conn_id }}",
    )


zooniverse_remove_duplicates()

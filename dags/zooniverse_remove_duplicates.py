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

from airflow.sdk import Param, dag

from zooflow.airflow.operators.subjects import RemoveDuplicateSubjectsOperator
from zooflow.airflow.params import from_form, subject_set_admin_dag

SETTINGS = subject_set_admin_dag(
    which_set="to de-duplicate",
    dry_run_does="unlink the duplicates from the set",
    field=Param("filename", type="string", minLength=1, title="Metadata field",
                description="Subjects with the same value of this metadata key are duplicates."),
    keep=Param("oldest", type="string", enum=["oldest", "newest"], title="Keep",
               description="Which subject of each group stays in the set."),
)


@dag(dag_id="zooniverse_remove_duplicates", doc_md=__doc__, **SETTINGS)
def zooniverse_remove_duplicates():
    RemoveDuplicateSubjectsOperator(task_id="remove_duplicates", **from_form(SETTINGS["params"]))


zooniverse_remove_duplicates()

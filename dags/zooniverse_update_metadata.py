"""
### Zooniverse: update subject metadata from a CSV

Matches the rows of a CSV to the subjects of a subject set (`COLUMN=KEY`: the CSV column and the metadata
key with the same text) and updates their metadata. `merge` (default) adds or changes the row's other
columns and keeps every other key; `replace` makes the metadata exactly the row's other columns plus the
match key. A match value on more than one CSV row is an error; nothing is changed.

**Trigger** it by hand with the form: the subject set id, the CSV path (UTF-8, readable by the worker),
the match, the mode, and **dry run** (on by default: nothing is saved, the report shows every subject's
diff). Turn dry run off to save; subjects already up to date are not saved.

**Output**: the report (per subject: keys added, changed old → new, removed; CSV rows that matched no
subject; subjects no row matched) in the task log, in XCom, and as JSON under the data root
(`$ZOOFLOW_DATA_ROOT/projects/<owner__name>/reports/update_metadata/<run id>.json`).
A missing CSV, a missing column, a bad match or an unknown subject set fails at once without retries.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from zooflow.airflow.operators.subjects import UpdateSubjectMetadataOperator
from zooflow.airflow.params import from_form, subject_set_admin_dag

SETTINGS = subject_set_admin_dag(
    which_set="whose subjects are updated",
    dry_run_does="save the changes shown in the diff",
    csv_path=Param("", type="string", title="CSV path",
                   description="A UTF-8 CSV with a header row, on a path the worker can read."),
    match=Param("filename=filename", type="string", title="Match (COLUMN=KEY)",
                description="The CSV column and the metadata key it matches."),
    mode=Param("merge", type="string", enum=["merge", "replace"], title="Mode",
               description="merge: add/change the CSV's keys, keep the rest; replace: the row becomes the metadata."),
)


@dag(dag_id="zooniverse_update_metadata", doc_md=__doc__, **SETTINGS)
def zooniverse_update_metadata():
    UpdateSubjectMetadataOperator(task_id="update_metadata", **from_form(SETTINGS["params"]))


zooniverse_update_metadata()

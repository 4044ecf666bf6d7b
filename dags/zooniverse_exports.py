"""
### Zooniverse exports

Requests the project's exports, waits for Panoptes to build them, downloads them, and cuts them
into daily slices — the founding "generate, download and slice" scripts as one daily DAG.

For each export type (classifications, subjects, workflows):

1. **request** — asks for a fresh export only when Panoptes' rate limiter will run it: 24 hours after the
   last attempt zooflow knows of (its own, recorded on Panoptes' clock, and a teammate's it can see), since a
   refused request is dropped silently and still counts; until then it uses the existing export and logs
   when it will ask again;
2. **wait** — waits in the triggerer until the export is ready and newer than the request. It stops at
   once when Panoptes marks the export `failed` (a dead job, marked by its 00:00/12:00 UTC cleanup), and
   gives up after `wait_timeout_minutes` if it stays `creating`; either message says what happened, when a
   new request will be allowed, and that the last good download and its slices are kept. Where no triggerer
   runs, set `AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=False`: the wait then pokes in reschedule mode, freeing its worker
   slot between looks;
3. **download** — streams the gzip file, resuming after dropped connections, verifies it, and
   renames it into place (the last good file is never lost; an unchanged export is not fetched again);
4. **slice** — keeps the rows the slice spec asks for, one `created_date=YYYY-MM-DD` partition per
   day (CSV and Parquet), quarantining malformed rows with their line numbers;
5. **flatten** (classifications) — one row per classification and task.

**Runs.** A first step, **check_form**, builds the slice spec the form asks for and fails at once
(before any request) on a bad one: a `since` not before its `until`, a spec file that is not there.
The daily run slices its data interval (the previous UTC day). A manual run slices what
the form asks (no window by default). The form's `spec_file` is the name of a YAML file in the config
folder (`$ZOOFLOW_CONFIG_DIR`, default `config/` in the DAGs folder), never a path. A backfill (`airflow backfill create --dag-id zooniverse_exports
--from-date ... --to-date ...`) re-slices each past date from the latest download and requests nothing.

**Outputs** under `$ZOOFLOW_DATA_ROOT/projects/<owner__name>/`: `exports/`, `slices/<type>/`, `flat/`,
a JSON slice report per run in `reports/`, and an HTML export report
(`reports/export-report/<run id>.html`: classifications per day and per workflow, the slice report),
linked from the Airflow UI's Zooniverse page and the run's Zooniverse tab. Each slice emits an Asset
event on `zooniverse://<owner>/<name>/<type>`, which the active-learning DAG schedules on.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import Param, TaskGroup, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from zooflow.airflow.operators.export import (
    DownloadExportOperator,
    FlattenClassificationsOperator,
    RequestExportOperator,
    SliceExportOperator,
)
from zooflow.airflow.operators.form import CheckSliceFormOperator
from zooflow.airflow.params import common_params, config_file_param, default_deferrable, optional_choice, wait_settings
from zooflow.config_dir import SLICE_SPEC
from zooflow.exports.slice_spec import ROW_CHOICES
from zooflow.airflow.sensors.export import ExportReadySensor

EXPORT_TYPES = ("classifications", "subjects", "workflows")
SLICED = ("classifications", "subjects")
# An ISO date or datetime (UTC unless it has a zone): 2025-01-31, 2025-01-31T12:00:00Z.
INSTANT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z| ?UTC|[+-]\d{2}:?\d{2})?$"
COMMON = {
    "project": "{{ params.project }}",
    "resource": "{{ params.resource }}",
    "resource_id": "{{ params.resource_id }}",
    "zooniverse_conn_id": "{{ params.conn_id }}",
}


@dag(
    dag_id="zooniverse_exports",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["zooniverse", "exports"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    default_args={"owner": "zooflow", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params=common_params(wait_minutes=360) | {
        "export_types": Param(list(EXPORT_TYPES), type="array", items={"type": "string", "enum": list(EXPORT_TYPES)},
                              minItems=1, uniqueItems=True, title="Export types", examples=list(EXPORT_TYPES)),
        "resource": Param("project", type="string", enum=["project", "workflow", "subject_set"],
                          title="Export of", description="A workflow or subject set has only a classifications export."),
        "resource_id": Param(None, type=["null", "integer"], minimum=1, title="Workflow or subject set id",
                             description="Needed for a workflow or subject set export; empty for the project."),
        "request_new": Param(True, type="boolean", title="Request a new export",
                             description="Off: re-slice the last download and ask Panoptes for nothing."),
        "spec_file": config_file_param(SLICE_SPEC, Path(__file__).parent, title="Slice spec file (YAML)",
                                       empty="none: the fields below only"),
        "workflow_ids": Param([], type=["null", "array"], items={"type": "integer", "minimum": 1}, title="Workflow ids",
                              description="Empty: every workflow (or the spec file's)."),
        "min_workflow_version": Param(None, type=["null", "string"], pattern=r"^\d+(\.\d+)?$", title="Minimum workflow version",
                                      description="MAJOR.MINOR, e.g. 13.19. Empty: any version (or the spec file's)."),
        "subject_ids": Param([], type=["null", "array"], items={"type": "string", "pattern": r"^\d+(-\d+)?$"},
                             title="Subject id ranges (A-B)", description="One per line. Empty: every subject (or the spec file's)."),
        "subject_set_ids": Param([], type=["null", "array"], items={"type": "integer", "minimum": 1},
                                 title="Subject set ids (subject export)", description="Empty: every subject set (or the spec file's)."),
        "since": Param(None, type=["null", "string"], pattern=INSTANT, title="created_at from (UTC, inclusive)",
                       description="2025-01-31 or 2025-01-31T12:00:00Z; before `until`. Empty: no lower bound "
                                   "(a scheduled run slices its own day)."),
        "until": Param(None, type=["null", "string"], pattern=INSTANT, title="created_at until (UTC, exclusive)",
                       description="After `since`. Empty: no upper bound (a scheduled run slices its own day)."),
        "gold": optional_choice(list(ROW_CHOICES), empty="the spec file's, else exclude", title="Gold-standard rows"),
        "expert": optional_choice(list(ROW_CHOICES), empty="the spec file's, else include", title="Expert rows"),
    },
)
def zooniverse_exports():
    spec = {
        key: "{{ params.%s }}" % key
        for key in ("workflow_ids", "min_workflow_version", "subject_ids", "subject_set_ids", "since", "until", "gold", "expert")
    }
    check = CheckSliceFormOperator(task_id="check_form", spec=spec, spec_file="{{ params.spec_file }}")
    for export_type in EXPORT_TYPES:
        with TaskGroup(group_id=export_type):
            request = RequestExportOperator(
                task_id="request", export_type=export_type, export_types="{{ params.export_types }}",
                request_new="{{ params.request_new }}", deferrable=default_deferrable(), **COMMON,
            )
            wait = ExportReadySensor(task_id="wait", request=request.output, **wait_settings())
            download = DownloadExportOperator(task_id="download", export_type=export_type, request=request.output, **COMMON)
            check >> request >> wait >> download
            if export_type in SLICED:
                sliced = SliceExportOperator(
                    task_id="slice", export_type=export_type, spec=spec, spec_file="{{ params.spec_file }}", **COMMON,
                )
                download >> sliced
                if export_type == "classifications":
                    sliced >> FlattenClassificationsOperator(task_id="flatten", slice_report=sliced.output, **COMMON)


zooniverse_exports()

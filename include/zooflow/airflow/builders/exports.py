"""The exports DAG, built for one project (an entry of the projects file) or for ad hoc runs.

``build_exports_dag`` makes the DAG that ``dags/zooniverse_exports.py`` (the generic one) and
``dags/zooniverse_projects.py`` (one per project of the projects file) declare: the same tasks, with the
project's schedule and its values as the form's defaults.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, dag

from zooflow.airflow.operators.export import (
    DownloadExportOperator,
    FlattenClassificationsOperator,
    RequestExportOperator,
    SliceExportOperator,
)
from zooflow.airflow.operators.form import CheckSliceFormOperator
from zooflow.airflow.params import (
    common_params, config_file_param, default_deferrable, optional_choice, pipeline_dag, wait_settings,
)
from zooflow.airflow.sensors.export import ExportReadySensor
from zooflow.config_dir import SLICE_SPEC
from zooflow.exports.slice_spec import ROW_CHOICES

EXPORTS_DOC = """
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
3. **download** — streams the gzip file, resuming after dropped connections, checks its length, and
   renames it into place (the last good file is never lost; an unchanged export is not fetched again).
   The workflows export's gzip is checked as it arrives; the others' by their slice, which inflates them anyway;
4. **slice** — keeps the rows the slice spec asks for, one `created_date=YYYY-MM-DD` partition per
   day (CSV and Parquet), quarantining malformed rows with their line numbers. Its read checks the new
   download's gzip (CRC and length): only then does `latest.json` name it; a damaged one is removed, the
   last good download and slices are kept, and the next run downloads it again;
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

EXPORT_TYPES = ("classifications", "subjects", "workflows")
SLICED = ("classifications", "subjects")
# An ISO date or datetime (UTC unless it has a zone): 2025-01-31, 2025-01-31T12:00:00Z.
INSTANT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z| ?UTC|[+-]\d{2}:?\d{2})?$"
SPEC_KEYS = ("workflow_ids", "min_workflow_version", "subject_ids", "subject_set_ids", "since", "until", "gold", "expert")
COMMON = {
    "project": "{{ params.project }}",
    "resource": "{{ params.resource }}",
    "resource_id": "{{ params.resource_id }}",
    "zooniverse_conn_id": "{{ params.conn_id }}",
}


def exports_params(dags_folder: Path, *, project: str, conn_id: str, export_types: tuple[str, ...] = EXPORT_TYPES,
                   spec: dict[str, Any] | None = None) -> dict[str, Param]:
    """The exports form, its defaults the project's (a projects-file entry's ``exports`` and ``slice``)."""
    spec = spec or {}
    return common_params(wait_minutes=360, project=project, conn_id=conn_id) | {
        "export_types": Param(list(export_types), type="array", items={"type": "string", "enum": list(EXPORT_TYPES)},
                              minItems=1, uniqueItems=True, title="Export types", examples=list(EXPORT_TYPES)),
        "resource": Param("project", type="string", enum=["project", "workflow", "subject_set"],
                          title="Export of", description="A workflow or subject set has only a classifications export."),
        "resource_id": Param(None, type=["null", "integer"], minimum=1, title="Workflow or subject set id",
                             description="Needed for a workflow or subject set export; empty for the project."),
        "request_new": Param(True, type="boolean", title="Request a new export",
                             description="Off: re-slice the last download and ask Panoptes for nothing."),
        "spec_file": config_file_param(SLICE_SPEC, dags_folder, title="Slice spec file (YAML)",
                                       empty="none: the fields below only"),
        "workflow_ids": Param(spec.get("workflow_ids", []), type=["null", "array"], items={"type": "integer", "minimum": 1},
                              title="Workflow ids", description="Empty: every workflow (or the spec file's)."),
        "min_workflow_version": Param(spec.get("min_workflow_version"), type=["null", "string"], pattern=r"^\d+(\.\d+)?$",
                                      title="Minimum workflow version",
                                      description="MAJOR.MINOR, e.g. 13.19. Empty: any version (or the spec file's)."),
        "subject_ids": Param(spec.get("subject_ids", []), type=["null", "array"],
                             items={"type": "string", "pattern": r"^\d+(-\d+)?$"}, title="Subject id ranges (A-B)",
                             description="One per line. Empty: every subject (or the spec file's)."),
        "subject_set_ids": Param(spec.get("subject_set_ids", []), type=["null", "array"],
                                 items={"type": "integer", "minimum": 1}, title="Subject set ids (subject export)",
                                 description="Empty: every subject set (or the spec file's)."),
        "since": Param(spec.get("since"), type=["null", "string"], pattern=INSTANT, title="created_at from (UTC, inclusive)",
                       description="2025-01-31 or 2025-01-31T12:00:00Z; before `until`. Empty: no lower bound "
                                   "(a scheduled run slices its own day)."),
        "until": Param(spec.get("until"), type=["null", "string"], pattern=INSTANT, title="created_at until (UTC, exclusive)",
                       description="After `since`. Empty: no upper bound (a scheduled run slices its own day)."),
        "gold": optional_choice(list(ROW_CHOICES), empty="the spec file's, else exclude", default=spec.get("gold"),
                                title="Gold-standard rows"),
        "expert": optional_choice(list(ROW_CHOICES), empty="the spec file's, else include", default=spec.get("expert"),
                                  title="Expert rows"),
    }


def build_exports_dag(dag_id: str, dags_folder: Path, *, schedule: str | None, project: str,
                      conn_id: str = "zooniverse_default", export_types: tuple[str, ...] = EXPORT_TYPES,
                      spec: dict[str, Any] | None = None, tags: tuple[str, ...] = (), doc_md: str = EXPORTS_DOC,
                      description: str | None = None) -> DAG:
    """The exports DAG: daily (or ``schedule``, a cron expression or preset, UTC) when given one."""

    @dag(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC") if schedule else None,
        **pipeline_dag(kind="exports", tags=tags, doc_md=doc_md, description=description,
                       retry_delay=timedelta(minutes=2),
                       params=exports_params(dags_folder, project=project, conn_id=conn_id, export_types=export_types,
                                             spec=spec)),
    )
    def exports():
        spec_fields = {key: "{{ params.%s }}" % key for key in SPEC_KEYS}
        check = CheckSliceFormOperator(task_id="check_form", spec=spec_fields, spec_file="{{ params.spec_file }}")
        for export_type in EXPORT_TYPES:
            with TaskGroup(group_id=export_type):
                request = RequestExportOperator(
                    task_id="request", export_type=export_type, export_types="{{ params.export_types }}",
                    request_new="{{ params.request_new }}", deferrable=default_deferrable(), **COMMON,
                )
                wait = ExportReadySensor(task_id="wait", request=request.output, **wait_settings())
                # What the DAG slices is checked by its slice, which inflates it anyway; the rest as it arrives.
                download = DownloadExportOperator(task_id="download", export_type=export_type, request=request.output,
                                                  defer_check=export_type in SLICED, **COMMON)
                check >> request >> wait >> download
                if export_type in SLICED:
                    sliced = SliceExportOperator(task_id="slice", export_type=export_type, spec=spec_fields,
                                                 spec_file="{{ params.spec_file }}", download=download.output, **COMMON)
                    download >> sliced
                    if export_type == "classifications":
                        sliced >> FlattenClassificationsOperator(task_id="flatten", slice_report=sliced.output, **COMMON)

    return exports()

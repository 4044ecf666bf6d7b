"""What every zooflow DAG's form and deployment settings share, defined once."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Param, conf

from zooflow.config_dir import ConfigKind, config_dir, config_names, resolve_config

DEFAULT_PROJECT = os.environ.get("ZOOFLOW_PROJECT", "")


def default_deferrable() -> bool:
    """Airflow's own ``[operators] default_deferrable``, as its providers read it: where no triggerer
    runs, ``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=False`` makes waits reschedule instead. Airflow's
    default is False; zooflow's environments (``airflow_env``, ``celery.env``) set True. Called at
    each DAG parse, not once per process, so a dag-processor sees a changed setting."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def as_bool(value: Any) -> bool:
    """A templated boolean argument as a bool: a form's boolean Param reaches an operator as True or
    False, or as the text "True"/"False" when the DAG renders templates to strings. Text that names
    no truth value is refused rather than guessed (a "dry run" read wrongly would change data)."""
    if not isinstance(value, str):
        return bool(value)
    word = value.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def conn_id_param(default: str = "zooniverse_default") -> Param:
    return Param(default, type="string", title="Connection id", description="An Airflow connection of type Zooniverse.")


def dry_run_param(what_it_does: str) -> Param:
    """Admin forms start in dry run: a change to volunteers' data is made only when asked for."""
    return Param(True, type="boolean", title="Dry run", description=f"On: only report. Off: {what_it_does}.")


def admin_dag(*, retry_delay: timedelta = timedelta(seconds=20), **params: Param) -> dict[str, Any]:
    """The ``@dag`` settings every admin DAG shares, besides its id and docs: triggered by hand from
    its form (``params``), tagged admin, two retries, and templates rendered to native values so the
    form's integers, booleans and lists reach the operator as such."""
    return {
        "schedule": None,
        "catchup": False,
        "tags": ["zooniverse", "admin"],
        "render_template_as_native_obj": True,
        "default_args": {"owner": "zooflow", "retries": 2, "retry_delay": retry_delay},
        "params": params,
    }


def pipeline_dag(*, kind: str, tags: tuple[str, ...], doc_md: str, description: str | None, retry_delay: timedelta,
                 params: dict[str, Param]) -> dict[str, Any]:
    """The ``@dag`` settings the exports and AL DAGs share, besides id and schedule: one run at a time, no
    catch-up, tagged with their ``kind`` (and the project), two retries, native rendering of the form."""
    return {
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["zooniverse", kind, *tags],
        "doc_md": doc_md,
        "description": description,
        "render_template_as_native_obj": True,
        "default_args": {"owner": "zooflow", "retries": 2, "retry_delay": retry_delay},
        "params": params,
    }


def subject_set_admin_dag(*, which_set: str, dry_run_does: str, **fields: Param) -> dict[str, Any]:
    """``admin_dag`` for a DAG that changes the subjects of one set: the set's id first, the DAG's
    own ``fields``, then dry run, on, and the connection (``from_form`` passes them on)."""
    return admin_dag(
        subject_set_id=Param(None, type=["null", "integer"], title="Subject set id",
                             description=f"The numeric id of the subject set {which_set}."),
        **fields,
        dry_run=dry_run_param(dry_run_does),
        conn_id=conn_id_param(),
    )


def from_form(params: dict[str, Param]) -> dict[str, str]:
    """Keyword arguments for an operator that takes every field of its form: one a field, each the
    template of the field's value (``conn_id`` fills ``zooniverse_conn_id``), so the field list is
    written once, in the form."""
    return {"zooniverse_conn_id" if name == "conn_id" else name: "{{ params.%s }}" % name for name in params}


def optional_choice(choices: list[str], *, empty: str, default: str | None = None, **kwargs: Any) -> Param:
    """A drop-down whose empty choice reads ``empty`` (Airflow shows a bare None as "null")."""
    return Param(default, type=["null", "string"], enum=[None, *choices], values_display={"null": empty}, **kwargs)


def config_file_param(kind: ConfigKind, dags_folder: Path, *, empty: str, **kwargs: Any) -> Param:
    """A form field naming a YAML file in the config folder (``zooflow.config_dir``): a drop-down of
    the files there when the DAG is parsed, else a file name the run checks."""
    folder = config_dir(dags_folder)
    names = config_names(folder)
    if names:
        return optional_choice(names, empty=empty, description=f"A {kind.what} file in {folder}.", **kwargs)
    return Param(None, type=["null", "string"], pattern=r"^[^./\\][^/\\]*\.(yaml|yml)$",
                 description=f"The file name of a {kind.what} in {folder} (it holds none yet: add the YAML "
                             f"file there). Empty: {empty}.", **kwargs)


def form_file(task: BaseOperator, name: str | None, kind: ConfigKind) -> Path | None:
    """The file a task's form value names, resolved in the config folder of the task's DAG (the same
    folder ``config_file_param`` offered), refused if it leads elsewhere; nothing is read."""
    return resolve_config(name, kind, dags_folder=Path(task.dag.fileloc).parent)


def common_params(*, wait_minutes: float, project: str = DEFAULT_PROJECT,
                  conn_id: str = "zooniverse_default") -> dict[str, Param]:
    """The project, the connection, and how long and how often a wait on Panoptes looks."""
    return {
        "project": Param(project, type="string", title="Project",
                         description="Slug (owner/name, as in the project's URL) or numeric id."),
        "wait_timeout_minutes": Param(wait_minutes, type="number", exclusiveMinimum=0, maximum=7 * 24 * 60,
                                      title="Give up waiting after (minutes)"),
        "poll_seconds": Param(60, type="integer", minimum=1, maximum=3600, title="Look again every (seconds)"),
        "conn_id": conn_id_param(conn_id),
    }


def wait_settings() -> dict[str, Any]:
    """Sensor arguments that take the form's wait values."""
    return {
        "zooniverse_conn_id": "{{ params.conn_id }}",
        "deferrable": default_deferrable(),
        "wait_timeout_seconds": "{{ params.wait_timeout_minutes * 60 }}",
        "poll_seconds": "{{ params.poll_seconds }}",
    }

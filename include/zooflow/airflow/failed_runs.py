"""Recent failed runs of the zooflow DAGs, with the failing task and its exception line, for the Zooniverse page.

The rest of the page reads the data root, where a run that failed leaves nothing, so the page kept
looking healthy while every export failed. A failure lives only in Airflow's metadata (the run's and
its task instances' states) and in the failing task's log, where the exception is a structured record
(``error_detail``: type, message, frames). :func:`recent_failed_runs` reads both inside the api-server,
the way the UI's own REST API does; :func:`error_line` and :func:`render_failed_runs` are plain Python,
so they are tested without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from zooflow.catalog import format_ago
from zooflow.reports.html import render

LIMIT = 10
NO_ERROR = "no exception in the task's log (see the task's log in the UI)"


@dataclass(frozen=True)
class FailedRun:
    dag_id: str
    run_id: str
    failed_at: datetime | None
    task_id: str | None  # None when no task failed (the run timed out, or was marked failed by hand)
    try_number: int | None
    error: str


def error_line(messages: Iterable[Any]) -> str | None:
    """``Type: message`` of the last exception a task's structured log records (its first line), or None.

    Messages are Airflow's ``StructuredLogMessage`` objects (exception under ``error_detail``, a list
    with the raised exception first and its causes after) or plain dicts of the same fields.
    """
    found = None
    for message in messages:
        fields = message if isinstance(message, Mapping) else {**(getattr(message, "model_extra", None) or {})}
        detail = fields.get("error_detail")
        if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
            raised = detail[0]
            text = str(raised.get("exc_value") or "").strip().splitlines()
            found = f"{raised.get('exc_type', 'Exception')}: {text[0] if text else ''}".rstrip(": ")
    return found


def recent_failed_runs(dag_ids: Iterable[str], limit: int = LIMIT) -> list[FailedRun]:
    """The newest failed runs of ``dag_ids`` with their first failed task's exception; needs Airflow's database."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id.in_(list(dag_ids)), DagRun.state == DagRunState.FAILED)
                               .order_by(DagRun.end_date.desc().nulls_last()).limit(limit)).all()
        failed = []
        for run in runs:
            task = session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id,
                TaskInstance.state == TaskInstanceState.FAILED).order_by(TaskInstance.end_date)).first()
            error = (_task_error(task) or NO_ERROR) if task else "no task failed: the run timed out or was marked failed"
            failed.append(FailedRun(run.dag_id, run.run_id, run.end_date, task.task_id if task else None,
                                    task.try_number if task else None, error))
    return failed


def _task_error(task: Any) -> str | None:
    """The exception line of the task's last try, read through Airflow's configured task log handler."""
    from airflow.utils.log.log_reader import TaskLogReader

    try:
        messages, _ = TaskLogReader().read_log_chunks(task, task.try_number, {})
        return error_line(messages)
    except Exception:  # noqa: BLE001 - a log that cannot be read must not hide the failure itself
        return None


def render_failed_runs(runs: list[FailedRun], now: datetime) -> Markup:
    """The page's "Failed runs" section (escaped HTML), or a line saying there are none.

    Runs are named, not linked: the UI shows this page in a sandboxed frame that may not navigate the
    whole window, and the Airflow UI opened inside its own frame would be confusing.
    """
    return Markup(render("failed_runs.html.j2", runs=runs, now=now, ago_text=format_ago))

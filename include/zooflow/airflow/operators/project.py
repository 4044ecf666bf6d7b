"""Operators that read a project's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.storage import data_store
from zooflow.files import atomic_write_json
from zooflow.projects import find_project, format_report, project_report


class ProjectReportOperator(PanoptesHookMixin, BaseOperator):
    """Log in, find the project, and report its workflows with their retirement counts.

    The report is logged, written as JSON under the data root, and returned (to XCom); it holds
    no credentials.
    """

    template_fields: Sequence[str] = ("project", "zooniverse_conn_id")
    ui_color = "#e7f3f1"

    def __init__(self, *, project: str, zooniverse_conn_id: str = PanoptesHook.default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.project = project
        self.zooniverse_conn_id = zooniverse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            with self.hook.get_conn():
                report = project_report(find_project(self.project))
        for line in format_report(report):
            self.log.info("%s", line)
        store = data_store()
        path = atomic_write_json(store.root.report(report["project"]["slug"], "connection_check", context["run_id"]), report)
        store.push(path)
        self.log.info("Report written to %s", store.url(path))
        return report

"""Operators that tidy a subject set: remove duplicates, update metadata from a CSV.

Both plan first and change nothing unless ``dry_run`` is false; the report (the plan, or what was done)
is logged, written as JSON under the data root, and returned to XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import as_bool
from zooflow.airflow.storage import data_store
from zooflow.files import atomic_write_json


class _SubjectAdminOperator(PanoptesHookMixin, BaseOperator):
    ui_color = "#f3ece7"
    report_kind = ""

    def _write(self, report: dict[str, Any], lines: list[str], context: Any) -> dict[str, Any]:
        for line in lines:
            self.log.info("%s", line)
        store = data_store()
        path = atomic_write_json(store.root.report(report["project"], self.report_kind, context["run_id"]), report)
        store.push(path)
        self.log.info("Report written to %s", store.url(path))
        return report


class RemoveDuplicateSubjectsOperator(_SubjectAdminOperator):
    """Keep one subject per value of a metadata field; unlink the others from the set unless ``dry_run``."""

    template_fields: Sequence[str] = ("subject_set_id", "field", "keep", "dry_run", "zooniverse_conn_id")
    report_kind = "remove_duplicates"

    def __init__(self, *, subject_set_id: Any, field: str, keep: str = "oldest", dry_run: Any = True,
                 zooniverse_conn_id: str = PanoptesHook.default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.subject_set_id = subject_set_id
        self.field = field
        self.keep = keep
        self.dry_run = dry_run
        self.zooniverse_conn_id = zooniverse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from zooflow.subjects.dedupe import apply_dedupe, format_dedupe, plan_dedupe

        with fail_fast_on_bad_config():
            with self.hook.get_conn():
                plan = plan_dedupe(self.subject_set_id, self.field, keep=self.keep)
                report = plan.report() if as_bool(self.dry_run) else apply_dedupe(plan)
        return self._write(report, format_dedupe(report), context)


class UpdateSubjectMetadataOperator(_SubjectAdminOperator):
    """Merge (or replace) subjects' metadata from a CSV matched by COLUMN=KEY; saves nothing if ``dry_run``."""

    template_fields: Sequence[str] = ("subject_set_id", "csv_path", "match", "mode", "dry_run", "zooniverse_conn_id")
    report_kind = "update_metadata"

    def __init__(self, *, subject_set_id: Any, csv_path: str, match: str, mode: str = "merge", dry_run: Any = True,
                 zooniverse_conn_id: str = PanoptesHook.default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.subject_set_id = subject_set_id
        self.csv_path = csv_path
        self.match = match
        self.mode = mode
        self.dry_run = dry_run
        self.zooniverse_conn_id = zooniverse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from zooflow.subjects.metadata import apply_metadata_update, format_metadata, plan_metadata_update

        with fail_fast_on_bad_config():
            with self.hook.get_conn():
                plan = plan_metadata_update(self.subject_set_id, self.csv_path, self.match, mode=self.mode)
                report = plan.report() if as_bool(self.dry_run) else apply_metadata_update(plan)
        return self._write(report, format_metadata(report), context)

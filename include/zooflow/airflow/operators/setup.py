"""The operator behind the project-setup DAG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import as_bool
from zooflow.airflow.storage import data_store
from zooflow.files import atomic_write_json
from zooflow.paths import safe_name
from zooflow.project_setup import ProjectSpec, plan_setup, setup_project


class ProjectSetupOperator(PanoptesHookMixin, BaseOperator):
    """Create (or find) a project, its question workflow and its first subject set from a manifest.

    With ``dry_run`` it only reports what would be created. The report is logged, written under the
    data root and returned.
    """

    template_fields: Sequence[str] = ("spec", "dry_run", "zooniverse_conn_id")

    def __init__(self, *, spec: dict[str, Any], dry_run: bool | str = True,
                 zooniverse_conn_id: str = PanoptesHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.dry_run = dry_run
        self.zooniverse_conn_id = zooniverse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            spec = ProjectSpec(**(self.spec | {"manifest": Path(self.spec["manifest"]),
                                               "answers": tuple(self.spec["answers"])}))
            store = data_store()
            root = store.root
            with self.hook.get_conn():
                if as_bool(self.dry_run):
                    report = {"dry_run": True} | plan_setup(spec)
                else:
                    journal = root.project_dir(safe_name(spec.display_name)) / "setup" / f"{safe_name(spec.subject_set)}.jsonl"
                    store.pull(journal)  # what an earlier try uploaded
                    try:
                        report = {"dry_run": False} | setup_project(spec, journal)
                    finally:
                        store.push(journal)
        self.log.info("Project setup%s: %s", " (dry run)" if report["dry_run"] else "", report)
        path = atomic_write_json(root.report(safe_name(spec.display_name), "project_setup", context["run_id"]), report)
        store.push(path)
        self.log.info("Report written to %s", store.url(path))
        return report

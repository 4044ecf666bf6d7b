"""Operators for the active-learning round: plan, pull the classifications, select, upload.

Thin shells over ``zooflow.al.steps``, the sequence ``zooflow al round`` runs too: they read the
project's AL config (a file the form names in the config folder, else ``$ZOOFLOW_AL_CONFIG``:
``zooflow.config_dir``; the form's values on top), pass the task's data store (a remote data root is
mirrored in the worker's cache: ``zooflow.airflow.storage``), and hand back JSON-ready values (never
credentials) for XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException
from panoptes_client import Workflow

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import as_bool, form_file
from zooflow.airflow.storage import data_store
from zooflow.al.retire import retire_step
from zooflow.al.round import RoundConfig, Selection
from zooflow.al.settings import run_overrides
from zooflow.al.steps import plan_round, pull_step, select_step, upload_step
from zooflow.config_dir import AL_CONFIG
from zooflow.progress import ProgressLog, timed
from zooflow.projects import find_project, project_workflow


class RoundSettingsMixin:
    """The round's settings as a task reads them: the AL config file the projects file names
    (``config_path``), else the one the form chose (else ``$ZOOFLOW_AL_CONFIG``), with the form's
    values on top."""

    config: str | None
    config_path: str | None
    overrides: dict[str, Any] | None

    def round_config(self) -> RoundConfig:
        path = self.config_path or form_file(self, self.config, AL_CONFIG)
        return RoundConfig.load(path, run_overrides(self.overrides))


class _RoundOperator(PanoptesHookMixin, RoundSettingsMixin, BaseOperator):
    template_fields: Sequence[str] = ("project", "config", "overrides", "zooniverse_conn_id")

    def __init__(self, *, project: str, config: str | None, overrides: dict[str, Any] | None = None,
                 config_path: str | None = None, zooniverse_conn_id: str = PanoptesHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.config = config
        self.config_path = config_path
        self.overrides = overrides
        self.zooniverse_conn_id = zooniverse_conn_id


class PlanRoundOperator(_RoundOperator):
    """Check the settings, and say which round comes next and which batch must be retired first.

    The workflow must be one of the project's: a wrong id fails here, before any round is written,
    not at upload. A rerun of a run that already chose a round (Airflow's "Clear") plans that round
    again with no batch to wait for: the first try waited already, and in "counts" mode the workflow's
    counters now include the round's own new batch, so waiting again would not end.

    Pushes ``workflow_id``, ``current_batch_sets``, ``batch_subjects``, ``expected_subjects``,
    ``retirement_mode`` and ``refill_below`` as XCom keys for the sensor.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            config = self.round_config()
            with self.hook.get_conn():
                project_workflow(find_project(self.project), config.workflow_id,
                                 setting=f"workflow_id in the active-learning config {self.config or '$ZOOFLOW_AL_CONFIG'}")
            plan = plan_round(data_store(), self.project, config, context["run_id"])
        for key in ("workflow_id", "current_batch_sets", "batch_subjects", "expected_subjects", "retirement_mode",
                    "refill_below"):
            context["ti"].xcom_push(key=key, value=plan[key])
        self.log.info("Round %d%s%s; batch to wait for: %s", plan["round"], " (chosen by this run already)" if plan["rerun"] else "",
                      " (resuming)" if plan["resuming"] else "",
                      plan["current_batch_sets"] or "none (first round, resuming, or a rerun)")
        return plan


class PullClassificationsOperator(_RoundOperator):
    """Bring the workflow's classifications made since the last pull into the data root's store, once
    the batch is retired and before the round selects, so the batch's labels are all used at once (the
    daily export stays the archive). Returns the pull's report: fetched, total, last_id."""

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            config = self.round_config()
            with self.hook.get_conn():
                report = pull_step(data_store(), self.project, config, project_id=int(find_project(self.project).id),
                                   workflow=Workflow.find(config.workflow_id))
        for line in report.summary_lines():
            self.log.info("%s", line)
        return report.to_dict()


class RetireEarlyOperator(_RoundOperator):
    """Retire (or, in a dry run, list) the uploaded subjects whose label is already clear at the AL
    config's ``retire_confidence`` (``zooflow.al.retire``); nothing to do without that setting.

    :param retire_dry_run: the form's choice; empty: the config's ``retire_dry_run`` (true by default).
    """

    template_fields: Sequence[str] = (*_RoundOperator.template_fields, "retire_dry_run")

    def __init__(self, *, retire_dry_run: bool | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retire_dry_run = retire_dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            config = self.round_config()
            if config.retire_confidence is None:
                self.log.info("retire_confidence is not set in the AL config: no early retirement")
                return {"enabled": False}
            dry_run = config.retire_dry_run if self.retire_dry_run in (None, "", "None") else as_bool(self.retire_dry_run)
            with self.hook.get_conn():
                report = retire_step(data_store(), self.project, config, project_id=int(find_project(self.project).id),
                                     workflow=Workflow.find(config.workflow_id), dry_run=dry_run,
                                     run_id=context["run_id"], say=self.log.info)
        self.log.info("%s %d subject(s) by %s consensus at confidence %s (at least %d votes)",
                      "Would retire" if dry_run else "Retired", len(report["retired"]), report["method"],
                      report["confidence"], report["min_votes"])
        return report


class SelectRoundOperator(_RoundOperator):
    """Consensus labels from the classification store (or the latest export, with ``labels_from:
    export``), retrain, choose, draw, write the manifest.

    A dry run ends here, so it writes its round report here too (the upload step writes a real round's).
    """

    template_fields: Sequence[str] = (*_RoundOperator.template_fields, "set_name", "dry_run")

    def __init__(self, *, set_name: str | None = None, dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_name = set_name
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = as_bool(self.dry_run)
        with fail_fast_on_bad_config():
            selection, written = select_step(data_store(), self.project, self.round_config(), run_id=context["run_id"],
                                             set_name=self.set_name, dry_run=dry_run)
        if written:
            self.log.info("Round report (dry run) written to %s", written["report"])
        for line in selection.consensus:
            self.log.info("%s", line)
        self.log.info("Round %d: %d items chosen (%s) from %d labelled; held-out accuracy %s, F1 %s; manifest %s",
                      selection.round, len(selection.picks), selection.reasons, selection.labelled,
                      selection.metrics.get("accuracy"), selection.metrics.get("f1"), selection.manifest)
        return selection.to_dict() | written


class UploadRoundOperator(_RoundOperator):
    """Upload the chosen batch as a new subject set, link it to the workflow, and write the round report
    (skipped in a dry run, whose select step wrote its report)."""

    template_fields: Sequence[str] = (*_RoundOperator.template_fields, "selection")

    def __init__(self, *, selection: dict[str, Any] | Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.selection = selection

    def execute(self, context: Any) -> dict[str, Any]:
        if self.selection["dry_run"]:  # its XCom also carries the report's path, which a Selection does not hold
            raise AirflowSkipException(f"dry run: manifest and images are in {self.selection['folder']}; nothing uploaded")
        selection = Selection(**self.selection)
        with fail_fast_on_bad_config():
            config = self.round_config()
            store = data_store()
            with self.hook.get_conn():
                report, page = upload_step(
                    store, self.project, config, selection, project_record=find_project(self.project),
                    workflow=Workflow.find(config.workflow_id), warn=self.log.warning,
                    progress=timed(ProgressLog(f"round {selection.round} upload", every=10.0, emit=self.log.info,
                                               unit="subjects")))
        self.log.info("Round %d: subject set %s %r holds %d subjects (%d new, %d resumed, %d already there); report %s",
                      selection.round, report.subject_set_id, selection.set_name, len(report.subject_ids),
                      report.created, report.resumed, report.already_linked, page)
        return report.to_dict() | {"report": page}

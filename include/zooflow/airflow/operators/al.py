"""Operators for the active-learning round: plan, select, upload.

Thin shells over ``zooflow.al.round``: they read the project's AL config (a file the form names in
the config folder, else ``$ZOOFLOW_AL_CONFIG``: ``zooflow.config_dir``; the form's values on top), find the round state and the latest classification download under the data root,
and hand back JSON-ready values (never credentials) for XCom. With a remote data root each pulls the
state, exports and round folders it reads into the worker's cache and pushes what it wrote
(``zooflow.airflow.storage``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException
from panoptes_client import Workflow

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import as_bool, form_file
from zooflow.airflow.storage import DataStore, data_store, pull_latest_download
from zooflow.al.round import RoundConfig, Selection, select_round, upload_round
from zooflow.al.state import RoundState
from zooflow.config_dir import AL_CONFIG
from zooflow.paths import safe_name
from zooflow.progress import ProgressLog, timed
from zooflow.projects import find_project, project_workflow
from zooflow.reports.round_report import write_round_report

FORM_SETTINGS = ("k", "m", "threshold", "strategy", "seed", "retirement_mode")


class _RoundOperator(PanoptesHookMixin, BaseOperator):
    template_fields: Sequence[str] = ("project", "config", "overrides", "zooniverse_conn_id")

    def __init__(self, *, project: str, config: str | None, overrides: dict[str, Any] | None = None,
                 zooniverse_conn_id: str = PanoptesHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.config = config
        self.overrides = overrides
        self.zooniverse_conn_id = zooniverse_conn_id

    def round_config(self) -> RoundConfig:
        overrides = {k: v for k, v in (self.overrides or {}).items() if k in FORM_SETTINGS}
        return RoundConfig.load(form_file(self, self.config, AL_CONFIG), overrides)

    def state(self, config: RoundConfig, store: DataStore) -> RoundState:
        """The round state, pulled from a remote data root first."""
        state = RoundState(store.root.al_dir(self.project, config.workflow_id))
        store.pull(state.path)
        return state


class PlanRoundOperator(_RoundOperator):
    """Check the settings, and say which round comes next and which batch must be retired first.

    The workflow must be one of the project's: a wrong id fails here, before any round is written,
    not at upload. A rerun of a run that already chose a round (Airflow's "Clear") plans that round
    again with no batch to wait for: the first try waited already, and in "counts" mode the workflow's
    counters now include the round's own new batch, so waiting again would not end.

    Pushes ``workflow_id``, ``current_batch_sets``, ``batch_subjects``, ``expected_subjects`` and
    ``retirement_mode`` as XCom keys for the sensor.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            config = self.round_config()
            with self.hook.get_conn():
                project_workflow(find_project(self.project), config.workflow_id,
                                 setting=f"workflow_id in the active-learning config {self.config or '$ZOOFLOW_AL_CONFIG'}")
            state = self.state(config, data_store())
        own = state.round_of_run(context["run_id"])
        current = own or state.pending()
        batch = {"sets": [], "subjects": 0, "expected_subjects": None} if current else state.current_batch()
        plan = {
            "workflow_id": config.workflow_id,
            "round": current["round"] if current else state.next_round(),
            "rerun": own is not None,
            "resuming": current is not None and not current.get("uploaded_at"),
            "current_batch_sets": batch["sets"],
            "batch_subjects": batch["subjects"],
            "expected_subjects": batch["expected_subjects"] or 0,  # 0: unknown (Airflow finds no XCom of None)
            "retirement_mode": config.retirement_mode,
        }
        for key in ("workflow_id", "current_batch_sets", "batch_subjects", "expected_subjects", "retirement_mode"):
            context["ti"].xcom_push(key=key, value=plan[key])
        self.log.info("Round %d%s%s; batch to wait for: %s", plan["round"], " (chosen by this run already)" if own else "",
                      " (resuming)" if plan["resuming"] else "",
                      plan["current_batch_sets"] or "none (first round, resuming, or a rerun)")
        return plan


class SelectRoundOperator(_RoundOperator):
    """Consensus labels from the latest classification export, retrain, choose, draw, write the manifest.

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
            config = self.round_config()
            store = data_store()
            exports_dir = store.root.exports_dir(self.project, "classifications")
            store.pull(exports_dir / "latest.json")
            exports = [pull_latest_download(store, exports_dir)] if (exports_dir / "latest.json").exists() else []
            if not exports:
                self.log.warning("No classification export downloaded yet: this round has no volunteer labels")
            state = self.state(config, store)
            if (chosen := state.round_of_run(context["run_id"]) or state.pending()) and not dry_run:
                store.pull(state.round_dir(chosen["round"]))  # chosen earlier, perhaps on another worker
            selection = select_round(config, state, exports, set_name=self.set_name or None, dry_run=dry_run,
                                     dry_run_dir=state.folder / "dry-runs" / safe_name(context["run_id"]),
                                     run_id=context["run_id"])
            if dry_run:
                page = write_round_report(store.root, self.project, config, selection, state)
                store.push(selection.folder, *page.paths())
                written = {"report": store.url(page.html)}
                self.log.info("Round report (dry run) written to %s", written["report"])
            else:
                store.push(state.round_dir(selection.round), state.path, selection.learning_curve)
                written = {}
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
            state = self.state(config, store)
            # The round's folder in this worker's working root (the select step may have run elsewhere).
            folder = state.round_dir(selection.round)
            store.pull(folder)
            selection = dataclasses.replace(selection, folder=str(folder), manifest=str(folder / Path(selection.manifest).name))
            try:
                with self.hook.get_conn():
                    project = find_project(self.project)
                    workflow = Workflow.find(config.workflow_id)
                    report = upload_round(selection, state, project, workflow, progress=timed(ProgressLog(
                        f"round {selection.round} upload", every=10.0, emit=self.log.info, unit="subjects")))
            except BaseException:
                try:  # the upload journal lets a retry on any worker upload only what is missing
                    store.push(folder)
                except Exception as exc:  # the upload's own error matters more
                    self.log.warning("Could not push the upload journal to %s: %s", store.location, exc)
                raise
            store.push(folder, state.path)
            page = write_round_report(store.root, self.project, config, selection, state, report.to_dict())
            store.push(*page.paths())
        self.log.info("Round %d: subject set %s %r holds %d subjects (%d new, %d resumed, %d already there); report %s",
                      selection.round, report.subject_set_id, selection.set_name, len(report.subject_ids),
                      report.created, report.resumed, report.already_linked, store.url(page.html))
        return report.to_dict() | {"report": store.url(page.html)}

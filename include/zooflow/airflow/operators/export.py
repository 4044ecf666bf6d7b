"""Operators for the export pipeline: request, download, slice, flatten.

Each is a thin shell over ``zooflow.exports``: it finds its paths under the data root, logs what
the library reports, and returns plain JSON-ready values (never credentials) for XCom. The library
works on local files: with a remote data root each step pulls what it reads into the worker's cache
first and pushes what it wrote afterwards (``zooflow.airflow.storage``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from zooflow.airflow.assets import EXPORTS_ALIAS, export_asset
from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import as_bool, default_deferrable, form_file
from zooflow.airflow.storage import data_store
from zooflow.exports.export_requests import ExportTarget, RequestOutcome
from zooflow.config_dir import SLICE_SPEC
from zooflow.exports.runs import form_spec, reslice_only, run_spec
from zooflow.exports.steps import download_step, flatten_step, last_download, request_step, slice_step
from zooflow.exports.slicing import SliceReport
from zooflow.progress import ProgressLog
from zooflow.paths import DataRoot
from zooflow.projects import find_project


MAX_HOLD = timedelta(hours=1)


class _ExportOperator(PanoptesHookMixin, BaseOperator):
    """What every step shares: which export of which resource of which project."""

    template_fields: Sequence[str] = ("project", "export_type", "resource", "resource_id", "zooniverse_conn_id")

    def __init__(
        self,
        *,
        project: str,
        export_type: str,
        resource: str = "project",
        resource_id: int | str | None = None,
        zooniverse_conn_id: str = PanoptesHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.export_type = export_type
        self.resource = resource
        self.resource_id = resource_id
        self.zooniverse_conn_id = zooniverse_conn_id

    def exports_dir(self, root: DataRoot) -> Path:
        resource_id = None if self.resource == "project" else self.resource_id
        return root.exports_dir(self.project, self.export_type, self.resource, resource_id)


class RequestExportOperator(_ExportOperator):
    """Ask Panoptes for a fresh export once its rate limiter will take it (24 h after the last attempt
    known, refused ones included), and record the request; before that, use the existing export.

    A daily run starts about 24 h after the day before's request, often a minute too early for the
    limiter: when the next allowed request is at most ``max_hold`` away, the step waits for it (in
    the triggerer when deferrable) and then asks, so a daily schedule never skips a day.

    Skipped when ``export_type`` is not among ``export_types``; asks nothing of Panoptes in a
    backfill (or when ``request_new`` is false), whose runs re-slice the last download.

    :param deferrable: wait for the allowed time in the triggerer, holding no worker slot. Default:
        Airflow's ``[operators] default_deferrable``.
    :param max_hold: the longest wait for the allowed time; later than that, the existing export is used.
    """

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "export_types", "request_new")

    def __init__(self, *, export_types: Sequence[str] | None = None, request_new: bool | str = True,
                 deferrable: bool = default_deferrable(), max_hold: timedelta = MAX_HOLD, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.export_types = export_types
        self.request_new = request_new
        self.deferrable = deferrable
        self.max_hold = max_hold

    def execute(self, context: Any) -> dict[str, Any]:
        outcome = self._request(context)
        seconds = outcome.get("request_in_seconds")
        if outcome["action"] != "reused" or seconds is None or not 0 < seconds <= self.max_hold.total_seconds():
            return outcome
        self.log.info("Panoptes will take a new request in %.0f s (%s): waiting for it rather than skipping a day",
                      seconds, outcome["next_request_at"])
        if self.deferrable:  # the server's clock may differ from ours: wait the same length of time
            self.defer(trigger=DateTimeTrigger(moment=datetime.now(timezone.utc) + timedelta(seconds=seconds)),
                       method_name="execute_complete")
        time.sleep(seconds)
        return self._request(context)

    def execute_complete(self, context: Any, event: Any = None) -> dict[str, Any]:
        self.log.info("The wait for Panoptes' next allowed request is over: asking now")
        return self._request(context)

    def _request(self, context: Any) -> dict[str, Any]:
        if self.export_types is not None and self.export_type not in self.export_types:
            raise AirflowSkipException(f"the {self.export_type} export was not asked for ({', '.join(self.export_types)})")
        if reslice_only(context["dag_run"].run_type, as_bool(self.request_new)):
            outcome = RequestOutcome.backfill("a backfill re-slices the last downloaded export and requests nothing")
        else:
            with fail_fast_on_bad_config(), self.hook.get_conn():
                store = data_store()
                resource_id = int(find_project(self.project).id) if self.resource == "project" else int(self.resource_id)
                target = ExportTarget(self.resource, resource_id, self.export_type)
                outcome = request_step(store, target, self.exports_dir(store.root))
        self.log.info("%s export: %s", self.export_type, outcome.reason)
        return outcome.to_dict()


class DownloadExportOperator(_ExportOperator):
    """Download the export the request step waited for (again, if the copy kept is damaged); in a
    backfill, point at the last download, and fail, naming the fix, if it is damaged.

    :param defer_check: leave the gzip's CRC and length check to the slice task that reads the file
        next (``SliceExportOperator`` given this task's output as ``download``): the download is
        recorded as pending, and the slice promotes it to ``latest.json`` or refuses it. The exports
        DAG sets it for the exports it slices. Default: checked during the transfer.
    """

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "request")

    def __init__(self, *, request: dict[str, Any] | Any, progress_every: float = 10.0, defer_check: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request
        self.progress_every = progress_every
        self.defer_check = defer_check

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            store = data_store()
            exports_dir = self.exports_dir(store.root)
            if self.request["action"] == "backfill":
                path = last_download(store, exports_dir)
                self.log.info("Backfill: re-slicing the last download, %s", path.name)
                return {"path": str(path), "already_downloaded": True}
            target = ExportTarget(**self.request["target"])
            with self.hook.get_conn():
                result = download_step(store, target, exports_dir, requested_at=self.request["requested_at"],
                                       progress=ProgressLog(str(target), every=self.progress_every, emit=self.log.info),
                                       defer_check=self.defer_check)
        self.log.info("%s: %s (%.1f MB) in %s%s", target, "already downloaded" if result.already_downloaded else "downloaded",
                      result.bytes / 1e6, store.url(result.path),
                      "; the slice checks its gzip (CRC and length) as it reads it" if result.pending else "")
        return result.to_dict()


class SliceExportOperator(_ExportOperator):
    """Slice the run's download into date partitions and announce them as an Asset event.

    The created_at window is the run's data interval for scheduled runs and backfills (one
    partition per date), and the spec's own ``since``/``until`` otherwise. ``spec_file`` is the
    name of a YAML file in the config folder (``zooflow.config_dir``), not a path: a form may not
    read other files.

    :param download: the download task's output. A download it names as pending (``defer_check``)
        is checked by this slice's read: promoted to ``latest.json`` when the slice completes,
        refused (removed, the last good download and the slices kept) when it is damaged. Otherwise,
        and in backfills, the last checked download is sliced (see ``zooflow.exports.steps.slice_step``).
    """

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "spec", "spec_file", "download")

    def __init__(self, *, spec: dict[str, Any] | None = None, spec_file: str | None = None,
                 download: dict[str, Any] | Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [EXPORTS_ALIAS])
        super().__init__(**kwargs)
        self.spec = spec
        self.spec_file = spec_file
        self.download = download

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            spec = form_spec(form_file(self, self.spec_file, SLICE_SPEC), self.spec)
            spec = run_spec(spec, context["dag_run"].run_type,
                            context.get("data_interval_start"), context.get("data_interval_end"))
            store = data_store()
            step = slice_step(store, self.project, self.export_type, self.exports_dir(store.root), spec,
                              run_id=context["run_id"], download=self.download or None,
                              progress=lambda source: ProgressLog(f"slicing {source.name}", every=10.0,
                                                                  emit=self.log.info))
        for line in step.report.summary_lines():
            self.log.info("%s", line)
        self.log.info("Slice report written to %s", store.url(step.report_path))
        context["outlet_events"][EXPORTS_ALIAS].add(
            export_asset(self.project, self.export_type),
            extra={"project": self.project, "export_type": self.export_type, "source": store.url(step.source),
                   "partitions": step.result["partitions"], "rows_kept": step.report.rows_kept,
                   "report": store.url(step.report_path)},
        )
        return step.result


class FlattenClassificationsOperator(_ExportOperator):
    """Flatten each date partition the slice step wrote into a tidy table under the data root, and
    write the run's export report (``reports/export-report/<run id>.html``) once the tables are in."""

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "slice_report")

    def __init__(self, *, slice_report: dict[str, Any] | Any, **kwargs: Any) -> None:
        kwargs.setdefault("export_type", "classifications")
        super().__init__(**kwargs)
        self.slice_report = slice_report

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast_on_bad_config():
            store = data_store()
            reports, page = flatten_step(store, self.project, self.exports_dir(store.root),
                                         SliceReport.from_dict(self.slice_report), run_id=context["run_id"],
                                         partitions=self.slice_report["partitions"], log=self.log.info)
        self.log.info("Export report written to %s", store.url(page.html))
        return {"partitions": reports, "report": store.url(page.html)}

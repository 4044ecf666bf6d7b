"""The researcher's approval of a batch before upload: Airflow's human-in-the-loop ``ApprovalOperator``.

With ``approve_before_upload: true`` in the AL config, the round stops between select and upload and
asks (Airflow 3.3 parks the task as awaiting input, holding no worker slot): the request shows the
round's report page and contact sheet (``zooflow.al.approval``). "Approve" lets the upload run;
"Reject" records the rejection, freeing the round's items, and skips the upload. Without the setting,
or in a dry run, it asks nobody and succeeds at once, so the automatic cadence is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.providers.standard.operators.hitl import ApprovalOperator

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.operators.al import RoundSettingsMixin
from zooflow.airflow.params import as_bool
from zooflow.airflow.storage import data_store
from zooflow.al.approval import approval_request, reject_round
from zooflow.al.round import Selection
from zooflow.al.steps import round_state
from zooflow.storage import Storage

FILES_ROUTE = "/zooniverse/files/"  # the Zooniverse page's route for files under the data root (plugins/zooniverse.py)


class BatchApprovalOperator(RoundSettingsMixin, ApprovalOperator):
    """Ask a person to approve the chosen batch before it is uploaded, when the AL config says so.

    :param project: the project's slug or id (names its folder under the data root).
    :param config: the AL config file the form chose (empty: ``$ZOOFLOW_AL_CONFIG``).
    :param config_path: the AL config the projects file names, instead of the form's.
    :param overrides: the form's settings on top of the config.
    :param selection: the select task's XCom.
    :param dry_run: a dry run uploads nothing, so it asks nobody.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "project", "config", "overrides",
                                      "selection", "dry_run")
    ui_color = "#fdf1d6"

    def __init__(self, *, project: str, config: str | None, selection: dict[str, Any] | Any,
                 overrides: dict[str, Any] | None = None, config_path: str | None = None, dry_run: bool | str = False,
                 **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Upload the chosen active-learning batch?")
        super().__init__(**kwargs)
        self.project = project
        self.config = config
        self.config_path = config_path
        self.overrides = overrides
        self.selection = selection
        self.dry_run = dry_run

    def _selection(self) -> Selection:
        return Selection(**{k: v for k, v in self.selection.items() if k != "report"})

    def execute(self, context: Any) -> Any:
        with fail_fast_on_bad_config():
            config = self.round_config()
        if as_bool(self.dry_run) or self.selection.get("dry_run"):
            self.log.info("Dry run: nothing will be uploaded, so nobody is asked")
            return None
        if not config.approve_before_upload:
            self.log.info("approve_before_upload is off in the AL config: the batch goes up without asking")
            return None
        store = data_store()
        if round_state(store, self.project, config).uploaded(self.selection["round"]):
            self.log.info("Round %d is uploaded already (a rerun): nothing to approve", self.selection["round"])
            return None
        self.subject, self.body = approval_request(store, self.project, config, self._selection(), _linker(store))
        self.log.info("Asking for approval: %s", self.subject)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("chosen_options") == [self.REJECT]:
            with fail_fast_on_bad_config():
                config = self.round_config()
            user = event.get("responded_by_user") or {}
            record = reject_round(data_store(), self.project, config, self._selection(),
                                  by=user.get("name") or user.get("id"))
            self.log.info("Round %d rejected by %s: nothing is uploaded and its %d items are free for the next round",
                          record["round"], record.get("rejected_by") or "a reviewer", len(record.get("picked", [])))
        return super().execute_complete(context, event)


def _linker(store: Storage):
    """Files under a local data root through the Zooniverse page; a remote root's own URLs otherwise."""
    if store.is_remote:
        return store.url
    return lambda path: FILES_ROUTE + quote(Path(path).resolve().relative_to(store.root.root.resolve()).as_posix())

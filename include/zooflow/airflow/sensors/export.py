"""Waiting for Panoptes to build an export, in the style of the dbt Cloud provider's run sensor."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.triggers.export import ExportReadyTrigger
from zooflow.exports.media import ExportTarget, describe, export_complete, parse_time, stuck_message


class ExportReadySensor(BaseSensorOperator):
    """Succeed once the export asked for by the request step is ready and newer than that request.

    :param request: the request step's outcome (its XCom): ``target``, ``requested_at``, ``action``.
        A backfill re-slices the last download and asked for nothing, so there is nothing to wait for.
    :param deferrable: wait in the triggerer (the default), holding no worker slot; otherwise poke
        in ``reschedule`` mode, which also frees the slot between pokes.
    :param timeout: give up after this many seconds with a message saying what probably happened.
    :param wait_timeout_seconds: templated override of ``timeout`` (for example from the trigger form).
    :param poll_seconds: templated override of ``poke_interval``.
    """

    template_fields: Sequence[str] = ("request", "zooniverse_conn_id", "wait_timeout_seconds", "poll_seconds")
    ui_color = "#f4e9d8"

    def __init__(
        self,
        *,
        request: dict[str, Any] | Any,
        zooniverse_conn_id: str = PanoptesHook.default_conn_name,
        deferrable: bool = True,
        poke_interval: float = 60.0,
        timeout: float = timedelta(hours=6).total_seconds(),
        wait_timeout_seconds: float | str | None = None,
        poll_seconds: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "poke" if deferrable else "reschedule")
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.request = request
        self.zooniverse_conn_id = zooniverse_conn_id
        self.deferrable = deferrable
        self.wait_timeout_seconds = wait_timeout_seconds
        self.poll_seconds = poll_seconds

    def _nothing_to_wait_for(self) -> bool:
        return self.request.get("action") == "backfill"

    def poke(self, context: Any) -> bool:
        if self._nothing_to_wait_for():
            return True
        with PanoptesHook(self.zooniverse_conn_id).get_conn():
            media = describe(ExportTarget(**self.request["target"]))
        self._last_state = media.state if media else "never requested"
        return export_complete(media, parse_time(self.request["requested_at"]))

    def execute(self, context: Any) -> None:
        if self.wait_timeout_seconds not in (None, ""):
            self.timeout = float(self.wait_timeout_seconds)
        if self.poll_seconds not in (None, ""):
            self.poke_interval = float(self.poll_seconds)
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise AirflowSensorTimeout(self._stuck(getattr(self, "_last_state", "unknown"))) from None
        if self.poke(context):
            return None
        self.defer(
            trigger=ExportReadyTrigger(
                target=self.request["target"],
                requested_at=self.request["requested_at"],
                end_time=time.time() + self.timeout,
                zooniverse_conn_id=self.zooniverse_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 2 * self.poke_interval),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "success":
            self.log.info("%s is ready (updated %s)", ExportTarget(**self.request["target"]), event["updated_at"])
            return event
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(self._stuck(event["state"]))
        raise AirflowException(f"waiting for the export failed: {event.get('message')}")

    def _stuck(self, state: str) -> str:
        return stuck_message(ExportTarget(**self.request["target"]), state, self.request["requested_at"], self.timeout)

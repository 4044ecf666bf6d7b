"""Waiting for Panoptes to build an export: until it is ready, or at once when Panoptes marks it failed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zooflow.airflow.sensors.panoptes import PanoptesCheckSensor
from zooflow.exports.limits import still_creating_message
from zooflow.exports.export_requests import ExportTarget


class ExportReadySensor(PanoptesCheckSensor):
    """Succeed once the export asked for by the request step is ready and newer than that request.

    Fails at once, without retries, when Panoptes marks the export ``failed``; a timeout says why it
    is probably still ``creating``. Both messages say when a new request will be allowed.

    :param request: the request step's outcome (its XCom): ``target``, ``requested_at``, ``action``,
        ``next_request_at``, ``last_download``. A backfill re-slices the last download and asked for
        nothing, so there is nothing to wait for.
    """

    check = "zooflow.exports.export_requests.export_ready_check"
    template_fields: Sequence[str] = (*PanoptesCheckSensor.template_fields, "request")
    ui_color = "#f4e9d8"

    def __init__(self, *, request: dict[str, Any] | Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request

    def check_kwargs(self) -> dict[str, Any] | None:
        if self.request.get("action") == "backfill":
            return None
        return {"target": self.request["target"], "requested_at": self.request["requested_at"], "outcome": self.request}

    def timeout_message(self, state: str) -> str:
        return still_creating_message(ExportTarget(**self.request["target"]), self.request, state, self.timeout)

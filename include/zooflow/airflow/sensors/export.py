"""Waiting for Panoptes to build an export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zooflow.airflow.sensors.panoptes import PanoptesCheckSensor
from zooflow.exports.media import ExportTarget, stuck_message


class ExportReadySensor(PanoptesCheckSensor):
    """Succeed once the export asked for by the request step is ready and newer than that request.

    :param request: the request step's outcome (its XCom): ``target``, ``requested_at``, ``action``.
        A backfill re-slices the last download and asked for nothing, so there is nothing to wait for.
    """

    check = "zooflow.exports.media.export_ready_check"
    template_fields: Sequence[str] = (*PanoptesCheckSensor.template_fields, "request")
    ui_color = "#f4e9d8"

    def __init__(self, *, request: dict[str, Any] | Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request

    def check_kwargs(self) -> dict[str, Any] | None:
        if self.request.get("action") == "backfill":
            return None
        return {"target": self.request["target"], "requested_at": self.request["requested_at"]}

    def timeout_message(self, state: str) -> str:
        return stuck_message(ExportTarget(**self.request["target"]), state, self.request["requested_at"], self.timeout)

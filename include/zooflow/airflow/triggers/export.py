"""The trigger that waits in the triggerer until Panoptes has built an export.

Export generation takes minutes to hours and Panoptes never reports a failure, so the wait must
hold no worker slot and must end by itself: it stops at ``end_time`` with a "timeout" event
rather than relying on the scheduler (``dag.test()`` applies no defer timeout at all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.exports.media import ExportMedia, ExportTarget, describe, export_complete, parse_time
from zooflow.panoptes import ZooflowPanoptes, connect


def _describe_with(client: ZooflowPanoptes, target: ExportTarget) -> ExportMedia | None:
    with client:
        return describe(target)


class ExportReadyTrigger(BaseTrigger):
    """Poll an export's description until it is ready and newer than ``requested_at``.

    Serialized with the connection id only: credentials are looked up in the triggerer and never
    stored in the trigger table.
    """

    def __init__(
        self,
        *,
        target: dict[str, Any],
        requested_at: str,
        end_time: float,
        zooniverse_conn_id: str = PanoptesHook.default_conn_name,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.target = target
        self.requested_at = requested_at
        self.end_time = end_time
        self.zooniverse_conn_id = zooniverse_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "target": self.target,
                "requested_at": self.requested_at,
                "end_time": self.end_time,
                "zooniverse_conn_id": self.zooniverse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        target = ExportTarget(**self.target)
        requested_at = parse_time(self.requested_at)
        try:
            config = await PanoptesHook(self.zooniverse_conn_id).aget_config()
            client = await asyncio.to_thread(connect, config)
            while True:
                media = await asyncio.to_thread(_describe_with, client, target)
                if export_complete(media, requested_at):
                    yield TriggerEvent({"status": "success", "media_id": media.media_id,
                                        "updated_at": media.updated_at.isoformat(), "state": media.state})
                    return
                if time.time() >= self.end_time:
                    yield TriggerEvent({"status": "timeout", "state": media.state if media else "never requested"})
                    return
                self.log.info("%s is %s; next look in %.0f s", target, media.state if media else "absent", self.poll_interval)
                await asyncio.sleep(self.poll_interval)
        except Exception as exc:  # noqa: BLE001 - the task, not the triggerer, must see the failure
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})

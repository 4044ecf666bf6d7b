"""The trigger that waits in the triggerer until a zooflow check on Panoptes says done.

Exports take hours to build and batches days to retire; the waits must hold no worker slot and
must end by themselves: the trigger stops at ``end_time`` with a "timeout" event instead of relying
on the scheduler (``dag.test()`` applies no defer timeout at all). What is checked is a library
function named by dotted path, so one trigger serves every wait and stores no code, only names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.checks import Check, WaitEnded, check_function
from zooflow.panoptes import ZooflowPanoptes, connect


def _check_with(client: ZooflowPanoptes, check: str, kwargs: dict[str, Any]) -> Check:
    with client:
        return check_function(check)(**kwargs)


class PanoptesCheckTrigger(BaseTrigger):
    """Run ``check(**check_kwargs)`` every ``poll_interval`` seconds until it is done or ``end_time`` passes.

    Serialized with the connection id only: credentials are looked up in the triggerer and never
    stored in the trigger table.
    """

    def __init__(
        self,
        *,
        check: str,
        check_kwargs: dict[str, Any],
        end_time: float,
        zooniverse_conn_id: str = PanoptesHook.default_conn_name,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.check = check
        self.check_kwargs = check_kwargs
        self.end_time = end_time
        self.zooniverse_conn_id = zooniverse_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "check": self.check,
                "check_kwargs": self.check_kwargs,
                "end_time": self.end_time,
                "zooniverse_conn_id": self.zooniverse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            config = await PanoptesHook(self.zooniverse_conn_id).aget_config()
            client = await asyncio.to_thread(connect, config)
            while True:
                result = await asyncio.to_thread(_check_with, client, self.check, self.check_kwargs)
                if result.done:
                    yield TriggerEvent({"status": "success"} | result.to_dict())
                    return
                if time.time() >= self.end_time:
                    yield TriggerEvent({"status": "timeout", "state": result.state})
                    return
                self.log.info("%s: %s; next look in %.0f s", self.check.rsplit(".", 1)[-1], result.state, self.poll_interval)
                await asyncio.sleep(self.poll_interval)
        except WaitEnded as exc:
            yield TriggerEvent({"status": "ended", "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the task, not the triggerer, must see the failure
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})

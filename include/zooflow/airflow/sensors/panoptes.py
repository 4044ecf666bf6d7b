"""The base of zooflow's sensors: look at Panoptes through a library check, in the triggerer by default.

In the style of the dbt Cloud provider's run sensor: look once, and if not done defer to a trigger
that keeps looking without a worker slot; without a triggerer, poke in reschedule mode. A timeout
says what probably happened and what to do, not just that time ran out; a check that sees the
awaited thing end badly (WaitEnded) stops the wait at once, without retries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.airflow.operators.base import PanoptesHookMixin
from zooflow.airflow.params import default_deferrable
from zooflow.airflow.triggers.panoptes import PanoptesCheckTrigger
from zooflow.checks import Check, WaitEnded, check_function


class PanoptesCheckSensor(PanoptesHookMixin, BaseSensorOperator):
    """Wait until ``check`` (a dotted path to a zooflow function returning a Check) says done.

    :param deferrable: wait in the triggerer, holding no worker slot; otherwise poke in
        ``reschedule`` mode, which also frees the slot between looks. Default: Airflow's
        ``[operators] default_deferrable``, which zooflow's environments set to True.
    :param timeout: give up after this many seconds, with the subclass's explanation.
    :param wait_timeout_seconds: templated override of ``timeout`` (for example from a trigger form).
    :param poll_seconds: templated override of ``poke_interval``.
    """

    check: str
    template_fields: Sequence[str] = ("zooniverse_conn_id", "wait_timeout_seconds", "poll_seconds")

    def __init__(
        self,
        *,
        zooniverse_conn_id: str = PanoptesHook.default_conn_name,
        deferrable: bool = default_deferrable(),
        poke_interval: float = 60.0,
        timeout: float = timedelta(hours=6).total_seconds(),
        wait_timeout_seconds: float | str | None = None,
        poll_seconds: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "poke" if deferrable else "reschedule")
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.zooniverse_conn_id = zooniverse_conn_id
        self.deferrable = deferrable
        self.wait_timeout_seconds = wait_timeout_seconds
        self.poll_seconds = poll_seconds
        self._last_state = "not looked at yet"

    def check_kwargs(self) -> dict[str, Any] | None:
        """The check's arguments, or None when there is nothing to wait for."""
        raise NotImplementedError

    def timeout_message(self, state: str) -> str:
        raise NotImplementedError

    def poke(self, context: Any) -> PokeReturnValue:
        kwargs = self.check_kwargs()
        if kwargs is None:
            return PokeReturnValue(True, None)
        with self.hook.get_conn():
            try:
                result: Check = check_function(self.check)(**kwargs)
            except WaitEnded as exc:
                raise AirflowFailException(str(exc)) from None  # retrying cannot help
        self._last_state = result.state
        self.log.info("%s", result.state)
        return PokeReturnValue(result.done, result.to_dict() if result.done else None)

    def _apply_form_values(self) -> None:
        if self.wait_timeout_seconds not in (None, ""):
            self.timeout = float(self.wait_timeout_seconds)
        if self.poll_seconds not in (None, ""):
            self.poke_interval = float(self.poll_seconds)

    def execute(self, context: Any) -> Any:
        self._apply_form_values()
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise AirflowSensorTimeout(self.timeout_message(self._last_state)) from None
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=PanoptesCheckTrigger(
                check=self.check, check_kwargs=self.check_kwargs(), end_time=time.time() + self.timeout,
                zooniverse_conn_id=self.zooniverse_conn_id, poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 2 * self.poke_interval),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        self._apply_form_values()  # a fresh instance resumes here: its timeout message needs the form's value
        if event["status"] == "success":
            self.log.info("Done: %s", event["state"])
            return {k: v for k, v in event.items() if k != "status"}
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(self.timeout_message(event["state"]))
        if event["status"] == "ended":
            raise AirflowFailException(event["message"])
        raise AirflowException(f"waiting on Panoptes failed: {event.get('message')}")

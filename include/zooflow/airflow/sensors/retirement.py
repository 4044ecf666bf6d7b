"""Waiting for volunteers to retire the current batch before the next one is chosen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from zooflow.airflow.params import as_bool
from zooflow.airflow.sensors.panoptes import PanoptesCheckSensor
from zooflow.retirement import still_unretired_message


class BatchRetiredSensor(PanoptesCheckSensor):
    """Succeed once the workflow's current batch is fully retired.

    :param workflow_id: the workflow volunteers classify in.
    :param subject_set_ids: the sets of the current batch; empty for the first round, which has no
        earlier batch and so proceeds at once.
    :param batch_subjects: how many subjects the round linked in that batch.
    :param expected_subjects: the workflow's ``subjects_count`` once Panoptes has counted the batch; in
        "counts" mode the counters are not trusted before they reach it (they lag by minutes).
    :param retirement_mode: "counts" (the counters include the batch and all its subjects are retired,
        confirmed once on the batch's statuses) or "precise" (every subject of the batch has a retired
        status, checked on each look).
    :param refill_below: done once fewer than this many of the batch's subjects are unretired (0: when
        all are), so the next batch is linked before volunteers run out.
    :param dry_run: a dry run previews the next batch from the labels there are now: it does not wait.
    :param look_once: look once and, when the batch is not done, skip (and with it the round) instead
        of waiting: a run on the DAG's own cadence ends at once and the next one looks again.
    """

    check = "zooflow.retirement.batch_retired_check"
    template_fields: Sequence[str] = (*PanoptesCheckSensor.template_fields, "workflow_id", "subject_set_ids",
                                      "batch_subjects", "expected_subjects", "retirement_mode", "refill_below",
                                      "dry_run", "look_once")
    ui_color = "#e3ecf8"

    def __init__(self, *, workflow_id: int | str, subject_set_ids: Sequence[int] | Any = (),
                 batch_subjects: int | Any = None, expected_subjects: int | Any = None,
                 retirement_mode: str = "counts", refill_below: int | Any = 0, dry_run: bool | str = False,
                 look_once: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refill_below = refill_below
        self.look_once = look_once
        self.batch_subjects = batch_subjects
        self.expected_subjects = expected_subjects
        self.dry_run = dry_run
        self.workflow_id = workflow_id
        self.subject_set_ids = subject_set_ids
        self.retirement_mode = retirement_mode

    def check_kwargs(self) -> dict[str, Any] | None:
        if as_bool(self.dry_run):
            self.log.info("Dry run: previewing the next batch without waiting for the current one")
            return None
        if not self.subject_set_ids:
            self.log.info("No earlier batch: the first round proceeds")
            return None
        return {"workflow_id": int(self.workflow_id), "subject_set_ids": [int(s) for s in self.subject_set_ids],
                "mode": self.retirement_mode, "batch_subjects": _count(self.batch_subjects),
                "expected_subjects": _count(self.expected_subjects), "refill_below": _count(self.refill_below) or 0}

    def execute(self, context: Any) -> Any:
        if not as_bool(self.look_once):
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        raise AirflowSkipException(f"{self._last_state}; nothing to do until it is: the next run looks again")

    def timeout_message(self, state: str) -> str:
        return still_unretired_message(int(self.workflow_id), state, self.timeout)


def _count(value: Any) -> int | None:
    """A templated count; 0 or nothing when the plan had none (rounds recorded before counts were kept)."""
    return int(value) if value not in (None, "", "None") and int(value) > 0 else None

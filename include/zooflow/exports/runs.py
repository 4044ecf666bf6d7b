"""What a run of the exports pipeline should do, from the kind of run it is.

Scheduled and backfilled runs slice their own data interval, so each date gets its own partition;
a manual run slices what its form asks for. Backfills re-slice the last download and ask Panoptes
for nothing: a request for a past date would fetch today's export and cost the day's one request.
"""

from __future__ import annotations

from datetime import datetime

from zooflow.exports.slice_spec import SliceSpec

INTERVAL_RUN_TYPES = ("scheduled", "backfill")


def reslice_only(run_type: str | None, request_new: bool = True) -> bool:
    return run_type == "backfill" or not request_new


def run_spec(spec: SliceSpec, run_type: str | None, start: datetime | None, end: datetime | None) -> SliceSpec:
    """The spec with the run's data interval as created_at window, unless the user gave one."""
    if spec.since or spec.until:
        return spec
    if run_type in INTERVAL_RUN_TYPES and start and end and end > start:
        return spec.with_window(start, end)
    return spec

"""What a run of the exports pipeline should do, from the kind of run it is.

Scheduled and backfilled runs slice their own data interval, so each date gets its own partition;
a manual run slices what its form asks for. Backfills re-slice the last download and ask Panoptes
for nothing: a request for a past date would fetch today's export and cost the day's one request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from zooflow.exports.slice_spec import SliceSpec

INTERVAL_RUN_TYPES = ("scheduled", "backfill")


def reslice_only(run_type: str | None, request_new: bool = True) -> bool:
    return run_type == "backfill" or not request_new


def form_spec(spec_file: Path | None, fields: Mapping[str, Any] | None) -> SliceSpec:
    """The spec a run's form asks for: the spec file's keys, with the fields filled in on top."""
    base = SliceSpec.from_yaml(spec_file) if spec_file else SliceSpec()
    overrides = {k: v for k, v in (fields or {}).items() if v not in (None, "", [])}
    return SliceSpec.from_mapping(base.to_dict() | overrides) if overrides else base


def run_spec(spec: SliceSpec, run_type: str | None, start: datetime | None, end: datetime | None) -> SliceSpec:
    """The spec with the run's data interval as created_at window, unless the user gave one."""
    if spec.since or spec.until:
        return spec
    if run_type in INTERVAL_RUN_TYPES and start and end and end > start:
        return spec.with_window(start, end)
    return spec

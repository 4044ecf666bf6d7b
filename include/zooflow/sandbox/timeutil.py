"""Conversions between stored times (UTC epoch seconds) and the formats Panoptes shows.

The database keeps every time as a float of seconds since the epoch so that comparisons and
arithmetic stay in SQL; these helpers are the only place that turns them into text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def to_epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no timezone; give UTC explicitly")
    return moment.timestamp()


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 time; a trailing ``Z`` is UTC and a time without offset is refused."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment.astimezone(timezone.utc)


def iso_ms(epoch: float | None) -> str | None:
    """API timestamps: ``2021-10-07T17:57:37.886Z``."""
    if epoch is None:
        return None
    moment = to_datetime(epoch)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def csv_time(epoch: float | None) -> str:
    """Export timestamps (Ruby ``Time#to_s``): ``2025-01-21 16:08:41 UTC``; empty for none."""
    if epoch is None:
        return ""
    return to_datetime(epoch).strftime("%Y-%m-%d %H:%M:%S UTC")


def http_date(epoch: float) -> str:
    return format_datetime(to_datetime(epoch), usegmt=True)

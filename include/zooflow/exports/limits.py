"""When Panoptes will build an export again, and what to say when one ends ``failed`` or never ends.

The current server accepts every export request (201, ``creating``) and judges it only when its job
starts: per resource and export type at most one attempt per 24 h and at least 12 h between
attempts, refused attempts counted too; a refused job is dropped without a word and the export
stays ``creating``. A job that dies is marked ``failed`` by a cleanup at 00:00 and 12:00 UTC. So a
request made too early costs a day and pushes the next allowed time back: zooflow asks only once
24 h have passed since the last attempt it knows of, its own (recorded in ``last_request.json`` on
the server's clock, its ``Date`` header) and anyone else's it can see on the export itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zooflow.files import atomic_write_json

if TYPE_CHECKING:
    from zooflow.exports.export_requests import ExportMedia

WINDOW = timedelta(hours=24)  # at most one attempt in this window (DUMP_CONGESTION_OPTS_INTERVAL)
MIN_GAP = timedelta(hours=12)  # between two attempts (DUMP_CONGESTION_OPTS_MIN_DELAY)
# A job starts, and is judged, a little after its request; asking this much later keeps clear of it.
JOB_START_MARGIN = timedelta(minutes=1)
# A 'creating' export updated this long after zooflow's last request was requested again by someone else.
JOB_START_GRACE = timedelta(minutes=10)
KEEP_ATTEMPTS = 5


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@dataclass
class RequestRecord:
    """``last_request.json``: zooflow's own request times, and the export as zooflow last saw it."""

    attempts: list[datetime] = field(default_factory=list)
    media_id: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def load(cls, path: Path) -> RequestRecord:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        attempts = data.get("attempts") or ([data["requested_at"]] if data.get("requested_at") else [])
        updated_at = data.get("updated_at")
        return cls([parse_time(a) for a in attempts], data.get("media_id"), parse_time(updated_at) if updated_at else None)

    @property
    def latest(self) -> datetime | None:
        return max(self.attempts, default=None)

    def saw(self, media: ExportMedia, attempt: datetime | None = None) -> RequestRecord:
        attempts = sorted({*self.attempts, *([attempt] if attempt else [])})[-KEEP_ATTEMPTS:]
        return RequestRecord(attempts, media.media_id, media.updated_at)

    def to_dict(self) -> dict[str, Any]:
        latest = self.latest
        return {"media_id": self.media_id, "updated_at": self.updated_at.isoformat() if self.updated_at else None,
                "requested_at": latest.isoformat() if latest else None,
                "attempts": [a.isoformat() for a in self.attempts]}

    def save(self, path: Path) -> None:
        try:
            if json.loads(path.read_text()) == self.to_dict():
                return  # unchanged: a run done twice writes nothing
        except (OSError, ValueError):
            pass
        atomic_write_json(path, self.to_dict())


def request_by_someone_else(record: RequestRecord, media: ExportMedia | None) -> datetime | None:
    """The latest request the export shows that zooflow's record does not explain, or None.

    ``updated_at`` moves on a request, when a job starts, when it ends and when the cleanup marks it
    failed. A ``creating`` export updated well after zooflow's last request was requested again;
    a job that ended can only have been someone else's if it began a full window after zooflow's.
    Either way ``updated_at`` is no earlier than that request: the safe guess.
    """
    if media is None or (media.media_id, media.updated_at) == (record.media_id, record.updated_at):
        return None
    latest = record.latest
    if latest is None:
        return media.updated_at
    unexplained_after = JOB_START_GRACE if media.state == "creating" else WINDOW
    return media.updated_at if media.updated_at - latest >= unexplained_after else None


def next_request_time(attempts: list[datetime]) -> datetime | None:
    """When Panoptes will run a new request: 24 h after the last attempt (refused ones count) and
    12 h after it, whichever is later, plus the job-start margin. None when no attempt is known."""
    latest = max(attempts, default=None)
    return None if latest is None else latest + max(WINDOW, MIN_GAP) + JOB_START_MARGIN


def good_export_clause(last_download: dict[str, Any] | None) -> str:
    """Whether anything newer than zooflow's last good download exists (Panoptes reports no ready one)."""
    if not last_download:
        return "No good export of it exists yet: nothing has been downloaded for it."
    return (f"No newer good export exists: Panoptes reports none ready, so the last good download, "
            f"{last_download['path']} (export of {utc(parse_time(last_download['updated_at']))}), and its slices "
            "stay as they are.")


def _next_clause(outcome: dict[str, Any]) -> str:
    return (f"A new request will be allowed from {utc(parse_time(outcome['next_request_at']))} (server clock: 24 h "
            "after the last request, refused ones included); the next run asks again then, not before.")


def failed_message(target: object, outcome: dict[str, Any], failed_at: datetime) -> str:
    return (f"the {target} requested at {utc(parse_time(outcome['requested_at']))} ended 'failed' (marked at "
            f"{utc(failed_at)}): its export job on Panoptes died, and the server's cleanup (00:00 and 12:00 UTC) "
            f"marked it failed, so it will not be built. {_next_clause(outcome)} "
            f"{good_export_clause(outcome.get('last_download'))}")


def still_creating_message(target: object, outcome: dict[str, Any], state: str, waited_seconds: float) -> str:
    requested = parse_time(outcome["requested_at"])
    previous = outcome.get("previous_request_at")
    if previous and requested - parse_time(previous) < WINDOW:
        why = (f"Its last request, at {utc(requested)}, came {(requested - parse_time(previous)).total_seconds() / 3600:.1f} h "
               f"after the one at {utc(parse_time(previous))}, inside Panoptes' 24 h limit, so the rate limiter "
               "dropped it silently and it stays 'creating' until a request gets through.")
    else:
        why = ("Panoptes' rate limiter may have dropped it silently (a request within 24 h of another, a teammate's "
               "click in the Lab included), or its job is still running, or it died and the cleanup at 00:00 or "
               "12:00 UTC will mark it 'failed'. Check the project's Data Exports page; very large projects may "
               "need a longer wait.")
    return (f"the {target} requested at {utc(requested)} is still '{state}' after {waited_seconds / 3600:.1f} h. "
            f"{why} {_next_clause(outcome)} {good_export_clause(outcome.get('last_download'))}")

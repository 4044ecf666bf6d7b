"""Requesting and describing exports under Panoptes' one-request-per-24-hours rule.

A second request within 24 hours is accepted with 201 but silently never completes, and there is
no "failed" state, so a careless request costs a day. Ages are judged on the server's clock (its
``Date`` header), never on the worker's, and the last request time is taken from zooflow's own
record when the export has not changed since, because ``updated_at`` moves again when generation
ends and would otherwise make a daily run skip every other day.
"""

from __future__ import annotations

import email.utils
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
from panoptes_client import Panoptes

from zooflow.checks import Check
from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.files import atomic_write_json

log = logging.getLogger(__name__)

RATE_LIMIT = timedelta(hours=24)
RESOURCES = {"project": "projects", "workflow": "workflows", "subject_set": "subject_sets"}
EXPORT_TYPES = {
    "project": ("classifications", "subjects", "workflows"),
    "workflow": ("classifications",),
    "subject_set": ("classifications",),
}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class ExportTarget:
    """One export of one resource: ``project 12 classifications``."""

    resource: str
    resource_id: int
    export_type: str

    def __post_init__(self) -> None:
        if self.resource not in RESOURCES:
            raise ConfigurationError(f"exports exist for {', '.join(RESOURCES)}, not {self.resource!r}")
        if self.export_type not in EXPORT_TYPES[self.resource]:
            raise ConfigurationError(
                f"a {self.resource} has no {self.export_type!r} export; choose from {', '.join(EXPORT_TYPES[self.resource])}"
            )

    @property
    def path(self) -> str:
        return f"/{RESOURCES[self.resource]}/{self.resource_id}/{self.export_type}_export"

    def __str__(self) -> str:
        return f"{self.resource} {self.resource_id} {self.export_type} export"


@dataclass(frozen=True)
class ExportMedia:
    """What Panoptes says about an export at one moment, with the server's time of saying it."""

    media_id: str
    state: str
    updated_at: datetime
    server_now: datetime
    src: str | None
    content_disposition: str | None = None

    @property
    def ready(self) -> bool:
        return self.state in ("ready", "finished")  # "finished" is what Talk exports say

    @property
    def age(self) -> timedelta:
        return self.server_now - self.updated_at

    def newer_than(self, moment: datetime) -> bool:
        return self.updated_at >= moment

    @classmethod
    def from_response(cls, body: dict[str, Any], response: requests.Response) -> ExportMedia:
        try:
            medium = body["media"][0]
            metadata = medium.get("metadata") or {}
            return cls(
                media_id=str(medium["id"]),
                state=str(metadata.get("state", "")),
                updated_at=parse_time(medium["updated_at"]),
                server_now=server_time(response),
                src=medium.get("src"),
                content_disposition=medium.get("content_disposition"),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PanoptesError(f"Panoptes answered an export request with an unexpected body ({exc!r})") from None


def server_time(response: requests.Response) -> datetime:
    """The server's clock from its Date header; the local clock only if the server sent none."""
    header = response.headers.get("Date")
    if header:
        try:
            return email.utils.parsedate_to_datetime(header).astimezone(timezone.utc)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc)


def _call(method: str, target: ExportTarget, **kwargs: Any) -> tuple[requests.Response, dict[str, Any] | None]:
    client = Panoptes.client()
    try:
        response = client.http_request(method, target.path, **kwargs)
    except requests.RequestException as exc:
        raise PanoptesError(f"cannot reach Panoptes for the {target}: {exc.__class__.__name__}") from None
    body = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            raise PanoptesError(f"Panoptes answered the {target} with {response.status_code} and a non-JSON body") from None
    return response, body


def _errors(body: dict[str, Any] | None) -> str:
    return "; ".join(e.get("message", "") for e in (body or {}).get("errors", [])) or "(no message)"


def describe(target: ExportTarget) -> ExportMedia | None:
    """The export's current state, or None when it was never requested (Panoptes' 404)."""
    response, body = _call("GET", target, retry=True)
    if response.status_code == 404 and "exists" in _errors(body):
        return None
    if response.status_code == 404:
        raise ConfigurationError(f"{target}: {_errors(body)}; check the id and that the login has a role on it")
    if response.status_code == 401:
        raise ConfigurationError(f"{target}: Panoptes wants a login with a role on the project ({_errors(body)})")
    if response.status_code != 200 or body is None:
        raise PanoptesError(f"{target}: Panoptes answered {response.status_code}: {_errors(body)}")
    return ExportMedia.from_response(body, response)


def _generate(target: ExportTarget) -> ExportMedia:
    response, body = _call("POST", target, json={"media": {"content_type": "text/csv"}})
    if response.status_code in (200, 201) and body:
        return ExportMedia.from_response(body, response)
    if response.status_code in (401, 403, 404):
        raise ConfigurationError(f"Panoptes refused to start the {target} ({response.status_code}: {_errors(body)})")
    raise PanoptesError(f"Panoptes answered the {target} request with {response.status_code}: {_errors(body)}")


@dataclass(frozen=True)
class RequestOutcome:
    """What the request step decided; pushed to XCom, so plain values only."""

    action: str  # "requested", "reused" (within the 24 hours) or "backfill" (no API call at all)
    target: dict[str, Any] | None
    media_id: str | None
    requested_at: str | None  # the server time the awaited export was asked for
    state: str | None
    age_hours: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def backfill(cls, reason: str) -> RequestOutcome:
        return cls("backfill", None, None, None, None, None, reason)


def last_request_time(media: ExportMedia, record_path: Path) -> datetime:
    """When this export was last requested, as well as can be known.

    zooflow records its request time when it downloads the result; if the export has not changed
    since (same id and ``updated_at``), that record is exact. Otherwise someone else touched it,
    and ``updated_at`` (the later of their request and its completion) is the safe guess.
    """
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return media.updated_at
    if record.get("media_id") == media.media_id and record.get("updated_at") == media.updated_at.isoformat():
        return parse_time(record["requested_at"])
    return media.updated_at


def remember_request(record_path: Path, media: ExportMedia, requested_at: str) -> None:
    record = {"media_id": media.media_id, "updated_at": media.updated_at.isoformat(), "requested_at": requested_at}
    try:
        if json.loads(record_path.read_text()) == record:
            return  # unchanged: a run done twice writes nothing
    except (OSError, ValueError):
        pass
    atomic_write_json(record_path, record)


def request_export(target: ExportTarget, record_path: Path, *, min_interval: timedelta = RATE_LIMIT) -> RequestOutcome:
    """Ask for a fresh export unless the last request is younger than ``min_interval``.

    A first-ever export (404) is requested. Within the interval the existing export is used,
    whatever its state: a second request would be silently dropped by Panoptes.
    """
    current = describe(target)
    if current is not None:
        last_request = last_request_time(current, record_path)
        since_request = current.server_now - last_request
        hours = round(max(since_request.total_seconds(), 0.0) / 3600, 2)
        if since_request < min_interval:
            reason = (
                f"last request {hours:.1f} h ago (UTC, server clock), under the {min_interval.total_seconds() / 3600:.0f} h "
                f"limit: using the existing export ({current.state}, updated {current.updated_at:%Y-%m-%d %H:%M} UTC)"
            )
            log.info("%s: %s", target, reason)
            # The last request's own time, not the export's: recorded again on download, a later time
            # would push the next request back and make a daily run skip every other day.
            return RequestOutcome("reused", asdict(target), current.media_id, last_request.isoformat(), current.state, hours, reason)
    else:
        hours = None
    media = _generate(target)
    reason = "first export of this resource" if current is None else f"last request {hours:.1f} h ago: requested a new export"
    log.info("%s: %s (media %s)", target, reason, media.media_id)
    return RequestOutcome("requested", asdict(target), media.media_id, media.updated_at.isoformat(), media.state, hours, reason)


def export_complete(media: ExportMedia | None, requested_at: datetime) -> bool:
    """Ready, and built after the request we are waiting for (not yesterday's file)."""
    return media is not None and media.ready and media.newer_than(requested_at)


def stuck_message(target: ExportTarget, state: str, requested_at: str, waited_seconds: float) -> str:
    """Why an export that never became ready probably didn't, and what to do: Panoptes won't say."""
    return (
        f"the {target} requested at {requested_at} is still '{state}' after {waited_seconds / 3600:.1f} h. "
        "Panoptes never reports a failed export: it was probably rate-limited (a second request within 24 h "
        "is accepted but silently never built) or its export worker is stuck. Check the project's Data Exports "
        "page; request again once 24 h have passed since the last request, or allow a longer wait for very "
        "large projects."
    )


def export_ready_check(target: dict[str, Any], requested_at: str) -> Check:
    """The export wait's check: ready, and built after the request (not yesterday's file)."""
    media = describe(ExportTarget(**target))
    if export_complete(media, parse_time(requested_at)):
        return Check(True, media.state, {"media_id": media.media_id, "updated_at": media.updated_at.isoformat()})
    return Check(False, media.state if media else "never requested")

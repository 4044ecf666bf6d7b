"""Requesting, describing and awaiting Panoptes exports without ever asking too early.

Panoptes judges an export request only when its job starts, drops a refused one silently and
counts it anyway, and marks a job that died ``failed`` at its next cleanup (see ``limits.py``).
So a request is made only once the limiter will take it, judged on the server's clock (its
``Date`` header), never the worker's; otherwise the existing export is used. A wait stops at once
on ``failed`` and says when a new request will be allowed.
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
from panoptes_client import Panoptes
from zooflow.checks import Check, WaitEnded
from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.exports.export_types import EXPORT_TYPES
from zooflow.exports.pointer import read_pointer
from zooflow.panoptes import login_hint
from zooflow.exports.limits import (
    RequestRecord, failed_message, next_request_time, parse_time, request_by_someone_else, utc,
)

log = logging.getLogger(__name__)

RESOURCES = {"project": "projects", "workflow": "workflows", "subject_set": "subject_sets"}


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
        raise ConfigurationError(f"{target}: {_errors(body)}; check the id and that the login has a role on it; "
                                 f"{login_hint('project')}")
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
    """What the request step decided; pushed to XCom, so plain values only (times are server-clock ISO)."""

    action: str  # "requested", "reused" (Panoptes would refuse a request now) or "backfill" (no API call at all)
    target: dict[str, Any] | None
    media_id: str | None
    requested_at: str | None  # the last request known: the one the awaited export comes from
    state: str | None
    age_hours: float | None
    reason: str
    previous_request_at: str | None = None  # the request known before that one
    next_request_at: str | None = None  # when Panoptes will run a new request
    request_in_seconds: float | None = None  # "reused": server-clock seconds until then
    last_download: dict[str, Any] | None = None  # latest.json's file and export time, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def backfill(cls, reason: str) -> RequestOutcome:
        return cls("backfill", None, None, None, None, None, reason)


def remember_request(record_path: Path, media: ExportMedia, requested_at: str) -> None:
    """Record a request (at ``requested_at``, server clock) and the export as it is now."""
    RequestRecord.load(record_path).saw(media, parse_time(requested_at)).save(record_path)


def _last_download(folder: Path) -> dict[str, Any] | None:
    try:
        pointer = read_pointer(folder)
        return {"path": pointer["path"], "updated_at": pointer["updated_at"]}
    except (ValueError, KeyError):
        return None


def request_export(target: ExportTarget, record_path: Path) -> RequestOutcome:
    """Ask for a fresh export once Panoptes will take it; until then use the existing one.

    A first-ever export (404) is requested. Otherwise the attempts known (zooflow's own, from
    ``record_path``, and a later one by someone else the export shows) decide when Panoptes runs a
    new request; before that time a request would be dropped silently and counted, so none is made.
    """
    record = RequestRecord.load(record_path)
    current = describe(target)
    known = sorted(filter(None, (*record.attempts, request_by_someone_else(record, current))))
    next_at = next_request_time(known) if current is not None else None
    base = {"target": asdict(target), "last_download": _last_download(record_path.parent)}
    hours = round(max((current.server_now - known[-1]).total_seconds(), 0.0) / 3600, 2) if current and known else None
    if next_at is not None and current.server_now < next_at:
        reason = (f"last request {hours:.1f} h ago (UTC, server clock), under the 24 h limit: Panoptes would drop a "
                  f"new one until {utc(next_at)}, so the existing export is used ({current.state}, updated "
                  f"{utc(current.updated_at)})")
        log.info("%s: %s", target, reason)
        previous = known[-2].isoformat() if len(known) > 1 else None
        return RequestOutcome("reused", media_id=current.media_id, requested_at=known[-1].isoformat(), state=current.state,
                              age_hours=hours, reason=reason, previous_request_at=previous,
                              next_request_at=next_at.isoformat(),
                              request_in_seconds=(next_at - current.server_now).total_seconds(), **base)
    media = _generate(target)
    record.saw(media, media.updated_at).save(record_path)
    reason = "first export of this resource" if not known else f"last request {hours:.1f} h ago: requested a new export"
    log.info("%s: %s (media %s)", target, reason, media.media_id)
    previous = known[-1].isoformat() if known else None
    return RequestOutcome("requested", media_id=media.media_id, requested_at=media.updated_at.isoformat(),
                          state=media.state, age_hours=hours, reason=reason, previous_request_at=previous,
                          next_request_at=next_request_time([media.updated_at]).isoformat(), **base)


def export_complete(media: ExportMedia | None, requested_at: datetime) -> bool:
    """Ready, and built after the request we are waiting for (not yesterday's file)."""
    return media is not None and media.ready and media.newer_than(requested_at)


def export_ready_check(target: dict[str, Any], requested_at: str, outcome: dict[str, Any] | None = None) -> Check:
    """The export wait's check: ready, and built after the request (not yesterday's file).

    Raises WaitEnded when Panoptes has marked the export ``failed``: it will not be built, so the
    wait stops at once, saying when a new request will be allowed (from the request step's ``outcome``)."""
    media = describe(ExportTarget(**target))
    if export_complete(media, parse_time(requested_at)):
        return Check(True, media.state, {"media_id": media.media_id, "updated_at": media.updated_at.isoformat()})
    if media is not None and media.state == "failed" and outcome:
        raise WaitEnded(failed_message(ExportTarget(**target), outcome, media.updated_at))
    return Check(False, media.state if media else "never requested")

"""What part of an export a team wants: the slice spec.

The founding scripts hard-coded these tests and got several wrong (float versions, string dates,
``int('')`` on empty ids, gold/expert cells holding ``NA``). The spec is parsed and checked once, from
YAML, DAG Params or CLI flags, so a bad value fails before any file is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from zooflow.config_files import load_mapping
from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing

ROW_CHOICES = ("exclude", "only", "include")
FORMATS = ("csv", "parquet")


def parse_version(text: str) -> tuple[int, int]:
    """``"13.19"`` -> ``(13, 19)``: workflow versions are major.minor numbers, not decimals."""
    match = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*", str(text))
    if not match:
        raise ConfigurationError(f"workflow version {excerpt(repr(text))} is not of the form MAJOR.MINOR (for example 13.19)")
    return int(match.group(1)), int(match.group(2) or 0)


def parse_utc(text: str | date | datetime) -> datetime:
    """A UTC instant from a date (midnight) or a datetime; a datetime without a zone is taken as UTC."""
    if isinstance(text, datetime):
        value = text
    elif isinstance(text, date):
        value = datetime.combine(text, time.min)
    else:
        raw = str(text).strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ConfigurationError(
                f"{excerpt(repr(text))} is not a UTC date or datetime; use 2025-01-31 or 2025-01-31T12:00:00Z"
            ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_id_range(text: str | Sequence[int]) -> tuple[int, int]:
    """``"100-200"`` (inclusive at both ends), ``"150"``, or a two-item list."""
    if isinstance(text, (list, tuple)):
        if len(text) != 2:
            raise ConfigurationError(f"subject id range {excerpt(repr(text))} needs exactly two ends")
        low, high = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
        if not match:
            raise ConfigurationError(f"subject id range {excerpt(repr(text))} is not of the form A-B (for example 1000-1999)")
        low, high = match.group(1), match.group(2) or match.group(1)
    low, high = int(low), int(high)
    if low > high:
        raise ConfigurationError(f"subject id range {excerpt(repr(text))} is empty: {low} > {high}")
    return low, high


def _choice(name: str, value: str) -> str:
    value = str(value).strip().lower()
    if value not in ROW_CHOICES:
        raise ConfigurationError(f"{name} must be one of {', '.join(ROW_CHOICES)}, not {excerpt(repr(value))}")
    return value


@dataclass(frozen=True)
class SliceSpec:
    """Which rows to keep. Empty lists mean "no restriction"."""

    workflow_ids: tuple[int, ...] = ()
    min_workflow_version: tuple[int, int] | None = None
    subject_id_ranges: tuple[tuple[int, int], ...] = ()
    subject_set_ids: tuple[int, ...] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    gold: str = "exclude"
    expert: str = "include"
    formats: tuple[str, ...] = ("csv", "parquet")

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ConfigurationError(
                f"the created_at window is empty: since {self.since.isoformat()} is not before until {self.until.isoformat()}"
            )
        unknown = set(self.formats) - set(FORMATS)
        if unknown or not self.formats:
            raise ConfigurationError(f"output formats must be among {', '.join(FORMATS)}; got {listing(sorted(unknown)) or 'none'}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> SliceSpec:
        """From YAML or Params. Keys: workflow_ids, min_workflow_version, subject_ids (list of A-B),
        subject_set_ids, since, until, gold, expert, formats. Unknown keys are an error, not ignored."""
        if data is not None and not isinstance(data, Mapping):
            raise ConfigurationError(f"a slice spec is a mapping of keys to values, not a {type(data).__name__}")
        data = dict(data or {})
        known = {"workflow_ids", "min_workflow_version", "subject_ids", "subject_set_ids", "since", "until", "gold", "expert", "formats"}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ConfigurationError(f"unknown slice spec key(s) {listing(unknown)}; known keys: {', '.join(sorted(known))}")

        def ints(key: str) -> tuple[int, ...]:
            values = data.get(key) or []
            if isinstance(values, (int, str)):
                values = [values]
            try:
                return tuple(int(v) for v in values)
            except (TypeError, ValueError):
                raise ConfigurationError(f"{key} must be a list of whole numbers, not {excerpt(repr(values))}") from None

        ranges = data.get("subject_ids") or []
        if isinstance(ranges, (str, int)):
            ranges = [ranges]
        formats = data.get("formats") or FORMATS
        return cls(
            workflow_ids=ints("workflow_ids"),
            min_workflow_version=parse_version(data["min_workflow_version"]) if data.get("min_workflow_version") else None,
            subject_id_ranges=tuple(parse_id_range(r) for r in ranges),
            subject_set_ids=ints("subject_set_ids"),
            since=parse_utc(data["since"]) if data.get("since") else None,
            until=parse_utc(data["until"]) if data.get("until") else None,
            gold=_choice("gold", data.get("gold") or "exclude"),
            expert=_choice("expert", data.get("expert") or "include"),
            formats=tuple(str(f) for f in ([formats] if isinstance(formats, str) else formats)),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> SliceSpec:
        return cls.from_mapping(load_mapping(path, "slice spec file"))

    def with_window(self, since: datetime | None, until: datetime | None) -> SliceSpec:
        """The same spec over another created_at window (a run's data interval)."""
        return replace(self, since=since, until=until)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the user's terms: what reports show, and what ``from_mapping`` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif f.name == "min_workflow_version" and value:
                value = f"{value[0]}.{value[1]}"
            elif f.name == "subject_id_ranges":
                out["subject_ids"] = [f"{a}-{b}" for a, b in value]
                continue
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

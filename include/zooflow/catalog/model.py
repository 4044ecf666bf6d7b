"""The catalog's model: what the listing holds (exports, rounds, reports, run summaries) and how it reads as text.

The data classes are what :mod:`zooflow.catalog.reading` gathers from the data root and what
:mod:`zooflow.catalog.page` renders; the constants say which report kinds exist and which DAG writes
them, so a run's tab shows only its own DAG's outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

EXPORT_REPORT = "export-report"
ROUND_REPORT = "al-round-report"
# Reports, their records and images, and the data files reports link (slices, flattened tables, quarantined
# rows, round manifests). Raw exports (.csv.gz) are not among them: they hold volunteers' IP addresses.
SERVED_SUFFIXES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".png": "image/png",
                   ".csv": "text/csv; charset=utf-8", ".parquet": "application/vnd.apache.parquet"}

# Which DAG writes which kind of report, so a run's tab shows only its own DAG's outputs (run ids such
# as manual__<time> are not unique across DAGs).
REPORT_DAGS = {
    EXPORT_REPORT: "zooniverse_exports",
    "connection_check": "zooniverse_connection_check",
    "project_setup": "zooniverse_project_setup",
    "remove_duplicates": "zooniverse_remove_duplicates",
    "update_metadata": "zooniverse_update_metadata",
}
AL_DAG = "zooniverse_active_learning"
CURVE_MIN_POINTS = 2  # one point draws a lone dot and a legend, not a curve


def scored_rounds(records: Iterable[Any]) -> int:
    """Rounds of a ``state.json`` with a held-out accuracy: the points its learning curve has."""
    return sum(1 for r in records if isinstance(r, dict) and isinstance(r.get("metrics"), dict)
               and r["metrics"].get("accuracy") is not None)


def report_dag(kind: str) -> str | None:
    """The DAG that writes reports of ``kind`` (``slice-<type>`` comes from the exports DAG)."""
    return "zooniverse_exports" if kind.startswith("slice-") else REPORT_DAGS.get(kind)


def report_title(kind: str) -> str:
    """What a link to a report of ``kind`` says: short, since the row already names the run or round."""
    if kind.startswith("slice-"):
        return f"{kind.removeprefix('slice-')} slice"
    return {EXPORT_REPORT: "export report", ROUND_REPORT: "round report"}.get(kind, kind.replace("_", " ").replace("-", " "))


# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Link:
    """A file under the data root: ``path`` is relative to the root, in POSIX form."""

    label: str
    path: str


@dataclass(frozen=True)
class ExportEntry:
    """One export of a project (or of one of its workflows or subject sets), at its latest state.

    ``state``: ``downloading`` (a ``.part`` file is there and nothing complete yet), ``downloaded``,
    ``sliced`` (a slice report read this very file), or ``file missing`` (``latest.json`` names a
    file that is gone). A request leaves no file of its own until its export is downloaded, so a
    requested export appears once its download starts. ``age`` is how old the downloaded export
    is: now minus the time Panoptes built it (``updated_at``); ``partial_bytes`` is the size of a
    download under way (a newer one, when the state is not ``downloading``).
    """

    owner: str
    export_type: str
    state: str
    file: str | None = None
    bytes: int | None = None
    updated_at: datetime | None = None
    downloaded_at: datetime | None = None
    requested_at: datetime | None = None
    age: timedelta | None = None
    partial_bytes: int | None = None
    partitions: dict[str, int] = field(default_factory=dict)
    rows_kept: int | None = None
    rows_quarantined: int | None = None
    run_id: str | None = None
    reports: tuple[Link, ...] = ()


@dataclass(frozen=True)
class RoundEntry:
    """One active-learning round of one workflow, from its ``state.json`` record."""

    workflow_id: str
    round: int
    state: str  # "uploaded" | "chosen, not uploaded"
    set_name: str | None
    set_id: int | str | None
    picked: int
    subjects: int | None
    labelled: int | None
    accuracy: float | None
    f1: float | None
    note: str | None
    selected_at: datetime | None
    uploaded_at: datetime | None
    run_ids: tuple[str, ...]
    reports: tuple[Link, ...]


@dataclass(frozen=True)
class ReportEntry:
    """One run's report of one kind: its HTML and/or JSON file."""

    kind: str
    name: str  # the file stem: the safe run id (or workflow-<id>-round-<NNN>)
    modified: datetime
    html: Link | None
    json: Link | None
    run_id: str | None = None  # the run id as Airflow shows it, when the JSON records it


@dataclass(frozen=True)
class RunSummary:
    """What one DAG run left under the data root, in a few lines, with links to its reports.

    ``key`` is ``safe_name(run_id)``, the name report files carry; ``run_id`` is the id as Airflow
    shows it when a record kept it (round states and export reports do), else ``key``.
    """

    dag_id: str | None
    key: str
    run_id: str
    project: str | None
    lines: tuple[str, ...]
    links: tuple[Link, ...]
    finished_at: datetime | None


@dataclass(frozen=True)
class ProjectCatalog:
    name: str  # the slug as the reports give it (owner/name)
    folder: str  # its folder under projects/
    exports: tuple[ExportEntry, ...]
    rounds: tuple[RoundEntry, ...]
    learning_curves: tuple[Link, ...]
    reports: tuple[ReportEntry, ...]
    runs: tuple[RunSummary, ...]


@dataclass(frozen=True)
class Catalog:
    root: Path
    generated_at: datetime
    projects: tuple[ProjectCatalog, ...]


# --------------------------------------------------------------------------------------------- text


def score_text(value: float | None) -> str:
    """A held-out score as the pages say it: two decimals, or n/a before a round could be scored."""
    return "n/a" if value is None else f"{value:.2f}"


def count_noun(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def format_ago(age: timedelta | None) -> str:
    """How long ago, shortly: 45 s ago, 12 min ago, 3 h 5 min ago, 2 d 4 h ago. A time ahead of this
    machine's clock (the server's clock runs ahead, or the sandbox's was moved on) says so instead."""
    if age is None:
        return "n/a"
    seconds = int(age.total_seconds())
    if seconds < 0:
        return "ahead of this machine's clock"
    if seconds < 60:
        return f"{seconds} s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min ago"
    if hours < 24:
        return f"{hours} h {minutes % 60} min ago" if minutes % 60 else f"{hours} h ago"
    return f"{days} d {hours % 24} h ago" if hours % 24 else f"{days} d ago"


def format_size(size: int | None) -> str:
    if size is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"

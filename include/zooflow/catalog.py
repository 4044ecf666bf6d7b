"""What the data root holds, as one listing: projects, their exports, active-learning rounds and reports.

The Airflow UI's Zooniverse page and each DAG run's Zooniverse tab show this listing, but nothing
here imports Airflow: the files under the data root already say everything (``latest.json`` of each
export, the slice reports, each workflow's ``state.json``), so the listing reads them directly and
stays correct whichever way they were written (a DAG, the command line, another worker). Reports
are linked when their files exist, never assumed, because report kinds are added over time.

Every report is named after the run that wrote it (``safe_name(run_id)``) except the active-learning
round reports, named after their round; rounds list their run ids in ``state.json``. That is what
ties a DAG run to its outputs in :func:`run_summary`.

All paths handed out are relative to the data root (POSIX form), so a web page can link them
through one file route that refuses anything outside ``projects/`` (:func:`resolve_file`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from zooflow.paths import DataRoot, safe_name

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


# --------------------------------------------------------------------------------------------- reading


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc)


def _time(value: Any) -> datetime | None:
    """An ISO time from a record as aware UTC; a naive one is taken as UTC (zooflow writes UTC only)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _json(path: Path) -> dict[str, Any] | None:
    """A JSON record, or None when it is missing or half-written by hand: one bad file must not hide the rest."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


class _Project:
    """One project folder being read; collects what the listing and the run summaries need."""

    def __init__(self, root: DataRoot, folder: Path, now: datetime) -> None:
        self.root = root
        self.folder = folder
        self.now = now
        self.reports_dir = folder / "reports"
        self.run_ids: dict[str, str] = {}  # safe name -> run id as Airflow shows it, from the records that keep it

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root.root).as_posix()

    def link(self, label: str, path: Path) -> Link:
        return Link(label, self.rel(path))

    # -- reports ---------------------------------------------------------------------------------

    def reports(self) -> list[ReportEntry]:
        entries = []
        if not self.reports_dir.is_dir():
            return entries
        for kind_dir in sorted(p for p in self.reports_dir.iterdir() if p.is_dir()):
            stems: dict[str, dict[str, Path]] = {}
            for path in kind_dir.iterdir():
                if path.suffix in (".html", ".json") and not path.name.startswith("."):
                    stems.setdefault(path.stem, {})[path.suffix] = path
            title = report_title(kind_dir.name)
            for stem, files in stems.items():
                html_file, json_file = files.get(".html"), files.get(".json")
                recorded = (_json(json_file) or {}).get("run_id") if json_file else None
                run_id = recorded if isinstance(recorded, str) and safe_name(recorded) == stem else None
                if run_id:
                    self.run_ids[stem] = run_id
                entries.append(ReportEntry(
                    kind=kind_dir.name, name=stem, modified=max(_mtime(p) for p in files.values()),
                    html=self.link(title, html_file) if html_file else None,
                    json=self.link(f"{title} JSON", json_file) if json_file else None, run_id=run_id,
                ))
        # A slice report does not record its run id; the export report of the same run does.
        entries = [replace(e, run_id=self.run_ids[e.name]) if e.run_id is None and e.name in self.run_ids else e
                   for e in entries]
        entries.sort(key=lambda e: (e.modified, e.kind, e.name), reverse=True)
        return entries

    def report_links(self, kind: str, stem: str) -> tuple[Link, ...]:
        """The HTML and JSON of one report, those that exist, HTML first."""
        folder = self.reports_dir / safe_name(kind)
        title = report_title(kind)
        return tuple(self.link(title if suffix == ".html" else f"{title} JSON", folder / f"{stem}{suffix}")
                     for suffix in (".html", ".json") if (folder / f"{stem}{suffix}").is_file())

    def project_name(self) -> str:
        """The slug as a report recorded it; else the folder name with its first ``__`` read as ``/``."""
        for kind_dir in sorted(self.reports_dir.glob("*")) if self.reports_dir.is_dir() else []:
            for path in sorted(kind_dir.glob("*.json"))[:3]:
                data = _json(path) or {}
                project = data.get("project")
                if isinstance(project, dict):
                    project = project.get("slug")
                if isinstance(project, str) and "/" in project and safe_name(project) == self.folder.name:
                    return project
        return self.folder.name.replace("__", "/", 1)

    # -- exports ---------------------------------------------------------------------------------

    def slice_reads(self) -> dict[str, tuple[str, dict[str, Any], datetime]]:
        """File name of each sliced download -> (run stem, report, finished) of the newest slice of it."""
        found: dict[str, tuple[str, dict[str, Any], datetime]] = {}
        for path in self.reports_dir.glob("slice-*/*.json") if self.reports_dir.is_dir() else []:
            report = _json(path)
            if not report or not report.get("source"):
                continue
            finished = _time(report.get("finished_at")) or _mtime(path)
            name = Path(str(report["source"])).name
            if name not in found or found[name][2] < finished:
                found[name] = (path.stem, report, finished)
        return found

    def export_report_mentioning(self, file_name: str) -> tuple[Link, ...]:
        """The newest export report (another team's format) whose JSON names this download file."""
        folder = self.reports_dir / EXPORT_REPORT
        candidates = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
        for path in candidates:
            try:
                if file_name in path.read_text(errors="replace"):
                    return self.report_links(EXPORT_REPORT, path.stem)
            except OSError:
                continue
        return ()

    def exports(self) -> list[ExportEntry]:
        sliced = self.slice_reads()
        entries = []
        for type_dir in sorted(self.folder.glob("exports/*/*")):
            if type_dir.is_dir() and (entry := self.export(type_dir, sliced)) is not None:
                entries.append(entry)
        far_past = datetime.min.replace(tzinfo=timezone.utc)
        entries.sort(key=lambda e: (e.updated_at or e.requested_at or far_past, e.export_type), reverse=True)
        return entries

    def export(self, type_dir: Path, sliced: dict[str, tuple[str, dict[str, Any], datetime]]) -> ExportEntry | None:
        owner, export_type = type_dir.parent.name, type_dir.name
        latest = _json(type_dir / "latest.json")
        request = _json(type_dir / "last_request.json") or {}
        requested_at = _time(request.get("requested_at"))
        parts = [p for p in type_dir.glob("*.part") if p.is_file()]
        partial = sum(p.stat().st_size for p in parts) if parts else None
        if not latest or not latest.get("path"):
            return ExportEntry(owner, export_type, "downloading", requested_at=requested_at,
                               partial_bytes=partial) if parts else None
        name = str(latest["path"])
        updated = _time(latest.get("updated_at"))
        common = dict(file=name, bytes=latest.get("bytes"), updated_at=updated, downloaded_at=_time(latest.get("recorded_at")),
                      requested_at=requested_at, age=self.now - updated if updated else None, partial_bytes=partial)
        if not (type_dir / name).is_file():
            return ExportEntry(owner, export_type, "file missing", **common)
        links = self.export_report_mentioning(name)
        if name in sliced:
            stem, report, _ = sliced[name]
            partitions = {str(day): int(rows) for day, rows in (report.get("partitions") or {}).items()}
            links = links or self.report_links(EXPORT_REPORT, stem)
            links += self.report_links(f"slice-{export_type}", stem)
            return ExportEntry(owner, export_type, "sliced", partitions=partitions, rows_kept=report.get("rows_kept"),
                               rows_quarantined=report.get("rows_quarantined"), run_id=self.run_ids.get(stem, stem),
                               reports=links, **common)
        return ExportEntry(owner, export_type, "downloaded", reports=links, **common)

    # -- active learning -------------------------------------------------------------------------

    def rounds(self) -> tuple[list[RoundEntry], list[Link]]:
        rounds, curves = [], []
        for workflow_dir in sorted(self.folder.glob("al/workflow-*")):
            state = _json(workflow_dir / "state.json")
            if state is None:
                continue
            workflow_id = workflow_dir.name.removeprefix("workflow-")
            if (workflow_dir / "learning_curve.png").is_file() and scored_rounds(state.get("rounds") or []) >= CURVE_MIN_POINTS:
                curves.append(self.link(f"workflow {workflow_id} learning curve", workflow_dir / "learning_curve.png"))
            for record in state.get("rounds") or []:
                if isinstance(record, dict) and isinstance(record.get("round"), int):
                    rounds.append(self.round(workflow_id, record))
        rounds.sort(key=lambda r: (r.selected_at or datetime.min.replace(tzinfo=timezone.utc), r.round), reverse=True)
        return rounds, curves

    def round(self, workflow_id: str, record: dict[str, Any]) -> RoundEntry:
        number = record["round"]
        metrics = record.get("metrics") or {}
        uploaded = _time(record.get("uploaded_at"))
        stem = f"workflow-{safe_name(workflow_id)}-round-{number:03d}"
        return RoundEntry(
            workflow_id=workflow_id, round=number, state="uploaded" if uploaded else "chosen, not uploaded",
            set_name=record.get("set_name"), set_id=record.get("set_id"), picked=len(record.get("picked") or []),
            subjects=len(record["subject_ids"]) if isinstance(record.get("subject_ids"), (list, dict)) else None,
            labelled=record.get("labelled"), accuracy=metrics.get("accuracy"), f1=metrics.get("f1"),
            note=metrics.get("note"), selected_at=_time(record.get("selected_at")), uploaded_at=uploaded,
            run_ids=tuple(str(r) for r in record.get("run_ids") or []),
            reports=self.report_links(ROUND_REPORT, stem),
        )

    # -- runs ------------------------------------------------------------------------------------

    def runs(self, name: str, reports: list[ReportEntry], rounds: list[RoundEntry],
             exports: list[ExportEntry]) -> list[RunSummary]:
        """A summary of every run that left a report or a round here, newest first."""
        by_file = {export.file: export for export in exports if export.file}
        grouped: dict[tuple[str | None, str], dict[str, Any]] = {}

        def entry(dag_id: str | None, stem: str) -> dict[str, Any]:
            return grouped.setdefault((dag_id, stem), {"lines": [], "generic": [], "links": [], "finished": None})

        def touch(item: dict[str, Any], when: datetime | None) -> None:
            if when and (item["finished"] is None or when > item["finished"]):
                item["finished"] = when

        for report in sorted(reports, key=lambda r: (r.kind != EXPORT_REPORT, r.kind)):
            if report.kind == ROUND_REPORT:
                continue  # named by round, not by run: attached to the round's runs below
            item = entry(report_dag(report.kind), report.name)
            lines = self.report_lines(report, by_file)
            item["lines" if lines else "generic"].extend(lines or [f"{report_title(report.kind)} written"])
            item["links"].extend(link for link in (report.html, report.json) if link)
            touch(item, report.modified)
        for number in rounds:
            for run_id in number.run_ids:
                self.run_ids.setdefault(safe_name(run_id), run_id)
                item = entry(AL_DAG, safe_name(run_id))
                item["lines"].append(round_line(number))
                item["links"].extend(number.reports)
                touch(item, number.uploaded_at or number.selected_at)
        summaries = [RunSummary(dag_id, stem, self.run_ids.get(stem, stem), name,
                                tuple(dict.fromkeys(item["lines"] or item["generic"])),
                                tuple(dict.fromkeys(item["links"])), item["finished"])
                     for (dag_id, stem), item in grouped.items()]
        summaries.sort(key=lambda s: (s.finished_at or datetime.min.replace(tzinfo=timezone.utc), s.key), reverse=True)
        return summaries

    def report_lines(self, report: ReportEntry, exports: dict[str, ExportEntry]) -> list[str]:
        """What the report says in a line or two; empty when its kind has nothing more to say than its name."""
        data = _json(self.root.root / report.json.path) if report.json else None
        if data is None:
            return []
        try:
            return _report_lines(report.kind, data, exports)
        except (KeyError, TypeError, ValueError, AttributeError):
            return []


def _report_lines(kind: str, data: dict[str, Any], exports: dict[str, ExportEntry]) -> list[str]:
    """One or two lines a person reads first, for the report kinds zooflow writes."""
    if kind.startswith("slice-"):
        days = sorted(data.get("partitions") or {})
        span = f" ({days[0]} to {days[-1]})" if len(days) > 1 else f" ({days[0]})" if days else ""
        name = Path(str(data["source"])).name
        export = exports.get(name)
        about = f" ({format_size(export.bytes)}, built {format_age(export.age)} ago)" if export else ""
        return [f"{data.get('kind') or kind.removeprefix('slice-')} export {name}{about}: {data['rows_kept']} of "
                f"{data['rows_read']} rows kept in {_count(len(days), 'daily partition')}{span}, "
                f"{data.get('rows_quarantined', 0)} quarantined"]
    if kind == "connection_check":
        from zooflow.projects import format_report

        return [line.strip() for line in format_report(data)]
    if kind in ("remove_duplicates", "update_metadata"):
        mode = "applied" if data.get("applied") else "dry run"
        counts = ", ".join(f"{key} {data[key]}" for key in ("subjects", "duplicates", "removed", "updated", "unmatched_rows")
                           if isinstance(data.get(key), int))
        return [f"{kind.replace('_', ' ')} on subject set {data.get('subject_set_id')} ({mode}): {counts}"]
    if kind == "project_setup":
        return [f"project setup ({'dry run' if data.get('dry_run') else 'applied'})"]
    return []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def round_line(entry: RoundEntry) -> str:
    accuracy = "n/a" if entry.accuracy is None else f"{entry.accuracy:.2f}"
    where = (f"uploaded to subject set {entry.set_id} ({entry.set_name})" if entry.state == "uploaded"
             else f"chosen for subject set {entry.set_name!r}, not uploaded yet")
    return (f"workflow {entry.workflow_id} round {entry.round}: {entry.picked} items {where}; "
            f"trained on {entry.labelled} labels, held-out accuracy {accuracy}")


def build_catalog(root: DataRoot, *, now: datetime | None = None) -> Catalog:
    """Everything under ``root/projects``: each project's exports, rounds, reports and run summaries."""
    now = _now(now)
    projects = []
    base = root.root / "projects"
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        project = _Project(root, folder, now)
        reports = project.reports()
        exports = project.exports()
        rounds, curves = project.rounds()
        if not (reports or exports or rounds):
            continue
        name = project.project_name()
        projects.append(ProjectCatalog(
            name=name, folder=folder.name, exports=tuple(exports), rounds=tuple(rounds), learning_curves=tuple(curves),
            reports=tuple(reports), runs=tuple(project.runs(name, reports, rounds, exports)),
        ))
    return Catalog(root=root.root, generated_at=now, projects=tuple(projects))


def run_summary(root: DataRoot, dag_id: str, run_id: str, *, now: datetime | None = None) -> RunSummary:
    """What one DAG run left under the data root, across projects: the run tab's content.

    Only outputs of ``dag_id``'s kind count (a connection check and an export run can share a
    ``manual__<time>`` id); a DAG zooflow does not know gets every report named after the run.
    Lines are prefixed with their project only when the run touched more than one.
    """
    catalog = build_catalog(root, now=now)
    key = safe_name(run_id)
    known = dag_id in set(REPORT_DAGS.values()) | {AL_DAG}
    found = [summary for project in catalog.projects for summary in project.runs
             if summary.key == key and (summary.dag_id == dag_id or not known)]
    projects = list(dict.fromkeys(s.project for s in found))
    lines = [f"{s.project}: {line}" if len(projects) > 1 else line for s in found for line in s.lines]
    links = [link for s in found for link in s.links]
    finished = max((s.finished_at for s in found if s.finished_at), default=None)
    return RunSummary(dag_id, key, run_id, projects[0] if len(projects) == 1 else None, tuple(lines),
                      tuple(dict.fromkeys(links)), finished)


def resolve_file(root: DataRoot, relative: str) -> Path | None:
    """The file a page may link, or None: only report-like files (:data:`SERVED_SUFFIXES`) under
    ``projects/``, reached without ``..``, hidden names, NUL bytes or symlinks leading outside the data root."""
    if "\0" in relative:
        return None  # the OS refuses such a name (ValueError), and no file has one
    parts = Path(relative).parts
    if (not parts or parts[0] != "projects" or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
            or Path(relative).is_absolute() or Path(relative).suffix.lower() not in SERVED_SUFFIXES):
        return None
    base = (root.root / "projects").resolve()
    try:
        path = (root.root / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


# --------------------------------------------------------------------------------------------- text


def format_age(age: timedelta | None) -> str:
    """A short age: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if age is None:
        return "n/a"
    seconds = int(age.total_seconds())
    if seconds < 0:
        return "in the future (clock skew)"
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def format_size(size: int | None) -> str:
    if size is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# --------------------------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 24px;color:#1a202c;
     background:#fff;font-size:14px;line-height:1.4}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px;color:#4a5568}
.muted,.sub{color:#718096}.sub{font-size:12px}table{border-collapse:collapse;width:100%;margin-bottom:6px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #edf2f7;vertical-align:top}
th{background:#f7fafc;font-weight:600;color:#4a5568;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.when{white-space:nowrap}
.state{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;background:#edf2f7;white-space:nowrap}
.state.sliced,.state.uploaded{background:#c6f6d5;color:#22543d}.state.downloaded{background:#bee3f8;color:#2a4365}
.state.downloading,.state.chosen{background:#fefcbf;color:#744210}
.state.missing{background:#fed7d7;color:#822727}
a{color:#2b6cb0}code{font-size:12px;word-break:break-all}ul.lines{padding-left:18px;margin:0}ul.lines li{margin:1px 0}
.links a{white-space:nowrap;margin-right:8px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _links(links: Iterable[Link], href: Callable[[str], str]) -> str:
    anchors = " ".join(f'<a href="{_e(href(link.path))}">{_e(link.label)}</a>' for link in links)
    return f'<span class="links">{anchors}</span>' if anchors else '<span class="muted">none</span>'


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return '<span class="muted">n/a</span>'
    return f'<span title="{_e(when.isoformat(timespec="seconds"))}">{_e(format_age(now - when))} ago</span>'


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def render_catalog(catalog: Catalog, href: Callable[[str], str], *, data_root_label: str, first: str = "") -> str:
    """The Zooniverse page: per project, exports, active-learning rounds, recent runs and reports.

    ``href`` turns a data-root-relative path into the URL that serves it. Every value is escaped:
    project, set and file names come from Panoptes and from whoever wrote the files. ``first`` is
    HTML (already escaped) shown above the projects: what Airflow knows and the files do not, such
    as failed runs.
    """
    now = catalog.generated_at
    out = ["<h1>Zooniverse</h1>",
           f'<p class="muted">Data root <code>{_e(data_root_label)}</code>, listed {_e(now.strftime("%Y-%m-%d %H:%M:%S"))} '
           "UTC. Every DAG run also shows its own outputs on its Zooniverse tab.</p>", first]
    if not catalog.projects:
        out.append("<p>No project has exports, rounds or reports under this data root yet. Run "
                   "<code>zooniverse_exports</code> (or <code>zooniverse_connection_check</code>) to fill it.</p>")
    for project in catalog.projects:
        out.append(f'<h2 id="{_e(project.folder)}">{_e(project.name)}</h2>')
        out.append(_exports_table(project, href, now))
        out.append(_rounds_table(project, href, now))
        out.append(_runs_table(project, href, now))
        out.append(_reports_table(project, href, now))
    return _page("Zooniverse", "".join(out))


def _slices(e: ExportEntry) -> str:
    parts = []
    if e.partitions:
        days = sorted(e.partitions)
        span = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        parts.append(f"{_count(e.rows_kept or 0, 'row')}, {_count(len(days), 'day')} ({span})")
        if e.rows_quarantined:
            parts.append(f"{e.rows_quarantined} quarantined")
    elif e.state == "sliced":
        parts.append("no rows in the slice window")
    if e.partial_bytes:
        parts.append(f"{format_size(e.partial_bytes)} of a download so far")
    return "; ".join(parts)


def _exports_table(project: ProjectCatalog, href: Callable[[str], str], now: datetime) -> str:
    if not project.exports:
        return '<h3>Exports</h3><p class="muted">No export requested yet.</p>'
    rows = []
    for e in project.exports:
        owner = "" if e.owner == "project" else f" of {e.owner}"
        rows.append(
            f'<tr class="export" data-export-type="{_e(e.export_type)}" data-state="{_e(e.state)}">'
            f'<td>{_e(e.export_type)}{_e(owner)}<br><code class="sub">{_e(e.file or "")}</code></td>'
            f'<td><span class="state {_e(e.state.split()[-1])}">{_e(e.state)}</span></td>'
            f'<td class="num">{_e(format_size(e.bytes))}</td>'
            f'<td class="when">{_ago(e.updated_at, now)}</td><td class="when">{_ago(e.downloaded_at, now)}</td>'
            f"<td>{_e(_slices(e))}</td><td><code>{_e(e.run_id or '')}</code></td>"
            f"<td>{_links(e.reports, href)}</td></tr>")
    return ("<h3>Exports</h3><table><thead><tr><th>Export</th><th>State</th><th>Size</th><th>Age (built)</th>"
            "<th>Downloaded</th><th>Sliced</th><th>Sliced by run</th><th>Reports</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _rounds_table(project: ProjectCatalog, href: Callable[[str], str], now: datetime) -> str:
    curves = (f"<p>Learning curves: {_links(project.learning_curves, href)}</p>" if project.learning_curves else
              f'<p class="muted curve">No learning curve yet: it is drawn once {CURVE_MIN_POINTS} rounds have held-out '
              "scores.</p>")
    if not project.rounds:
        return '<h3>Active-learning rounds</h3><p class="muted">No round chosen yet.</p>' + curves
    rows = []
    for r in project.rounds:
        accuracy = "n/a" if r.accuracy is None else f"{r.accuracy:.2f}"
        f1 = "n/a" if r.f1 is None else f"{r.f1:.2f}"
        title = f' title="{_e(r.note)}"' if r.note else ""
        subject_set = f"{r.set_id}" if r.set_id is not None else "not created yet"
        rows.append(
            f'<tr class="round" data-workflow="{_e(r.workflow_id)}" data-round="{r.round}" data-state="{_e(r.state)}">'
            f'<td>workflow {_e(r.workflow_id)}, round {r.round}</td>'
            f'<td><span class="state {_e(r.state.split(",")[0])}">{_e(r.state)}</span></td>'
            f'<td>{_e(subject_set)}<br><span class="sub">{_e(r.set_name or "")}</span></td>'
            f'<td class="num">{r.picked}</td><td class="num">{_e(r.labelled)}</td>'
            f'<td class="num"{title}>{_e(accuracy)}</td><td class="num">{_e(f1)}</td>'
            f'<td class="when">{_ago(r.selected_at, now)}</td><td class="when">{_ago(r.uploaded_at, now)}</td>'
            f"<td><code>{'<br>'.join(_e(run) for run in r.run_ids)}</code></td><td>{_links(r.reports, href)}</td></tr>")
    return ("<h3>Active-learning rounds</h3><table><thead><tr><th>Round</th><th>State</th><th>Subject set</th>"
            "<th>Picked</th><th>Labels</th><th>Accuracy</th><th>F1</th><th>Chosen</th><th>Uploaded</th><th>Runs</th>"
            f"<th>Reports</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{curves}")


def _runs_table(project: ProjectCatalog, href: Callable[[str], str], now: datetime, limit: int = 10) -> str:
    if not project.runs:
        return ""
    rows = []
    for run in project.runs[:limit]:
        lines = "".join(f"<li>{_e(line)}</li>" for line in run.lines)
        rows.append(f'<tr class="run" data-dag="{_e(run.dag_id or "")}"><td>{_e(run.dag_id or "?")}<br>'
                    f'<code class="sub">{_e(run.run_id)}</code></td><td class="when">{_ago(run.finished_at, now)}</td>'
                    f'<td><ul class="lines">{lines}</ul></td><td>{_links(run.links, href)}</td></tr>')
    return ("<h3>Recent runs</h3><table><thead><tr><th>DAG and run</th><th>Last output</th><th>Summary</th>"
            f"<th>Reports</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _reports_table(project: ProjectCatalog, href: Callable[[str], str], now: datetime, limit: int = 20) -> str:
    if not project.reports:
        return ""
    rows = "".join(
        f'<tr class="report"><td>{_e(report_title(r.kind))}</td><td><code>{_e(r.run_id or r.name)}</code></td>'
        f'<td class="when">{_ago(r.modified, now)}</td><td>{_links([link for link in (r.html, r.json) if link], href)}</td></tr>'
        for r in project.reports[:limit])
    more = f'<p class="muted">{len(project.reports) - limit} older reports not shown.</p>' if len(project.reports) > limit else ""
    return (f"<h3>Reports</h3><table><thead><tr><th>Report</th><th>Run or round</th><th>Written</th><th>Files</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>{more}")


def render_run(summary: RunSummary, href: Callable[[str], str], *, now: datetime | None = None) -> str:
    """A DAG run's Zooniverse tab: its summary lines and report links, or why there are none."""
    now = _now(now)
    where = f" in {_e(summary.project)}" if summary.project else ""
    out = [f"<h1>What this run left{where}</h1>"]
    if summary.lines:
        out.append('<ul class="lines summary">' + "".join(f"<li>{_e(line)}</li>" for line in summary.lines) + "</ul>")
        out.append(f"<p>Reports: {_links(summary.links, href)}</p>")
        if summary.finished_at:
            out.append(f'<p class="muted">Last output written {_ago(summary.finished_at, now)}; '
                       "all of the project's exports and rounds are on the Zooniverse page.</p>")
    else:
        out.append("<p>Nothing under the data root names this run yet: no report carries its id and no "
                   "active-learning round lists it. A run still going, one that failed before writing, or a "
                   "DAG that writes no report shows this.</p>")
    out.append(f'<p class="sub">{_e(summary.dag_id)} <code>{_e(summary.run_id)}</code></p>')
    return _page("Zooniverse run", "".join(out))

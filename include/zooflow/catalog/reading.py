"""Reading the data root into the catalog: each project's exports, rounds, reports and run summaries.

Nothing here imports Airflow: the files under the data root already say everything (``latest.json``
of each export, the slice reports, each workflow's ``state.json``), so the listing reads them directly
and stays correct whichever way they were written (a DAG, the command line, another worker). One bad
file must not hide the rest, so a record that cannot be read is left out, not raised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zooflow.catalog.model import (AL_DAG, CURVE_MIN_POINTS, EXPORT_REPORT, REPORT_DAGS, ROUND_REPORT, SERVED_SUFFIXES,
                                   Catalog, ExportEntry, Link, ProjectCatalog, ReportEntry, RoundEntry, RunSummary,
                                   count_noun, format_ago, format_size, report_dag, report_title, score_text,
                                   scored_rounds)
from zooflow.paths import DataRoot, safe_name


def now_utc(now: datetime | None) -> datetime:
    """``now`` (or the present) in UTC; a naive time is refused, since every time zooflow writes is UTC."""
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

    def __init__(self, root: DataRoot, folder: Path, now: datetime,
                 dags: Mapping[tuple[str | None, str, str | None], str]) -> None:
        self.root = root
        self.folder = folder
        self.now = now
        self.dags = dags
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
        latest = _json(DataRoot.latest_pointer(type_dir))
        request = _json(DataRoot.request_record(type_dir)) or {}
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
            generic = report_dag(report.kind)
            item = entry(self.dags.get((generic, name, None), generic), report.name)
            lines = self.report_lines(report, by_file)
            item["lines" if lines else "generic"].extend(lines or [f"{report_title(report.kind)} written"])
            item["links"].extend(link for link in (report.html, report.json) if link)
            touch(item, report.modified)
        for number in rounds:
            for run_id in number.run_ids:
                self.run_ids.setdefault(safe_name(run_id), run_id)
                item = entry(self.dags.get((AL_DAG, name, str(number.workflow_id)), AL_DAG), safe_name(run_id))
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
        about = f" ({format_size(export.bytes)}, built {format_ago(export.age)})" if export else ""
        return [f"{data.get('kind') or kind.removeprefix('slice-')} export {name}{about}: {data['rows_kept']} of "
                f"{data['rows_read']} rows kept in {count_noun(len(days), 'daily partition')}{span}, "
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


def round_line(entry: RoundEntry) -> str:
    """A round in one line, for the summary of the run that chose or uploaded it."""
    where = (f"uploaded to subject set {entry.set_id} ({entry.set_name})" if entry.state == "uploaded"
             else f"chosen for subject set {entry.set_name!r}, not uploaded yet")
    return (f"workflow {entry.workflow_id} round {entry.round}: {entry.picked} items {where}; "
            f"trained on {entry.labelled} labels, held-out accuracy {score_text(entry.accuracy)}")


def build_catalog(root: DataRoot, *, now: datetime | None = None, expected: Sequence[str] = (),
                  dags: Mapping[tuple[str | None, str, str | None], str] | None = None) -> Catalog:
    """Everything under ``root/projects``: each project's exports, rounds, reports and run summaries; and
    each ``expected`` project (the projects file's) that has written nothing yet, listed empty.

    ``dags`` names the DAG of a project's runs where a projects file gives it its own: (generic DAG id,
    project, AL workflow id or None) -> the project's DAG id."""
    now = now_utc(now)
    projects = []
    base = root.root / "projects"
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        project = _Project(root, folder, now, dags or {})
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
    listed = {project.folder for project in projects}
    for name in expected:
        folder = root.project_dir(name).name
        if folder not in listed:
            listed.add(folder)
            projects.append(ProjectCatalog(name=name, folder=folder, exports=(), rounds=(), learning_curves=(),
                                           reports=(), runs=()))
    return Catalog(root=root.root, generated_at=now, projects=tuple(sorted(projects, key=lambda p: p.folder)))


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

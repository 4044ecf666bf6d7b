"""The export report: what one run of the exports pipeline sliced and flattened, as a page for people.

The slice report (JSON) says how many rows were kept; this page shows the run at a glance: the
export's size, classifications per day and per workflow as charts, the slice's filters and
quarantine reasons, and links to the partitions and flat tables the run wrote. The counts are read
back from the partitions themselves (one row per classification), so the charts show what is on
disk, not what a step meant to write.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from zooflow.exports.pointer import read_pointer
from zooflow.exports.slicing import PARTITION, SliceReport
from zooflow.paths import DataRoot, safe_name
from zooflow.reports import charts
from zooflow.reports.html import Anchor, Chart, link, render_report, utc_text
from zooflow.reports.publish import ReportFiles, write_report

KIND = "export-report"
_COLUMNS = ["workflow_id", "workflow_name"]


@dataclass
class ClassificationCounts:
    """Classifications per day (``YYYY-MM-DD``) and per workflow id, with each workflow's name."""

    per_day: dict[str, int] = field(default_factory=dict)
    per_workflow: Counter = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)  # workflow id -> the last name seen

    def workflow_label(self, workflow_id: str) -> str:
        name = self.names.get(workflow_id)
        return f"{name} ({workflow_id})" if name else workflow_id


def _parts(folder: Path) -> list[Path]:
    """A partition's files of one format: CSV when the slice wrote it (the flatten step reads those),
    else Parquet (a spec may ask for Parquet only)."""
    return sorted(folder.glob("part-*.csv")) or sorted(folder.glob("part-*.parquet"))


def _read(part: Path) -> Any:
    if part.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(part, columns=_COLUMNS)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        part,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(include_columns=_COLUMNS, column_types={c: pa.string() for c in _COLUMNS},
                                             strings_can_be_null=False),
    )


def count_classifications(slices_dir: Path, days: list[str]) -> ClassificationCounts:
    """Count the rows of each day's partition (one per classification), by day and by workflow."""
    counts = ClassificationCounts()
    for day in sorted(days):
        counts.per_day[day] = 0
        for part in _parts(slices_dir / f"{PARTITION}={day}"):
            table = _read(part)
            counts.per_day[day] += table.num_rows
            ids, names = table["workflow_id"].to_pylist(), table["workflow_name"].to_pylist()
            counts.per_workflow.update(ids)
            counts.names |= {workflow_id: name for workflow_id, name in zip(ids, names) if name}
    return counts


def export_size(source: Path) -> int | None:
    """The export's size in bytes: the file's, or what ``latest.json`` beside it recorded when the file
    is not on this machine (a worker of a remote data root may not hold the download)."""
    if source.is_file():
        return source.stat().st_size
    try:
        pointer = read_pointer(source.parent)
    except ValueError:
        return None
    return pointer.get("bytes") if pointer.get("path") == source.name else None


def report_path(root: DataRoot, project: str, run_id: str) -> Path:
    return root.reports_dir(project, KIND) / f"{safe_name(run_id)}.html"


def _size_text(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 1e6:.2f} MB ({size:,} bytes)"


def write_export_report(
    root: DataRoot,
    project: str,
    run_id: str,
    sliced: SliceReport,
    flattened: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    export_bytes: int | None = None,
    generated_at: datetime | None = None,
) -> ReportFiles:
    """Write the page of a run's classification slice, and its JSON figures, under ``reports/export-report/``.

    ``flattened`` is the flatten step's reports by ``<day>/<part>``; without it (a slice that was not
    flattened) the page leaves out the task rows.
    """
    generated_at = generated_at or datetime.now(timezone.utc)
    flattened = flattened or {}
    target = report_path(root, project, run_id)
    slices_dir = root.slices_dir(project, "classifications")
    counts = count_classifications(slices_dir, list(sliced.partitions))
    task_rows: Counter = Counter()
    for key, flat in flattened.items():
        task_rows[key.split("/", 1)[0]] += flat["rows_written"]

    figures = [
        ("Run", run_id),
        ("Export", Path(sliced.source).name),
        ("Export size", _size_text(export_bytes)),
        ("Rows read", sliced.rows_read),
        ("Classifications kept", sliced.rows_kept),
        ("Rows quarantined", sliced.rows_quarantined),
        ("Rows outside the slice", sum(sliced.rows_filtered.values())),
        ("Days", len(counts.per_day)),
        ("Workflows", len(counts.per_workflow)),
    ]
    if flattened:
        figures += [("Task rows (flattened)", sum(task_rows.values())),
                    ("Drawn marks (flattened)", sum(flat.get("marks_written", 0) for flat in flattened.values())),
                    ("Rows quarantined by flatten", sum(flat["rows_quarantined"] for flat in flattened.values()))]
    if sliced.finished_at:
        figures.append(("Sliced at", utc_text(datetime.fromisoformat(sliced.finished_at))))
    figures.append(("Slicing took", f"{sliced.seconds:.1f} s"))

    html = render_report("export_report.html.j2", title="Export report: classifications", project=project,
                         generated_at=generated_at, figures=figures, **_slice(sliced, flattened, target),
                         **({"days": _days(counts, task_rows if flattened else None, slices_dir, flattened, target),
                             "workflows": _workflows(counts)} if counts.per_day else {"days": None}))
    summary = {
        "kind": KIND, "project": project, "run_id": run_id, "export": Path(sliced.source).name,
        "export_bytes": export_bytes, "rows_read": sliced.rows_read, "rows_kept": sliced.rows_kept,
        "rows_quarantined": sliced.rows_quarantined, "rows_filtered": sum(sliced.rows_filtered.values()),
        "days": counts.per_day, "workflows": {w: {"name": counts.names.get(w), "classifications": n}
                                              for w, n in counts.per_workflow.most_common()},
        "task_rows": sum(task_rows.values()) if flattened else None,
        "marks": sum(flat.get("marks_written", 0) for flat in flattened.values()) if flattened else None,
    }
    return write_report(root, target, html, summary, generated_at)


def _days(counts: ClassificationCounts, task_rows: Counter | None, slices_dir: Path,
          flattened: Mapping[str, Mapping[str, Any]], page_path: Path) -> dict[str, Any]:
    """The chart of classifications per day and the table of each day's counts and files."""
    per_day = {date.fromisoformat(day): rows for day, rows in counts.per_day.items()}
    chart, unit = charts.daily_counts(per_day, title="Classifications", ylabel="classifications")
    caption = f"{sum(per_day.values())} classifications on {len(per_day)} day(s)" + (
        "" if unit == "day" else f", summed per {unit} (they span more than {charts.DAYS_PER_DAY_CHART} days)")
    header = ["day (UTC)", "classifications", *(["task rows"] if task_rows is not None else []), "files"]
    rows = [[day, n, *([task_rows[day]] if task_rows is not None else []),
             _day_links(slices_dir, day, flattened, page_path)] for day, n in counts.per_day.items()]
    return {"chart": Chart(chart, f"Bar chart of classifications per {unit}", caption), "header": header, "rows": rows}


def _workflows(counts: ClassificationCounts) -> dict[str, Any]:
    """The chart and table of classifications per workflow, most first."""
    ranked = counts.per_workflow.most_common()
    chart = charts.bars({"classifications": {counts.workflow_label(w): n for w, n in ranked}},
                        title="Classifications per workflow", value_label="classifications", horizontal=True)
    return {"chart": Chart(chart, "Bar chart of classifications per workflow"),
            "rows": [[w, counts.names.get(w, ""), n] for w, n in ranked]}


def _day_links(slices_dir: Path, day: str, flattened: Mapping[str, Mapping[str, Any]], page_path: Path) -> list[Anchor]:
    folder = slices_dir / f"{PARTITION}={day}"
    slices = [link(f"slice {part.suffix[1:]}", part, page_path) for part in sorted(folder.glob("part-*"))]
    flats = [link(f"flat {Path(output).suffix[1:]}", output, page_path)
             for key, flat in sorted(flattened.items()) if key.split("/", 1)[0] == day for output in flat["outputs"]]
    return slices + flats


def _slice(sliced: SliceReport, flattened: Mapping[str, Mapping[str, Any]], page_path: Path) -> dict[str, Any]:
    """The slice's settings, the rows it left out by test, and the quarantined rows by reason with their files."""
    spec = [[name, json.dumps(value) if isinstance(value, (list, dict)) else value]
            for name, value in sliced.spec.items() if value not in (None, "", [], ())]
    reasons = Counter(sliced.quarantine_reasons)
    for flat in flattened.values():
        reasons.update({f"flatten: {reason}": n for reason, n in flat["quarantine_reasons"].items()})
    files = [sliced.quarantine_file, *(flat["quarantine_file"] for flat in flattened.values())]
    return {"spec": spec, "filtered": sliced.rows_filtered.most_common(), "reasons": reasons.most_common(),
            "quarantine_files": [link(Path(f).name, f, page_path) for f in files if f]}

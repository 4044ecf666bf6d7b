"""The catalog as pages of the Airflow UI: the Zooniverse page and a DAG run's Zooniverse tab.

Rendered from the reports' templates (``zooflow/reports/templates``), with their style sheet and
escaping: project, set and file names come from Panoptes and from whoever wrote the files, and
every one is escaped as it is put into the page. ``href`` turns a data-root-relative path into the
URL that serves it, so the pages link reports through the UI's file route.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from markupsafe import Markup

from zooflow.catalog.model import (CURVE_MIN_POINTS, Catalog, ExportEntry, RunSummary, count_noun, format_ago,
                                   format_size, report_title, score_text)
from zooflow.catalog.reading import now_utc
from zooflow.reports.html import render

RUNS_SHOWN = 10
REPORTS_SHOWN = 20


def render_catalog(catalog: Catalog, href: Callable[[str], str], *, data_root_label: str,
                   first: Markup = Markup("")) -> str:
    """The Zooniverse page: per project, exports, active-learning rounds, recent runs and reports.

    ``first`` is HTML shown above the projects: what Airflow knows and the files do not, such as
    failed runs (:func:`zooflow.failed_runs.render_failed_runs`); anything but ``Markup`` is escaped.
    """
    return render("catalog.html.j2", panel=True, href=href, now=catalog.generated_at, ago_text=format_ago,
                  size=format_size, score=score_text, slices=_slices, title=report_title, projects=catalog.projects,
                  data_root_label=data_root_label, first=first, curve_min_points=CURVE_MIN_POINTS,
                  runs_shown=RUNS_SHOWN, reports_shown=REPORTS_SHOWN)


def render_run(summary: RunSummary, href: Callable[[str], str], *, now: datetime | None = None) -> str:
    """A DAG run's Zooniverse tab: its summary lines and report links, or why there are none."""
    return render("run.html.j2", panel=True, href=href, now=now_utc(now), ago_text=format_ago, summary=summary)


def render_no_local_root(data_root_label: str) -> str:
    """What the pages say when the data root is object storage, which they do not list yet."""
    return render("no_local_root.html.j2", panel=True, label=data_root_label)


def _slices(e: ExportEntry) -> str:
    """What the slice of an export holds, in a line: rows, days and quarantined rows, and a download under way."""
    parts = []
    if e.partitions:
        days = sorted(e.partitions)
        span = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        parts.append(f"{count_noun(e.rows_kept or 0, 'row')}, {count_noun(len(days), 'day')} ({span})")
        if e.rows_quarantined:
            parts.append(f"{e.rows_quarantined} quarantined")
    elif e.state == "sliced":
        parts.append("no rows in the slice window")
    if e.partial_bytes:
        parts.append(f"{format_size(e.partial_bytes)} of a download so far")
    return "; ".join(parts)

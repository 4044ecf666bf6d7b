"""What the data root holds, as one listing: projects, their exports, active-learning rounds and reports.

The Airflow UI's Zooniverse page and each DAG run's Zooniverse tab show this listing, but nothing
here imports Airflow: the files under the data root already say everything, so the listing reads
them (:mod:`.reading`) into plain data (:mod:`.model`), and :mod:`.page` renders that data with the
same templates and style as the reports. Reports are linked when their files exist, never assumed,
because report kinds are added over time.

Every report is named after the run that wrote it (``safe_name(run_id)``) except the active-learning
round reports, named after their round; rounds list their run ids in ``state.json``. That is what
ties a DAG run to its outputs in :func:`run_summary`.

All paths handed out are relative to the data root (POSIX form), so a web page can link them
through one file route that refuses anything outside ``projects/`` (:func:`resolve_file`).
"""

from zooflow.catalog.model import (AL_DAG, CURVE_MIN_POINTS, EXPORT_REPORT, REPORT_DAGS, ROUND_REPORT, SERVED_SUFFIXES,
                                   Catalog, ExportEntry, Link, ProjectCatalog, ReportEntry, RoundEntry, RunSummary,
                                   format_ago, format_size, report_dag, report_title, scored_rounds)
from zooflow.catalog.page import render_catalog, render_no_local_root, render_run
from zooflow.catalog.reading import build_catalog, resolve_file, round_line, run_summary

__all__ = [
    "AL_DAG", "CURVE_MIN_POINTS", "EXPORT_REPORT", "REPORT_DAGS", "ROUND_REPORT", "SERVED_SUFFIXES", "Catalog",
    "ExportEntry", "Link", "ProjectCatalog", "ReportEntry", "RoundEntry", "RunSummary", "build_catalog", "format_ago",
    "format_size", "render_catalog", "render_no_local_root", "render_run", "report_dag", "report_title",
    "resolve_file", "round_line", "run_summary", "scored_rounds",
]

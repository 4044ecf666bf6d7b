"""Every page escapes what it shows: a name with ``<script>`` in it is text on each page, never markup.

Names come from Panoptes (projects, workflows, subject sets) and run ids from whoever triggers a
run, so each page (the two reports, the Zooniverse page with its failed runs, a run's tab, the page
for a data root it cannot list) is rendered here with such a name in every place one can appear.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from zooflow.catalog import (Catalog, ExportEntry, Link, ProjectCatalog, ReportEntry, RoundEntry, RunSummary,
                             render_catalog, render_no_local_root, render_run)
from zooflow.airflow.failed_runs import FailedRun, render_failed_runs
from zooflow.reports.html import Anchor, render_report

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _shows_it_as_text(html: str) -> None:
    assert "<script" not in html and ESCAPED in html


def test_reports_escape_names() -> None:
    common = {"title": f"Report {EVIL}", "project": EVIL, "generated_at": NOW, "figures": [("Run", EVIL)]}
    _shows_it_as_text(render_report("export_report.html.j2", days=None, spec=[["workflow_ids", EVIL]],
                                    filtered=[(EVIL, 1)], reasons=[(EVIL, 2)],
                                    quarantine_files=[Anchor(EVIL, "q.csv")], **common))
    _shows_it_as_text(render_report(
        "round_report.html.j2", status=EVIL, consensus=[EVIL], learning_curve=EVIL, class_balance=EVIL,
        confusion=EVIL, picked=1, sheet=[{"key": EVIL, "lines": [EVIL], "thumbnails": []}], skills=EVIL,
        retired_early=[EVIL],
        files=[Anchor(EVIL, "manifest.csv")], **common))


def test_the_zooniverse_page_and_a_runs_tab_escape_names() -> None:
    link = Link(EVIL, f"projects/x/reports/{EVIL}.html")
    project = ProjectCatalog(
        name=EVIL, folder=EVIL,
        exports=(ExportEntry(owner=EVIL, export_type=EVIL, state="sliced", file=EVIL, run_id=EVIL, reports=(link,)),),
        rounds=(RoundEntry(EVIL, 1, "uploaded", EVIL, EVIL, 3, 3, 3, None, None, EVIL, NOW, NOW, (EVIL,), (link,)),),
        learning_curves=(link,),
        reports=(ReportEntry("export-report", EVIL, NOW, link, None, EVIL),),
        runs=(RunSummary(EVIL, EVIL, EVIL, EVIL, (EVIL,), (link,), NOW),))
    failed = render_failed_runs([FailedRun(EVIL, EVIL, NOW - timedelta(minutes=1), EVIL, 1, EVIL)], NOW)
    _shows_it_as_text(failed)
    page = render_catalog(Catalog(root=None, generated_at=NOW, projects=(project,)), lambda path: f"/files/{path}",
                          data_root_label=EVIL, first=failed)
    _shows_it_as_text(page)
    assert page.count('<tr class="failed"') == 1, "the failed runs' section is put in as HTML, not as text"
    _shows_it_as_text(render_run(RunSummary(EVIL, EVIL, EVIL, EVIL, (EVIL,), (link,), NOW), str, now=NOW))
    _shows_it_as_text(render_no_local_root(EVIL))

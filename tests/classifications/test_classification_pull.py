"""pull_classifications against the sandbox over HTTP: from the last stored id, page by page, each
classification once — across repeated ids, a failed page, a killed process, and a workflow's own scope."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from urllib.parse import parse_qs

import pytest
from panoptes_client.panoptes import PanoptesAPIException
from support.classified_projects import ClassifiedProject, make_project

from zooflow.classifications.reader import read_classifications
from zooflow.classifications.store import ClassificationStore

ROUTE = "/api/classifications/project"


def pulled_queries(admin, since: int) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"]) for r in admin.requests(since_id=since) if r["path"] == ROUTE]


def stored_ids(root, project: ClassifiedProject, workflow_id: int | None = None) -> list[int]:
    return [int(i) for i in read_classifications(root, project.slug, workflow_id)["classification_id"]]


def test_a_first_pull_fetches_everything_and_a_second_only_what_is_new(project, admin, root) -> None:
    first = project.add(7)
    since = admin.last_request_id()
    report = project.pull(root, page_size=3)
    assert (report.fetched, report.total, report.last_id, report.previous_last_id) == (7, 7, first[-1], 0)
    assert report.pages == 4 and report.duplicates_skipped == 0  # 3 + 3 + 1, then the empty page
    assert stored_ids(root, project) == first
    queries = pulled_queries(admin, since)
    assert queries[0]["last_id"] == ["0"] and all("page" not in q for q in queries)
    assert {q["project_id"][0] for q in queries} == {str(project.id)}

    later = project.add(4)
    since = admin.last_request_id()
    again = project.pull(root, page_size=3)
    assert (again.fetched, again.total, again.last_id, again.previous_last_id) == (4, 11, later[-1], first[-1])
    assert pulled_queries(admin, since)[0]["last_id"] == [str(first[-1])]  # the sandbox's log shows the resume point
    assert stored_ids(root, project) == first + later

    nothing = project.pull(root)
    assert (nothing.fetched, nothing.total, nothing.pages) == (0, 11, 1)


def test_rows_are_partitioned_by_their_utc_date(project, root) -> None:
    project.add(5)  # 23:00, 23:20, 23:40 on 30 November, then 00:00 and 00:20 on 1 December
    project.pull(root)
    frame = read_classifications(root, project.slug)
    store = ClassificationStore.at(root, project.slug)
    folders = sorted(p.name for p in store.folder.glob("created_date=*"))
    assert folders == ["created_date=2026-11-30", "created_date=2026-12-01"]
    for folder in folders:
        day = folder.split("=")[1]
        ids = {int(i) for i in frame.loc[frame["created_at"].dt.strftime("%Y-%m-%d") == day, "classification_id"]}
        in_parts = {i for p in store.state().parts if p.date == day for i in range(p.min_id, p.max_id + 1)}
        assert ids == in_parts and len(ids) in (2, 3)


def test_ids_served_again_across_a_power_of_ten_are_stored_once(client, project, admin, root) -> None:
    """Panoptes' next last_id is the page's greatest id *as a string*: a page of 998, 999, 1000, 1001
    continues from 999 and serves 1000 and 1001 again."""
    filler = make_project(admin)
    (latest,) = filler.add(1)
    boundary = 10 ** len(str(latest + 3))
    filler.add(boundary - 3 - latest)  # the next ids are boundary - 2, boundary - 1, boundary, ...
    made = project.add(6)
    assert made[0] == boundary - 2
    since = admin.last_request_id()
    report = project.pull(root, page_size=4)
    assert [q["last_id"] for q in pulled_queries(admin, since)] == [["0"], [str(boundary - 1)], [str(boundary + 3)]]
    assert (report.duplicates_skipped, report.fetched, report.total) == (2, 6, 6)
    assert stored_ids(root, project) == made


def test_a_pull_failing_after_its_first_page_keeps_that_page_and_the_rerun_fetches_the_rest_once(project, admin, root) -> None:
    made = project.add(10)

    def fail_the_next_page(report) -> None:
        if report.pages == 1:
            admin.configure(fail_next=[{"method": "GET", "path_regex": f"^{ROUTE}$", "status": 422, "count": 1}])

    with pytest.raises(PanoptesAPIException, match="Injected fault"):
        project.pull(root, page_size=4, flush_rows=1000, progress=fail_the_next_page)
    state = ClassificationStore.at(root, project.slug).state()
    assert (state.last_id, state.total) == (made[3], 4)  # the page fetched before the fault was kept
    rerun = project.pull(root, page_size=4)
    assert (rerun.previous_last_id, rerun.fetched, rerun.total) == (made[3], 6, 10)
    assert stored_ids(root, project) == made


KILLED_PULL = """
import os, signal, sys
from zooflow.classifications.pull import pull_classifications
from zooflow.panoptes import PanoptesConfig, connect
from zooflow.paths import DataRoot

def kill_after_third_page(report):
    if report.pages == 3:  # two pages appended (10 rows), the third only in memory
        os.kill(os.getpid(), signal.SIGKILL)

with connect(PanoptesConfig.from_env()):
    pull_classifications(DataRoot(sys.argv[1]), sys.argv[2], project_id=int(sys.argv[3]), page_size=5, flush_rows=10,
                         progress=kill_after_third_page)
"""


def test_a_pull_killed_half_way_and_run_again_stores_each_classification_once(project, root, panoptes_env) -> None:
    made = project.add(25)
    killed = subprocess.run([sys.executable, "-c", KILLED_PULL, str(root.root), project.slug, str(project.id)],
                            env=os.environ.copy(), capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = ClassificationStore.at(root, project.slug).state()
    assert (state.last_id, state.total) == (made[9], 10)
    rerun = project.pull(root, page_size=5)
    assert (rerun.previous_last_id, rerun.fetched, rerun.total, rerun.last_id) == (made[9], 15, 25, made[-1])
    assert stored_ids(root, project) == made


def test_a_workflow_pull_keeps_its_own_resume_point(project, admin, root) -> None:
    mine = project.add(3)
    theirs = project.add(2, workflow_id=project.other_workflow_id)
    since = admin.last_request_id()
    scoped = project.pull(root, workflow_id=project.other_workflow_id)
    assert (scoped.fetched, scoped.last_id) == (2, theirs[-1])
    assert {q["workflow_id"][0] for q in pulled_queries(admin, since)} == {str(project.other_workflow_id)}
    assert ClassificationStore.at(root, project.slug).state().last_id == 0  # the all-workflows cursor did not move

    everything = project.pull(root)
    assert (everything.fetched, everything.last_id) == (5, theirs[-1])
    later = project.add(2, workflow_id=project.other_workflow_id)
    scoped_again = project.pull(root, workflow_id=project.other_workflow_id)
    assert (scoped_again.previous_last_id, scoped_again.fetched, scoped_again.total) == (theirs[-1], 2, 4)
    assert ClassificationStore.at(root, project.slug).state().last_id == theirs[-1]
    assert stored_ids(root, project) == mine + theirs
    assert stored_ids(root, project, project.other_workflow_id) == theirs + later


def test_incomplete_classifications_are_served_unmarked_so_the_pull_stores_them(project, root) -> None:
    """What the API gives: nothing tells an incomplete classification apart (reconcile does, against the
    export; test_classification_reconcile). A record that does say ``completed: false`` is left out
    (test_classification_records)."""
    made = project.add(2) + project.add_incomplete(1)
    report = project.pull(root)
    assert (report.fetched, report.incomplete_skipped) == (3, 0)
    assert stored_ids(root, project) == made


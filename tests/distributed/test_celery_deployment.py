"""The Celery deployment run for real on this machine: private Postgres and Redis, Airflow's api-server,
scheduler, dag-processor and triggerer, and two Celery workers, each a process of its own.

``dag.test()`` runs every task in one process, so it cannot show what a deployment must do: hand
tasks to workers through the broker, park an export wait in the triggerer without a worker slot and
resume it on whichever worker is free, and keep a run's state in the shared metadata database.
Here the export and active-learning DAGs are unpaused and triggered through the REST API, as a user
or a script would, against the Panoptes sandbox; the test then reads from the API which worker ran
each task and that the export waits were deferred and resumed, and finally stops everything and
looks for anything left running.

The deployment runs a team's projects file (``ZOOFLOW_PROJECTS``: the glitch demo with its AL workflow,
and the penguin project), so besides the generic DAGs' runs, both projects' own exports DAGs are
triggered at once: their tasks share the two workers and their waits the triggerer, and each run
writes only under its own project's folder of the data root.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from panoptes_client import Project, Workflow

from support.cluster import WORKERS, CeleryCluster
from support.services import PrivatePostgres, PrivateRedis, ensure_binaries
from zooflow.airflow_env import airflow_env
from zooflow.al.state import RoundState
from zooflow.dev.api import AirflowApi
from zooflow.dev.processes import live_processes
from zooflow.dev.team import write_team_projects
from zooflow.panoptes import PanoptesConfig, connect
from zooflow.paths import DataRoot, safe_name
from zooflow.projects_file import al_dag_id, exports_dag_id
from zooflow.sandbox import seed
from zooflow.sandbox.populate import (
    add_demo_subjects, add_second_demo_project, demo_user_config, set_up_digits_learning,
)
from zooflow.sandbox.process import SandboxProcess

# The first test also pays for starting everything (about a minute here, far more on a loaded machine).
pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SLUG = seed.DEMO_PROJECT_SLUG
EXPORTS, AL = "zooniverse_exports", "zooniverse_active_learning"
EXPORT_WAITS = ("classifications.wait", "subjects.wait", "workflows.wait")
TRIGGER = "zooflow.airflow.triggers.panoptes.PanoptesCheckTrigger"
# Sandbox seconds from an export request to a ready file: far longer than the test, so the waits
# stay deferred until the test has seen them deferred and moves the sandbox clock past it.
EXPORT_DELAY = 3600.0


@dataclass
class Deployment:
    stack: ExitStack
    root: Path
    cluster: CeleryCluster
    api: AirflowApi
    sandbox: SandboxProcess
    postgres: PrivatePostgres
    redis: PrivateRedis
    al_config: Path
    workflow_id: int
    second_project: str  # the penguin project: the projects file's second entry
    second_workflow_id: int
    started: float

    def leftovers(self) -> list[tuple[int, str]]:
        """Live processes of this run: in a group it started, or naming its dirs (the sandbox, AIRFLOW_HOME)."""
        groups = [*self.cluster.process_groups, self.postgres.process_group, self.redis.process_group]
        markers = [f"{self.root}/", self.postgres.marker, self.redis.marker]
        return live_processes(groups=[g for g in groups if g], markers=markers)


@dataclass
class Watch:
    """What polling the export run's task instances saw: each task's states in order, and the deferrals.

    Once every export wait is deferred *and* its trigger has looked at Panoptes at least once (the
    triggerer logs each look beside the task's log), ``release`` makes the exports ready.
    """

    trigger_logs: Path
    release: Callable[[], Any]
    states: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)
    released_at: float | None = None

    def __call__(self, task_instances: list[dict[str, Any]]) -> None:
        for ti in task_instances:
            seen = self.states[ti["task_id"]]
            if ti["state"] and (not seen or seen[-1] != ti["state"]):
                seen.append(ti["state"])
            if ti["state"] == "deferred" and ti["task_id"] not in self.deferred:
                self.deferred[ti["task_id"]] = {"at": time.monotonic(), "worker": ti["hostname"],
                                                "classpath": (ti.get("trigger") or {}).get("classpath")}
        if self.released_at is None and set(EXPORT_WAITS) <= set(self.deferred) and all(
                self.trigger_looked(task_id) for task_id in EXPORT_WAITS):
            self.release()
            self.released_at = time.monotonic()

    def trigger_looked(self, task_id: str) -> bool:
        return any("next look in" in path.read_text(errors="replace")
                   for path in (self.trigger_logs / f"task_id={task_id}").glob("attempt=*.log.trigger.*.log"))


@dataclass
class Runs:
    exports: dict[str, Any]
    al: dict[str, Any]
    tis: dict[str, list[dict[str, Any]]]
    watch: Watch
    triggered_at: float
    wait_logs: dict[str, str]


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Lines for the terminal even under output capture: `make test-distributed` shows what was found."""
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if terminal is None or capture is None:
            print(f"[distributed] {line}")
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"[distributed] {line}")

    return write


@dataclass
class SandboxProjects:
    al_config: Path
    workflow_id: int  # the glitch demo's digits workflow, for active learning
    second_project: str
    second_workflow_id: int


def _set_up_sandbox(sandbox: SandboxProcess, panoptes: PanoptesConfig, folder: Path) -> SandboxProjects:
    """The demo project as `zooflow demo` fills it, plus a digits workflow and pool for active learning,
    and the team's second project (penguins) with subjects and classifications of its own."""
    with connect(panoptes):
        add_demo_subjects(20)
        digits = set_up_digits_learning(folder, sandbox.admin, k=4, m=1)
    sandbox.admin.run_volunteers(45, seed=1)
    with connect(panoptes):
        second_project, second_workflow_id = add_second_demo_project(12)
    sandbox.admin.run_volunteers(24, seed=2, workflow_id=second_workflow_id)
    return SandboxProjects(digits.config, digits.workflow_id, second_project, second_workflow_id)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, report) -> Iterator[Deployment]:
    started = time.monotonic()
    ensure_binaries()
    root = tmp_path_factory.mktemp("distributed")
    stack = ExitStack()
    try:
        postgres = stack.enter_context(PrivatePostgres())
        redis = stack.enter_context(PrivateRedis())
        sandbox = stack.enter_context(SandboxProcess(root / "sandbox", seed="demo", settings={"export_delay": EXPORT_DELAY}))
        panoptes = demo_user_config(sandbox.endpoint)
        projects = _set_up_sandbox(sandbox, panoptes, root / "al")
        # The team's projects file, as `make up` writes it: one exports DAG per project, and the glitch
        # demo's AL DAG (left paused: the AL run below is the generic DAG's, triggered by hand).
        projects_file = write_team_projects(root / "team" / "projects.yaml", al_config=projects.al_config,
                                            second_project=projects.second_project)
        # The test starts every run itself. Left on, the projects' daily schedules would start runs
        # the moment their DAGs are unpaused, and those runs would hold each DAG's one active run slot.
        env = airflow_env(airflow_home=root / "airflow", dags_folder=REPO / "dags", data_root=root / "data",
                          panoptes=panoptes, extra={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                                                    "ZOOFLOW_PROJECTS": str(projects_file),
                                                    "ZOOFLOW_AL_CONFIG": str(projects.al_config)})  # the form leaves it empty
        cluster = stack.enter_context(CeleryCluster(env, postgres=postgres, redis=redis))
        report(f"postgres {postgres.address}, redis {redis.address}, sandbox {sandbox.endpoint}, "
               f"api-server {cluster.url}; Celery workers answering: {', '.join(sorted(cluster.workers_answering()))} "
               f"(all up after {time.monotonic() - started:.0f} s)")
        deployment = Deployment(stack, root, cluster, cluster.api(), sandbox, postgres, redis, projects.al_config,
                                projects.workflow_id, projects.second_project, projects.second_workflow_id, started)
    except BaseException:
        stack.close()
        raise
    with stack:
        yield deployment


def _fail_at_a_failed_try(api: AirflowApi, dag_id: str, run_id: str, task_instances: list[dict[str, Any]]) -> None:
    """At a task's first failed try, the test fails at once with that try's errors (instead of sitting
    through the DAG's retries)."""
    for ti in task_instances:
        if ti["state"] in ("failed", "up_for_retry"):
            log = api.task_log(dag_id, run_id, ti["task_id"], ti["try_number"])
            errors = [line[:600] for line in log.splitlines() if "error" in line.lower()][-3:]
            pytest.fail(f"{dag_id}.{ti['task_id']} try {ti['try_number']} is {ti['state']}:\n" + "\n".join(errors))


def _finish(api: AirflowApi, dag_id: str, run_id: str, *, timeout: float,
            watch: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """The run once finished (failing the test at a task's first failed try)."""

    def check(task_instances: list[dict[str, Any]]) -> None:
        if watch is not None:
            watch(task_instances)
        _fail_at_a_failed_try(api, dag_id, run_id, task_instances)

    return api.wait_for_run(dag_id, run_id, timeout=timeout, watch=check)


@pytest.fixture(scope="module")
def runs(deployment: Deployment, report) -> Runs:
    """Both DAGs unpaused and triggered through the REST API, watched until they finish."""
    api, admin = deployment.api, deployment.sandbox.admin
    for dag_id in (EXPORTS, AL):
        api.wait_for_dag(dag_id)
        assert api.unpause(dag_id)["is_paused"] is False

    triggered_at = time.monotonic()
    exports_id = api.trigger(EXPORTS, {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 10})
    # Once all three waits sit in the triggerer, the sandbox clock jumps past the build time: the
    # exports become ready, and only the triggerer's next look can notice.
    watch = Watch(trigger_logs=deployment.cluster.home / "logs" / f"dag_id={EXPORTS}" / f"run_id={exports_id}",
                  release=lambda: admin.advance_clock(seconds=EXPORT_DELAY + 60))
    exports = _finish(api, EXPORTS, exports_id, timeout=420, watch=watch)
    report(f"{EXPORTS} {exports_id}: {exports['state']} after {time.monotonic() - triggered_at:.0f} s")

    al_started = time.monotonic()
    al_id = api.trigger(AL, {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 5})
    al = _finish(api, AL, al_id, timeout=300)
    report(f"{AL} {al_id}: {al['state']} after {time.monotonic() - al_started:.0f} s")

    tis = {EXPORTS: api.task_instances(EXPORTS, exports_id), AL: api.task_instances(AL, al_id)}
    wait_logs = {ti["task_id"]: api.task_log(EXPORTS, exports_id, ti["task_id"], ti["try_number"])
                 for ti in tis[EXPORTS] if ti["task_id"] in EXPORT_WAITS}
    return Runs(exports, al, tis, watch, triggered_at, wait_logs)


def test_both_dags_succeed_when_triggered_through_the_rest_api(deployment: Deployment, runs: Runs) -> None:
    assert (runs.exports["state"], runs.al["state"]) == ("success", "success")
    states = {(dag_id, ti["task_id"]): ti["state"] for dag_id, tis in runs.tis.items() for ti in tis}
    assert set(states.values()) == {"success"}, states
    # exports: check_form, 3 x 3 per type, 2 slices, flatten, report;
    # AL: plan, retire_early, wait_for_batch, pull_classifications, select, approve, upload
    assert len(runs.tis[EXPORTS]) == 13 and len(runs.tis[AL]) == 7
    data = DataRoot(deployment.root / "data")
    (round_one,) = RoundState(data.al_dir(SLUG, deployment.workflow_id)).completed()
    assert round_one["set_id"] and round_one["picked"]  # uploaded to the sandbox by a worker
    slices = list(data.slices_dir(SLUG, "classifications").glob("created_date=*/part-00000.csv"))
    assert slices, "the export run sliced no classifications"


def test_tasks_ran_on_both_celery_workers(runs: Runs, report) -> None:
    workers: dict[str, list[str]] = defaultdict(list)
    for dag_id, tis in runs.tis.items():
        for ti in sorted(tis, key=lambda t: t["start_date"] or ""):
            workers[ti["hostname"]].append(f"{dag_id.removeprefix('zooniverse_')}.{ti['task_id']}")
            report(f"  {dag_id}.{ti['task_id']:<26} {ti['state']:<8} on {ti['hostname']}")
    for worker, tasks in sorted(workers.items()):
        report(f"{worker}: {len(tasks)} task instances")
    assert set(workers) == set(WORKERS)


def test_celery_kept_each_task_result_in_the_postgres_result_backend(deployment: Deployment, runs: Runs, report) -> None:
    """The scheduler learns a task's end through the result backend; a wrong backend URL loses every result."""
    executions = sum(len(tis) for tis in runs.tis.values()) + len(EXPORT_WAITS)  # a resumed wait runs twice
    deadline = time.monotonic() + 60
    while True:  # a Celery task ends a moment after its task instance does (the worker still uploads the log)
        connection = deployment.postgres.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT status, count(*) FROM celery_taskmeta GROUP BY status")
                results = dict(cursor.fetchall())
        finally:
            connection.close()
        if set(results) == {"SUCCESS"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    report(f"Celery result backend (Postgres celery_taskmeta): {results}; {executions} task executions")
    assert set(results) == {"SUCCESS"} and results["SUCCESS"] == executions


def test_export_waits_were_deferred_and_resumed_by_the_triggerer(deployment: Deployment, runs: Runs, report) -> None:
    watch = runs.watch
    assert set(watch.deferred) == set(EXPORT_WAITS)
    assert watch.released_at is not None
    logs = deployment.cluster.home / "logs" / f"dag_id={EXPORTS}" / f"run_id={runs.exports['dag_run_id']}"
    for task_id in EXPORT_WAITS:
        deferral = watch.deferred[task_id]
        final = next(ti for ti in runs.tis[EXPORTS] if ti["task_id"] == task_id)
        assert deferral["classpath"] == TRIGGER
        assert deferral["at"] < watch.released_at
        # deferred, then run again by a worker to completion (not failed, not timed out)
        assert "deferred" in watch.states[task_id] and watch.states[task_id][-1] == "success"
        task_log = runs.wait_logs[task_id]
        assert "Pausing task as DEFERRED" in task_log and "Done: ready" in task_log, task_log[-2000:]
        # The triggerer writes what the trigger did beside the task's log, in a file named by its job id.
        (trigger_file,) = (logs / f"task_id={task_id}").glob(f"attempt={final['try_number']}.log.trigger.*.log")
        trigger_log = trigger_file.read_text()
        assert "export_ready_check: creating; next look in 1 s" in trigger_log  # the triggerer looked, not ready yet
        assert "Trigger fired event" in trigger_log and "'state': 'ready'" in trigger_log
        report(f"{task_id}: {' -> '.join(watch.states[task_id])}; deferred by {deferral['worker']} to "
               f"{deferral['classpath'].rsplit('.', 1)[-1]} at +{deferral['at'] - runs.triggered_at:.0f} s; "
               f"triggerer job {trigger_file.name.rsplit('.', 2)[-2]} looked "
               f"{trigger_log.count('next look in')}x, fired once the sandbox clock moved "
               f"(+{watch.released_at - runs.triggered_at:.0f} s); resumed and finished on {final['hostname']}")


@dataclass
class ProjectRun:
    """One project's exports run (its own DAG from the projects file), as the REST API saw it."""

    project: str
    dag_id: str
    run: dict[str, Any]
    tis: list[dict[str, Any]]
    deferred: dict[str, float]  # each export wait, when first seen deferred


@dataclass
class TeamRuns:
    runs: dict[str, ProjectRun]  # by project slug
    before: dict[str, tuple[int, int]]  # the data root's files (size, mtime) before the runs and after
    after: dict[str, tuple[int, int]]
    triggered_at: float
    released_at: float | None


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (relative POSIX path) with its size and modification time."""
    files = {}
    for path in root.rglob("*"):
        if path.is_file():
            stat = path.stat()
            files[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return files


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _waits_parked(tis: list[dict[str, Any]], deferred: dict[str, float]) -> bool:
    """Each export wait of the run deferred (or skipped: an export type the project does not ask for)."""
    waits = [ti for ti in tis if ti["task_id"].endswith(".wait")]
    return bool(deferred) and len(waits) == len(EXPORT_WAITS) and all(
        ti["task_id"] in deferred or ti["state"] in ("skipped", "success") for ti in waits)


@pytest.fixture(scope="module")
def team_runs(deployment: Deployment, report) -> TeamRuns:
    """Both projects' own exports DAGs unpaused and triggered at once through the REST API, with no conf
    but the wait settings (each DAG's form defaults to its project), and watched together until both finish."""
    api, admin = deployment.api, deployment.sandbox.admin
    projects = (SLUG, deployment.second_project)
    dag_ids = {project: exports_dag_id(project) for project in projects}
    for dag_id in dag_ids.values():
        api.wait_for_dag(dag_id)
        assert api.unpause(dag_id)["is_paused"] is False
    # Panoptes takes one export request per resource a day. The penguin project has never been
    # exported; the glitch demo's last request (the generic run's, above) moves a day into the past.
    admin.advance_clock(hours=25)
    data_root = deployment.root / "data"
    before = _files(data_root)
    triggered_at = time.monotonic()
    run_ids = {project: api.trigger(dag_ids[project], {"poll_seconds": 1, "wait_timeout_minutes": 10})
               for project in projects}
    deferred: dict[str, dict[str, float]] = {project: {} for project in projects}
    finished: dict[str, dict[str, Any]] = {}
    released_at = None
    deadline = time.monotonic() + 300
    while len(finished) < len(projects):
        tis = {}
        for project in projects:
            dag_id, run_id = dag_ids[project], run_ids[project]
            run = api.dag_run(dag_id, run_id)
            tis[project] = api.task_instances(dag_id, run_id)
            _fail_at_a_failed_try(api, dag_id, run_id, tis[project])
            for ti in tis[project]:
                if ti["state"] == "deferred":
                    deferred[project].setdefault(ti["task_id"], time.monotonic())
            if run["state"] in ("success", "failed"):
                finished[project] = run
        # Once both runs' waits sit in the triggerer together, the exports become ready.
        if released_at is None and all(_waits_parked(tis[p], deferred[p]) for p in projects):
            admin.advance_clock(seconds=EXPORT_DELAY + 60)
            released_at = time.monotonic()
        assert time.monotonic() < deadline, {p: {ti["task_id"]: ti["state"] for ti in tis[p]} for p in projects}
        if len(finished) < len(projects):
            time.sleep(1)
    after = _files(data_root)
    runs = {project: ProjectRun(project, dag_ids[project], finished[project],
                                api.task_instances(dag_ids[project], run_ids[project]), deferred[project])
            for project in projects}
    for run in runs.values():
        took = _moment(run.run["end_date"]) - _moment(run.run["start_date"])
        report(f"{run.dag_id} {run.run['dag_run_id']}: {run.run['state']}, ran {took.total_seconds():.0f} s "
               f"(both triggered at once; both done {time.monotonic() - triggered_at:.0f} s after)")
    return TeamRuns(runs, before, after, triggered_at, released_at)


def test_two_projects_exports_ran_at_once_on_the_celery_workers(deployment: Deployment, team_runs: TeamRuns,
                                                                 report) -> None:
    runs = team_runs.runs
    assert {run.run["state"] for run in runs.values()} == {"success"}
    # the glitch demo exports all three types; the penguin project classifications and subjects only
    glitch, penguin = runs[SLUG], runs[deployment.second_project]
    assert {ti["state"] for ti in glitch.tis} == {"success"} and len(glitch.tis) == 13
    assert {ti["task_id"] for ti in penguin.tis if ti["state"] != "success"} == {
        "workflows.request", "workflows.wait", "workflows.download"}
    assert {ti["state"] for ti in penguin.tis if ti["task_id"].startswith("workflows.")} == {"skipped"}
    # Each run was created with no project in its conf: the project came from its own DAG's form.
    assert all("project" not in run.run["conf"] for run in runs.values())
    # The glitch demo's AL DAG from the projects file is there, left paused (the AL run above is the
    # generic DAG's): the exports' asset events started no run of it.
    al_dag = deployment.api.dag(al_dag_id(SLUG, deployment.workflow_id))
    assert al_dag["is_paused"] is True and deployment.api.dag_runs(al_dag["dag_id"]) == []

    # At once: the runs overlap, and both runs' waits were parked in the triggerer together.
    starts = [_moment(run.run["start_date"]) for run in runs.values()]
    ends = [_moment(run.run["end_date"]) for run in runs.values()]
    assert max(starts) < min(ends), (starts, ends)
    assert team_runs.released_at is not None
    for run in runs.values():
        assert run.deferred and all(at < team_runs.released_at for at in run.deferred.values()), run.deferred

    # On the Celery workers: every task that ran names a worker, and between them the runs used both.
    workers: dict[str, list[str]] = defaultdict(list)
    for run in runs.values():
        for ti in run.tis:
            if ti["state"] == "success":
                workers[ti["hostname"]].append(f"{run.dag_id.removeprefix('zooniverse_exports__')}.{ti['task_id']}")
    for worker, tasks in sorted(workers.items()):
        report(f"{worker}: {len(tasks)} task instances of the two projects' runs: "
               + ", ".join(f"{project}: {sum(t.startswith(project) for t in tasks)}"
                           for project in sorted({t.split('.', 1)[0] for t in tasks})))
    assert set(workers) == set(WORKERS)
    report(f"waits parked together: {', '.join(f'{p}: {sorted(r.deferred)}' for p, r in runs.items())}; "
           f"released at +{team_runs.released_at - team_runs.triggered_at:.0f} s")


def test_each_project_run_wrote_only_under_its_own_project_folder(deployment: Deployment, team_runs: TeamRuns,
                                                                  report) -> None:
    data = DataRoot(deployment.root / "data")
    before, after = team_runs.before, team_runs.after
    changed = {path for path, stat in after.items() if before.get(path) != stat} | (before.keys() - after.keys())
    folders = {project: data.project_dir(project).relative_to(data.root).as_posix() + "/" for project in team_runs.runs}
    assert [path for path in changed if not any(path.startswith(folder) for folder in folders.values())] == []
    with connect(demo_user_config(deployment.sandbox.endpoint)):
        workflow_ids = {project: {int(w.id) for w in Workflow.where(project_id=Project.find(slug=project).id)}
                        for project in team_runs.runs}
    assert not workflow_ids[SLUG] & workflow_ids[deployment.second_project]

    for project, run in team_runs.runs.items():
        folder = folders[project]
        (other,) = set(team_runs.runs) - {project}
        mine = sorted(path.removeprefix(folder) for path in changed if path.startswith(folder))
        run_file = safe_name(run.run["dag_run_id"])
        other_run_file = safe_name(team_runs.runs[other].run["dag_run_id"])
        # the run's own reports, in its project's folder and nowhere else; none of the other run's
        assert {f"reports/slice-classifications/{run_file}.json", f"reports/slice-subjects/{run_file}.json",
                f"reports/export-report/{run_file}.html"} <= set(mine), mine
        assert [path for path in changed if run_file in path and not path.startswith(folder)] == []
        assert [path for path in mine if other_run_file in path] == []
        # a fresh export of each type downloaded into the project's own exports
        for export_type in ("classifications", "subjects"):
            downloads = [path for path in mine if path.startswith(f"exports/project/{export_type}/{export_type}-")
                         and path.endswith(".csv.gz") and f"{folder}{path}" not in before]
            assert len(downloads) == 1, mine
            # the slice report names its project, and what it read and wrote is in that project's folder
            sliced = json.loads((data.report(project, f"slice-{export_type}", run.run["dag_run_id"])).read_text())
            assert sliced["project"] == project and sliced["export_type"] == export_type
            assert sliced["rows_kept"] > 0
            paths = [Path(sliced["source"]), *map(Path, sliced["outputs"])]
            assert all(path.resolve().is_relative_to(data.project_dir(project).resolve()) for path in paths), paths
            assert Path(sliced["source"]).name == Path(downloads[0]).name
            # and the rows are the project's own: its workflows' classifications, its subjects
            rows = [row for output in sliced["outputs"] if output.endswith(".csv")
                    for row in csv.DictReader(Path(output).open(newline=""))]
            if export_type == "classifications":
                assert rows and {int(row["workflow_id"]) for row in rows} <= workflow_ids[project]
        report(f"{project}: {len(mine)} files written or replaced under {folder}, none elsewhere; "
               f"e.g. {', '.join(path for path in mine if path.startswith('reports/'))}")


def test_no_log_holds_a_generated_secret(deployment: Deployment) -> None:
    secrets = deployment.cluster.secret_values()
    logs = [p for p in deployment.root.rglob("*") if p.is_file() and (p.suffix == ".log" or "logs" in p.parts)]
    logs += [deployment.postgres.log_path, deployment.redis.log_path]
    assert len(logs) > 10
    leaks = [str(path) for path in logs if any(s in path.read_text(errors="replace") for s in secrets)]
    assert leaks == []


def test_stopping_leaves_nothing_running(deployment: Deployment, report) -> None:
    running = deployment.leftovers()
    assert len(running) >= 9  # postgres and its backends, redis, the sandbox, six Airflow processes and their children
    deployment.stack.close()
    assert deployment.leftovers() == []
    groups = len(deployment.cluster.process_groups) + 2
    report(f"stopped {groups} process groups and the sandbox ({len(running)} processes); none left running; "
           f"whole run {time.monotonic() - deployment.started:.0f} s")

"""The Celery deployment run for real on this machine: private Postgres and Redis, Airflow's api-server,
scheduler, dag-processor and triggerer, and two Celery workers, each a process of its own.

``dag.test()`` runs every task in one process, so it cannot show what a deployment must do: hand
tasks to workers through the broker, park an export wait in the triggerer without a worker slot and
resume it on whichever worker is free, and keep a run's state in the shared metadata database.
Here the export and active-learning DAGs are unpaused and triggered through the REST API, as a user
or a script would, against the Panoptes sandbox; the test then reads from the API which worker ran
each task and that the export waits were deferred and resumed, and finally stops everything and
looks for anything left running.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.cluster import WORKERS, CeleryCluster
from support.services import PrivatePostgres, PrivateRedis, ensure_binaries
from zooflow.airflow_env import airflow_env
from zooflow.al.state import RoundState
from zooflow.dev.api import AirflowApi
from zooflow.dev.processes import live_processes
from zooflow.panoptes import PanoptesConfig, connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config, set_up_digits_learning
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


def _set_up_sandbox(sandbox: SandboxProcess, panoptes: PanoptesConfig, folder: Path) -> tuple[Path, int]:
    """The demo project as `zooflow demo` fills it, plus a digits workflow and pool for active learning."""
    with connect(panoptes):
        add_demo_subjects(20)
        digits = set_up_digits_learning(folder, sandbox.admin, k=4, m=1)
    sandbox.admin.run_volunteers(45, seed=1)
    return digits.config, digits.workflow_id


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
        al_config, workflow_id = _set_up_sandbox(sandbox, panoptes, root / "al")
        # The test starts every run itself. Left on, the daily schedule would start a run of the
        # exports with the form's defaults (no project) the moment the DAG is unpaused, and that
        # failing run would hold the DAG's one active run slot through its retries.
        env = airflow_env(airflow_home=root / "airflow", dags_folder=REPO / "dags", data_root=root / "data",
                          panoptes=panoptes, extra={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                                                    "ZOOFLOW_AL_CONFIG": str(al_config)})  # the form leaves it empty
        cluster = stack.enter_context(CeleryCluster(env, postgres=postgres, redis=redis))
        report(f"postgres {postgres.address}, redis {redis.address}, sandbox {sandbox.endpoint}, "
               f"api-server {cluster.url}; Celery workers answering: {', '.join(sorted(cluster.workers_answering()))} "
               f"(all up after {time.monotonic() - started:.0f} s)")
        deployment = Deployment(stack, root, cluster, cluster.api(), sandbox, postgres, redis, al_config, workflow_id,
                                started)
    except BaseException:
        stack.close()
        raise
    with stack:
        yield deployment


def _finish(api: AirflowApi, dag_id: str, run_id: str, *, timeout: float,
            watch: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """The run once finished; at a task's first failed try, the test fails at once with that try's errors
    (instead of sitting through the DAG's retries)."""

    def check(task_instances: list[dict[str, Any]]) -> None:
        if watch is not None:
            watch(task_instances)
        for ti in task_instances:
            if ti["state"] in ("failed", "up_for_retry"):
                log = api.task_log(dag_id, run_id, ti["task_id"], ti["try_number"])
                errors = [line[:600] for line in log.splitlines() if "error" in line.lower()][-3:]
                pytest.fail(f"{dag_id}.{ti['task_id']} try {ti['try_number']} is {ti['state']}:\n" + "\n".join(errors))

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

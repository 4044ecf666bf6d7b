"""What the first ``zooflow up`` of a state dir does so the UI has something to show.

An empty UI teaches little, so the first ``up`` gives the DAGs work as ``make demo`` does (subjects,
classifications, an active-learning setup) and runs the loop once through the instance's own
scheduler, as a user would: an export run of the demo project, and the active-learning round its
Asset event starts. The Zooniverse page (``plugins/``) then lists an export and a round, and both
runs are in the DAGs' run history. Each step is recorded in the state dir and not repeated.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from zooflow.dev.api import AirflowApi, AirflowApiError, RunNotFinished
from zooflow.dev.instance import Layout
from zooflow.files import atomic_write_json

DEMO_RUNS_TIMEOUT = 900.0


def say(text: str) -> None:
    print(text, flush=True)


def populate_once(layout: Layout, endpoint: str) -> None:
    """Give the DAGs work, as ``make demo`` does: subjects, classifications and an active-learning setup
    in the demo project, a second project of the same team, and the projects file naming both.

    Done once per state dir (the sandbox keeps its data across restarts), so ``down``/``up`` does not
    pile up copies of the same subjects.
    """
    if layout.populated.exists():
        say(f"  demo projects already populated ({layout.populated.name})")
        return
    from zooflow.demo import DEMO_CLASSIFICATIONS, DEMO_SUBJECTS
    from zooflow.dev.team import write_team_projects
    from zooflow.panoptes import connect
    from zooflow.sandbox.admin import SandboxAdmin
    from zooflow.sandbox.populate import (
        add_demo_subjects, add_second_demo_project, demo_user_config, set_up_digits_learning,
    )

    admin = SandboxAdmin(endpoint)
    with connect(demo_user_config(endpoint)):
        subjects = add_demo_subjects(DEMO_SUBJECTS)
        classified = admin.run_volunteers(DEMO_CLASSIFICATIONS, seed=1)
        # The same active-learning setup as the demo: the digits are the pool, and only the simulated
        # volunteers see their true labels (through the sandbox's oracle).
        digits = set_up_digits_learning(layout.al_dir, admin, k=20, m=2)
        second, second_workflow = add_second_demo_project(DEMO_SUBJECTS)
        classified += admin.run_volunteers(DEMO_CLASSIFICATIONS, seed=2, workflow_id=second_workflow)
        admin.settle()  # as if minutes had passed: Panoptes' counter jobs have caught up
    write_team_projects(layout.projects_file, al_config=layout.al_config, second_project=second)
    atomic_write_json(layout.populated, {
        "populated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "subjects": len(subjects), "classifications": classified, "al_workflow_id": digits.workflow_id,
        "second_project": second,
    })
    say(f"  demo projects populated: {len(subjects)} subjects, {classified} classifications, active-learning "
        f"workflow {digits.workflow_id}; a second project {second}; both in {layout.projects_file}")


@dataclass(frozen=True)
class DemoRun:
    dag_id: str
    run_id: str | None
    state: str
    seconds: float

    def line(self) -> str:
        if self.run_id is None:
            return f"{self.dag_id}: {self.state}"
        return f"{self.dag_id} {self.run_id}: {self.state} ({self.seconds:.0f} s)"


def demo_runs_once(layout: Layout, api: AirflowApi) -> list[DemoRun]:
    """Run the export DAG once and the active-learning round its Asset event starts; once per state dir.

    Both go through this instance's scheduler, triggerer and executor, exactly as a user's runs do,
    so what the UI then shows (runs, logs, the Zooniverse page) is the real thing. The DAGs are
    switched on only for these runs and left as they were found (paused, unless the user changed
    that). The export run takes the logical date of the DAG's next scheduled run, so switching
    the DAG on does not also start that daily run. A failed run is reported, not fatal: Airflow is
    up, and the run's logs in the UI say what went wrong. ``demo-runs.json`` records a success, so a
    later ``up`` of the same state dir does not run them again.
    """
    if layout.demo_runs.exists():
        recorded = json.loads(layout.demo_runs.read_text())
        return [DemoRun(r["dag_id"], r["run_id"], f"{r['state']} earlier", r["seconds"]) for r in recorded["runs"]]
    from zooflow.projects_file import al_dag_id, exports_dag_id
    from zooflow.sandbox import seed

    # the demo project's own DAGs, as the projects file makes them
    exports_dag = exports_dag_id(seed.DEMO_PROJECT_SLUG)
    al_dag = al_dag_id(seed.DEMO_PROJECT_SLUG, json.loads(layout.populated.read_text())["al_workflow_id"])

    say(f"  running {exports_dag} once, and the {al_dag} round its new export starts "
        f"(skip with --no-demo-runs; up to {DEMO_RUNS_TIMEOUT / 60:.0f} min)")
    details = {dag_id: api.dag(dag_id) for dag_id in (exports_dag, al_dag)}
    deadline = time.monotonic() + DEMO_RUNS_TIMEOUT
    earlier_rounds = {r["dag_run_id"] for r in api.dag_runs(al_dag)}
    runs: list[DemoRun] = []
    try:
        api.unpause(al_dag)  # first: the export's event starts a round
        started = time.monotonic()
        conf = {"project": seed.DEMO_PROJECT_SLUG, "poll_seconds": 1}
        note = "Started by `zooflow up`, so the Zooniverse page has an export to show."
        try:
            export_run = api.trigger(exports_dag, conf, logical_date=details[exports_dag].get("next_dagrun_logical_date"),
                                     note=note)
        except AirflowApiError as exc:
            if exc.status != 409:  # 409: a run already holds that logical date
                raise
            export_run = api.trigger(exports_dag, conf, note=note)
        api.unpause(exports_dag)
        state = _final_state(api, exports_dag, export_run, deadline)
        runs.append(DemoRun(exports_dag, export_run, state, time.monotonic() - started))
        say(f"    {runs[-1].line()}")
        if state != "success":
            runs.append(DemoRun(al_dag, None, "not started: the export run did not succeed", 0.0))
            return runs
        started = time.monotonic()
        round_run = api.wait_for_new_run(al_dag, "asset_triggered", earlier_rounds, deadline - time.monotonic())
        state = _final_state(api, al_dag, round_run, deadline) if round_run else "did not start within the timeout"
        runs.append(DemoRun(al_dag, round_run, state, time.monotonic() - started))
        say(f"    {runs[-1].line()}")
    finally:
        for dag_id in (exports_dag, al_dag):
            if details[dag_id].get("is_paused", True):
                api.pause(dag_id)
    if all(run.state == "success" for run in runs):
        atomic_write_json(layout.demo_runs, {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                             "runs": [asdict(run) for run in runs]})
    return runs


def _final_state(api: AirflowApi, dag_id: str, run_id: str, deadline: float) -> str:
    """The run's final state, or ``still <state>`` at the deadline."""
    try:
        return api.wait_for_run(dag_id, run_id, timeout=max(deadline - time.monotonic(), 0), poll=2)["state"]
    except RunNotFinished as exc:
        return f"still {exc.state} after {DEMO_RUNS_TIMEOUT / 60:.0f} min"

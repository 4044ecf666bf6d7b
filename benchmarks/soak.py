"""Soak: consecutive runs of the exports and active-learning DAGs with faults on a share of all requests.

Each cycle moves the sandbox clock past the 24-hour rule, lets the simulated volunteers retire the
current batch, then runs ``zooniverse_exports`` and ``zooniverse_active_learning`` for real with
``dag.test()`` while the sandbox answers ``--fault-rate`` of its API, OAuth and blob requests with a
5xx, and cuts every third export download part-way. It prints one line per cycle and a summary:
runs that ended in success, faults injected, task retries, bytes fetched again by resumed downloads,
and what was lost or duplicated (classifications missing from the slices, pool items uploaded twice
or never). The exit status is 1 unless every run succeeded and nothing was lost or duplicated.

    .venv/bin/python benchmarks/soak.py --cycles 20 --fault-rate 0.05
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from zooflow.airflow_env import airflow_env, connection_env

REPO = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--retry-delay", type=float, default=2.0, help="seconds between a task's tries (production: 120)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zooflow-soak-"))
    os.environ.update(airflow_env(airflow_home=work / "airflow", dags_folder=REPO / "dags", data_root=work / "data", base={}))
    (work / "airflow").mkdir()
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return soak(work, args.cycles, args.fault_rate, timedelta(seconds=args.retry_delay))


def soak(work: Path, cycles: int, fault_rate: float, retry_delay: timedelta) -> int:
    # Airflow reads its settings on import: only now that the environment is set.
    import logging

    from airflow.dag_processing.dagbag import DagBag
    from panoptes_client import Project, Subject

    from zooflow.al.state import RoundState
    from zooflow.panoptes import connect
    from zooflow.paths import DataRoot
    from zooflow.sandbox import seed
    from zooflow.sandbox.populate import add_demo_subjects, demo_user_config, set_up_digits_learning
    from zooflow.sandbox.process import SandboxProcess

    logging.disable(logging.WARNING)  # the per-cycle lines are the output; task logs stay in the runs
    slug = seed.DEMO_PROJECT_SLUG

    def dag(name: str):
        """Fresh each run: dag.test() renders templated fields onto the task objects it runs."""
        loaded = DagBag(dag_folder=str(REPO / "dags" / f"{name}.py")).dags[name]
        for task in loaded.tasks:
            task.retry_delay = retry_delay
        return loaded

    def quietly(run_dag, conf):
        with open(work / "runs.log", "a") as log, _redirect(log):
            return run_dag.test(run_conf=conf)

    with SandboxProcess(work / "sandbox", seed="demo", settings={"export_delay": 0.5}) as sandbox:
        admin = sandbox.admin
        config = demo_user_config(sandbox.endpoint)
        os.environ.update(connection_env(config))
        with connect(config):
            add_demo_subjects(12)
            digits = set_up_digits_learning(work / "al", admin, k=8, m=1)
        workflow_id = digits.workflow_id
        os.environ["ZOOFLOW_AL_CONFIG"] = str(digits.config)  # the form's empty config means this one
        state = RoundState(DataRoot(work / "data").al_dir(slug, workflow_id))
        totals = collections.Counter()
        faults_before = admin.state()["faults_injected"]
        first_request = admin.last_request_id()
        started = time.monotonic()
        for cycle in range(1, cycles + 1):
            admin.configure(fault_rate=0.0)
            admin.run_volunteers(15, seed=cycle)
            for _ in range(30):  # the volunteers retire the current batch
                if not admin.run_volunteers(10, seed=1000 + cycle, workflow_id=workflow_id):
                    break
            admin.advance_clock(hours=25)
            admin.settle()  # Panoptes' counter jobs catch up with the retirements
            expected = admin.state()["classifications"]
            admin.configure(fault_rate=fault_rate,
                            drop_download_after_bytes=1500 if cycle % 3 == 0 else None, drop_download_count=1)
            exports = quietly(dag("zooniverse_exports"), {"project": slug, "poll_seconds": 1})
            al = quietly(dag("zooniverse_active_learning"), {"project": slug, "poll_seconds": 1})
            admin.configure(fault_rate=0.0, drop_download_after_bytes=None)
            kept = _sliced_rows(exports)
            retries = sum(max(ti.try_number - 1, 0) for run in (exports, al) for ti in run.get_task_instances())
            totals.update(runs=2, succeeded=(exports.state == "success") + (al.state == "success"), retries=retries,
                          classifications_lost=max(expected - kept, 0) if kept is not None else expected)
            print(f"cycle {cycle:2d}: exports {exports.state}, AL {al.state} (round {len(state.completed())}); "
                  f"{retries} task retries; {kept} of {expected} classifications sliced", flush=True)

        log = _all_requests(admin, first_request)
        totals["faults_injected"] = admin.state()["faults_injected"] - faults_before
        totals["bytes_resumed"] = sum(r["bytes"] or 0 for r in log if r["path"].startswith("/blob/") and r["status"] == 206)
        totals["resumed_downloads"] = sum(1 for r in log if r["path"].startswith("/blob/") and r["status"] == 206)
        with connect(config):
            project = Project.find(slug=slug)
            uploaded = collections.Counter(s.metadata.get("#pool_id") for s in Subject.where(project_id=project.id, page_size=100)
                                           if s.metadata.get("#pool_id"))
        picked = [item for record in state.completed() for item in record["picked"]]
        totals["rounds"] = len(state.completed())
        totals["subjects_uploaded"] = sum(uploaded.values())
        totals["subjects_duplicated"] = sum(count - 1 for count in uploaded.values() if count > 1)
        totals["subjects_lost"] = sum(1 for item in picked if uploaded[item] == 0)
        totals["seconds"] = round(time.monotonic() - started)

    summary = dict(sorted(totals.items()))
    print(json.dumps(summary, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    ok = (summary["succeeded"] == summary["runs"] and summary["classifications_lost"] == 0
          and summary["subjects_lost"] == 0 and summary["subjects_duplicated"] == 0)
    print("soak passed" if ok else f"soak FAILED; task logs in {work / 'runs.log'}")
    return 0 if ok else 1


def _sliced_rows(run) -> int | None:
    (ti,) = [t for t in run.get_task_instances() if t.task_id == "classifications.slice"]
    report = ti.xcom_pull(task_ids="classifications.slice") if ti.state == "success" else None
    return None if report is None else report["rows_kept"] + sum(report["rows_filtered"].values())


def _all_requests(admin, since: int) -> list[dict]:
    """The whole request log since ``since``, page by page."""
    rows: list[dict] = []
    while page := admin.requests(since_id=rows[-1]["id"] if rows else since):
        rows += page
    return rows


class _redirect:
    """Send this process's stdout and stderr (file descriptors, as Airflow's task logs use) to a file."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def __enter__(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        os.dup2(self.handle.fileno(), 1)
        os.dup2(self.handle.fileno(), 2)

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])


if __name__ == "__main__":
    sys.exit(main())

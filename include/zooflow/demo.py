"""``zooflow demo``: the main job, end to end, against the sandbox.

It starts a seeded sandbox, prepares a local Airflow (SQLite) under ``.demo/``, runs the DAGs with
``airflow dags test`` exactly as a user would, prints what they found, and stops everything it
started, also when a step fails. Its arguments are :mod:`zooflow.demo_cli`'s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from zooflow.airflow_env import airflow_env
from zooflow.al.state import RoundState
from zooflow.classifications.store import ClassificationStore
from zooflow.dev.airflow import airflow_executable
from zooflow.dev.processes import log_tail
from zooflow.dev.team import write_team_projects
from zooflow.errors import ZooflowError
from zooflow.exports.slicing import SliceReport
from zooflow.files import atomic_write_bytes
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.projects import format_report
from zooflow.projects_file import al_dag_id, exports_dag_id
from zooflow.sandbox import seed
from zooflow.sandbox.populate import (
    add_demo_subjects, add_second_demo_project, demo_user_config, demo_workflow_id, set_up_digits_learning,
)
from zooflow.sandbox.process import SandboxProcess

DEMO_SUBJECTS = 20
DEMO_CLASSIFICATIONS = 45


class DemoStep:
    """Runs one Airflow CLI command with its output in a log file, and says how it went."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs

    def airflow(self, name: str, *args: str) -> None:
        log_path = self.logs / f"{name}.log"
        with log_path.open("w") as log_file:
            result = subprocess.run(
                [airflow_executable(), *args], env=self.env, stdout=log_file, stderr=subprocess.STDOUT, check=False
            )
        if result.returncode != 0:
            raise ZooflowError(
                f"`airflow {' '.join(args[:3])}` failed (exit {result.returncode}); last lines of {log_path}:\n"
                + log_tail(log_path)
            )


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    dags_folder = args.dags_folder.resolve()
    if not (dags_folder / "zooniverse_connection_check.py").is_file():
        raise ZooflowError(f"{dags_folder} is not zooflow's dags folder; run the demo from the repository root")
    # A fresh sandbox and data root each time: the demo tells the same story on every run, and no
    # round state outlives the sandbox its subject sets lived in.
    for folder in ("sandbox", "data"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data_root = workdir / "data"

    print("== zooflow demo: the labelling loop against a local Panoptes sandbox ==")
    # volunteers of differing skill, and the owner's gold-standard answers on some subjects, as on a real project
    settings = {"export_delay": 2, "volunteer_skills": "mixed", "gold_standard_fraction": 0.1}
    with SandboxProcess(workdir / "sandbox", seed="demo", settings=settings,
                        log_path=logs / "sandbox.log") as sandbox:
        print(f"[1/6] sandbox Panoptes at {sandbox.endpoint} (log {logs / 'sandbox.log'})")
        panoptes = demo_user_config(sandbox.endpoint)
        with connect(panoptes):
            subjects = add_demo_subjects(DEMO_SUBJECTS)
            digits = set_up_digits_learning(workdir / "al", sandbox.admin, k=20, m=2)
            second, second_workflow = add_second_demo_project(DEMO_SUBJECTS)
            demo_workflow = demo_workflow_id()
        classified = sandbox.admin.run_volunteers(DEMO_CLASSIFICATIONS, seed=1, workflow_id=demo_workflow)
        classified += sandbox.admin.run_volunteers(DEMO_CLASSIFICATIONS, seed=2, workflow_id=second_workflow)
        sandbox.admin.settle()
        # labels weighted by each volunteer's skill (Dawid-Skene); the round report plots the skills
        settings_file = yaml.safe_load(digits.config.read_text()) | {"consensus": "weighted"}
        atomic_write_bytes(digits.config, yaml.safe_dump(settings_file).encode())
        projects = write_team_projects(workdir / "projects.yaml", al_config=digits.config, second_project=second)
        print(f"      a team of two projects ({seed.DEMO_PROJECT_SLUG} and {second}, in {projects}); {len(subjects)} "
              f"subjects each; simulated volunteers (careful, middling, random and biased ones) made {classified} "
              "classifications; the sandbox clock moves on until Panoptes' counter jobs have caught up")
        env = airflow_env(
            airflow_home=workdir / "airflow",
            dags_folder=dags_folder,
            data_root=data_root,
            panoptes=panoptes,
            extra={"ZOOFLOW_PROJECTS": str(projects), "ZOOFLOW_PROJECT": seed.DEMO_PROJECT_SLUG},
        )
        step = DemoStep(env, logs)
        step.airflow("db-migrate", "db", "migrate")
        print(f"[2/6] Airflow metadata database ready ({workdir / 'airflow'})")
        step.airflow(
            "zooniverse_connection_check",
            "dags", "test", "zooniverse_connection_check",
            "--conf", json.dumps({"project": seed.DEMO_PROJECT_SLUG}),
        )
        print("[3/6] zooniverse_connection_check: success")
        root = DataRoot(data_root)
        print("\n".join("      " + line for line in format_report(_latest_report(root, "connection_check"))))
        for project in (seed.DEMO_PROJECT_SLUG, second):  # each project's own exports DAG, from the projects file
            step.airflow(exports_dag_id(project), "dags", "test", exports_dag_id(project),
                         "--conf", json.dumps({"poll_seconds": 1}))
            print(f"[4/6] {exports_dag_id(project)}: success — exports requested, built, downloaded, sliced and "
                  "flattened")
            for export_type in ("classifications", "subjects"):
                report = SliceReport.from_dict(_latest_report(root, f"slice-{export_type}", project))
                print("\n".join("      " + line for line in report.summary_lines()))
            print(f"      export report: {_latest_page(root, 'export-report', project)}")

        al_dag = al_dag_id(seed.DEMO_PROJECT_SLUG, digits.workflow_id)
        al_conf = json.dumps({"poll_seconds": 1})
        step.airflow(f"{al_dag}-1", "dags", "test", al_dag, "--conf", al_conf)
        state = RoundState(root.al_dir(seed.DEMO_PROJECT_SLUG, digits.workflow_id))
        print(f"[5/6] active learning, round 1: {_round_line(state.completed()[-1])}")
        labelled = 0
        while made := sandbox.admin.run_volunteers(20, seed=labelled, workflow_id=digits.workflow_id):
            labelled += made
        print(f"      volunteers made {labelled} classifications and retired the batch; Panoptes' counter jobs "
              "catch up (minutes on the sandbox clock)")
        sandbox.admin.settle()
        step.airflow(f"{al_dag}-2", "dags", "test", al_dag, "--conf", al_conf)
        second = state.completed()[-1]
        stored = ClassificationStore.at(root, seed.DEMO_PROJECT_SLUG, digits.workflow_id).state()
        print(f"[6/6] active learning, round 2: {_round_line(second)}")
        print(f"      its labels: the {stored.total} classifications pulled from Panoptes as they arrived (no export "
              "waited for), weighted by each volunteer's estimated skill")
        print(f"      round report (learning curve, class balance, confusion matrix, the uploaded images): "
              f"{_latest_page(root, 'al-round-report')}")
    print(f"Sandbox stopped; nothing left running. Outputs are under {data_root}")
    return 0


def _latest_report(root: DataRoot, kind: str, project: str = seed.DEMO_PROJECT_SLUG) -> dict:
    folder = root.reports_dir(project, kind)
    return json.loads(max(folder.glob("*.json"), key=lambda p: p.stat().st_mtime).read_text())


def _latest_page(root: DataRoot, kind: str, project: str = seed.DEMO_PROJECT_SLUG) -> Path:
    """The newest HTML report of a kind: the page to open after the demo."""
    return max(root.reports_dir(project, kind).glob("*.html"), key=lambda p: p.stat().st_mtime)


def _round_line(record: dict) -> str:
    scores = record["metrics"]
    accuracy = "n/a" if scores.get("accuracy") is None else f"{scores['accuracy']:.2f}"
    return (f"{len(record['picked'])} digits uploaded to subject set {record['set_id']} ({record['set_name']}); "
            f"trained on {record['labelled']} volunteer labels, held-out accuracy {accuracy}")

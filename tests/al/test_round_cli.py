"""``zooflow al round`` against the sandbox: dry run, a real round, and a refusal while the batch is unlabelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from panoptes_client import Project

from zooflow.al.demo_data import write_digits_pool
from zooflow.panoptes import connect
from zooflow.sandbox import seed
from zooflow.workflows import ensure_question_workflow


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=300)


def test_dry_run_then_a_round_then_a_refusal(demo_config, demo_sandbox, tmp_path) -> None:
    with connect(demo_config):
        workflow, _ = ensure_question_workflow(Project.find(slug=seed.DEMO_PROJECT_SLUG), "CLI digits",
                                               "Which digit?", [str(d) for d in range(10)], retirement_count=2)
    config = tmp_path / "al.yaml"
    config.write_text(yaml.safe_dump({"pool": str(write_digits_pool(tmp_path)), "workflow_id": int(workflow.id), "k": 4, "m": 0}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))} | {
        "PANOPTES_ENDPOINT": demo_config.endpoint, "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password, "ZOOFLOW_DATA_ROOT": str(tmp_path / "data")}
    base = ["al", "round", seed.DEMO_PROJECT_SLUG, "--config", str(config)]

    before = demo_sandbox.admin.state()
    dry = zooflow(*base, "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)["selection"]["picks"]) == 4 and "upload" not in json.loads(dry.stdout)
    assert demo_sandbox.admin.state()["subjects"] == before["subjects"]

    real = zooflow(*base, "--set-name", "cli round one", env=env)
    assert real.returncode == 0, real.stderr
    assert "'cli round one': 4 subjects (4 new, 0 resumed, 0 already there)" in real.stdout
    assert demo_sandbox.admin.state()["subjects"] == before["subjects"] + 4

    refused = zooflow(*base, env=env)  # straight after the upload Panoptes has not counted the batch yet
    assert refused.returncode == 2
    assert "the current batch is not fully labelled yet (workflow" in refused.stderr
    assert "waiting for Panoptes' counters to include the batch" in refused.stderr
    demo_sandbox.admin.settle()
    refused = zooflow(*base, env=env)  # counted now, and still nobody has classified it
    assert refused.returncode == 2 and "0 of 4 subjects retired" in refused.stderr

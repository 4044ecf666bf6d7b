"""``zooflow export``: the whole pipeline from the command line, against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from panoptes_client import Project, Workflow

from zooflow.panoptes import connect
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture()
def classified(cli_env, demo_config) -> int:
    """How many classifications the demo project holds once cli_env has added its own (the sandbox may
    hold others, of projects other tests made)."""
    with connect(demo_config):
        project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
        return sum(w.raw["classifications_count"] for w in Workflow.where(project_id=project.id))


@pytest.fixture()
def cli_env(demo_config, demo_sandbox, tmp_path) -> dict[str, str]:
    demo_sandbox.admin.configure(export_delay=0.3, export_stuck=False, drop_download_after_bytes=None, fail_next=[])
    with connect(demo_config):
        add_demo_subjects(6, start=2000)
    made = demo_sandbox.admin.run_volunteers(20, seed=5)
    assert made > 0
    demo_sandbox.admin.advance_clock(hours=25)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))}
    return env | {
        "PANOPTES_ENDPOINT": demo_config.endpoint, "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password, "ZOOFLOW_DATA_ROOT": str(tmp_path / "data"),
    }


def test_request_wait_download_slice_flatten(cli_env, classified, tmp_path) -> None:
    slug = seed.DEMO_PROJECT_SLUG
    requested = zooflow("export", "request", slug, "--json", env=cli_env)
    assert requested.returncode == 0, requested.stderr
    assert [o["action"] for o in json.loads(requested.stdout)] == ["requested", "requested"]

    again = zooflow("export", "request", slug, "--type", "classifications", env=cli_env)
    assert again.returncode == 0 and "reused" in again.stdout and "under the 24 h limit" in again.stdout

    waited = zooflow("export", "wait", slug, "--poll", "0.2", "--timeout", "1", env=cli_env)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.count(": ready (updated") == 2

    downloaded = zooflow("export", "download", slug, "--type", "classifications", "--json", env=cli_env)
    assert downloaded.returncode == 0, downloaded.stderr
    (result,) = json.loads(downloaded.stdout)
    export = Path(result["path"])
    assert export.name.endswith(".csv.gz") and export.is_file()

    out = tmp_path / "slices"
    sliced = zooflow("export", "slice", str(export), "--out", str(out), "--gold", "include", "--format", "csv", "--json", env=cli_env)
    assert sliced.returncode == 0, sliced.stderr
    report = json.loads(sliced.stdout)
    assert report["rows_read"] == classified  # every classification of the project
    assert report["rows_kept"] == report["rows_read"] and report["rows_quarantined"] == 0
    parts = sorted(out.glob("created_date=*/part-00000.csv"))
    assert len(parts) == len(report["partitions"]) and not list(out.glob("created_date=*/*.parquet"))

    none_kept = zooflow("export", "slice", str(export), "--out", str(tmp_path / "empty"), "--workflow-id", "999", "--json", env=cli_env)
    assert json.loads(none_kept.stdout)["rows_kept"] == 0

    flat = zooflow("export", "flatten", str(parts[0]), "--out", str(tmp_path / "flat" / "day"), "--json", env=cli_env)
    assert flat.returncode == 0, flat.stderr
    flat_report = json.loads(flat.stdout)
    assert flat_report["task_types"] == {"single": flat_report["rows_written"]}
    assert (tmp_path / "flat" / "day.csv").is_file() and (tmp_path / "flat" / "day.parquet").is_file()


def test_bad_flags_are_one_clear_line(cli_env, tmp_path) -> None:
    missing = zooflow("export", "slice", str(tmp_path / "nope.csv.gz"), "--out", str(tmp_path / "o"), env=cli_env)
    assert missing.returncode == 2 and missing.stderr.strip().endswith("does not exist")
    (tmp_path / "x.csv").write_text("classification_id,subject_ids\n1,2\n")
    window = zooflow("export", "slice", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o"),
                     "--since", "2025-02-01", "--until", "2025-01-01", env=cli_env)
    assert window.returncode == 2 and "the created_at window is empty" in window.stderr and "Traceback" not in window.stderr
    no_request = zooflow("export", "download", seed.DEMO_PROJECT_SLUG, "--type", "workflows", env=cli_env)
    assert no_request.returncode == 2 and "run `zooflow export request` first" in no_request.stderr

"""A real `airflow backfill create` of zooniverse_exports, run by Airflow's own scheduler and
api-server: each past date gets its own partition, re-sliced from the last download, and
Panoptes is asked for nothing."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import pytest

from zooflow.airflow_env import airflow_env
from zooflow.dev.airflow import LocalAirflow
from zooflow.panoptes import connect
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.populate import add_demo_subjects, classify_on, demo_user_config
from zooflow.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow
DAYS = {datetime(2026, 11, day, tzinfo=timezone.utc): count for day, count in ((10, 5), (11, 7), (12, 9))}


def test_backfill_of_three_dates_gives_three_partitions(tmp_path, dags_folder) -> None:
    with SandboxProcess(tmp_path / "sandbox", seed="demo", settings={"export_delay": 0.3}) as sandbox:

        config = demo_user_config(sandbox.endpoint)
        with connect(config):
            held = classify_on(sandbox.admin, add_demo_subjects(6), DAYS)
        sandbox.admin.run_volunteers(10, seed=2)  # today's classifications, outside every backfilled date
        (tmp_path / "airflow").mkdir()
        env = airflow_env(airflow_home=tmp_path / "airflow", dags_folder=dags_folder, data_root=tmp_path / "data",
                          panoptes=config, extra={"ZOOFLOW_PROJECT": seed.DEMO_PROJECT_SLUG})
        with LocalAirflow(env, services=("api-server", "scheduler", "dag-processor")) as airflow:
            airflow.airflow("dags", "test", "zooniverse_exports", "--conf",
                            json.dumps({"project": seed.DEMO_PROJECT_SLUG, "poll_seconds": 1}))
            since = sandbox.admin.last_request_id()
            airflow.airflow("backfill", "create", "--dag-id", "zooniverse_exports",
                            "--from-date", "2026-11-10", "--to-date", "2026-11-12", retry_locked=3)
            airflow.airflow("dags", "unpause", "zooniverse_exports")
            runs = airflow.wait_for_runs("zooniverse_exports", "backfill", 3, timeout=300)
        posts = [r for r in sandbox.admin.requests(since_id=since) if r["method"] == "POST" and r["path"].endswith("_export")]
    assert sorted(r["state"] for r in runs) == ["success"] * 3
    assert posts == []
    slices = DataRoot(tmp_path / "data").slices_dir(seed.DEMO_PROJECT_SLUG, "classifications")
    for day in DAYS:
        date = day.date().isoformat()
        with open(slices / f"created_date={date}" / "part-00000.csv", encoding="utf-8") as handle:
            assert sum(1 for _ in csv.DictReader(handle)) == held[date] == DAYS[day]

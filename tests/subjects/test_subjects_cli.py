"""``zooflow subjects dedupe|update-metadata``: dry run by default, --apply changes, bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from panoptes_client import Subject

from zooflow.panoptes import connect
from zooflow.sandbox.populate import demo_subject_set


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=180)


def members(config, set_id: int) -> list[dict]:
    with connect(config):
        return sorted((s.metadata for s in Subject.where(subject_set_id=set_id)), key=lambda m: m["filename"])


def test_dedupe_and_update_metadata_from_the_command_line(demo_config, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))} | {
        "PANOPTES_ENDPOINT": demo_config.endpoint, "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password, "ZOOFLOW_DATA_ROOT": str(tmp_path / "data")}
    with connect(demo_config):
        set_id, _ = demo_subject_set([{"filename": n} for n in ("a.png", "a.png", "b.png")], prefix="cli-admin")

    dry = zooflow("subjects", "dedupe", "--subject-set", str(set_id), "--field", "filename", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["duplicates"] == 1 and len(members(demo_config, set_id)) == 3
    applied = zooflow("subjects", "dedupe", "--subject-set", str(set_id), "--field", "filename", "--apply", "--json", env=env)
    assert applied.returncode == 0 and json.loads(applied.stdout)["removed"] == 1
    assert [m["filename"] for m in members(demo_config, set_id)] == ["a.png", "b.png"]

    (tmp_path / "meta.csv").write_text("file,label\na.png,cat\nz.png,dog\n")
    update = ["subjects", "update-metadata", "--subject-set", str(set_id), "--csv", str(tmp_path / "meta.csv"),
              "--match", "file=filename"]
    assert zooflow(*update, env=env).returncode == 0
    assert all("label" not in m for m in members(demo_config, set_id))  # a dry run changes nothing
    done = zooflow(*update, "--apply", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert members(demo_config, set_id)[0] == {"filename": "a.png", "label": "cat"}  # merged, not replaced
    assert members(demo_config, set_id)[1] == {"filename": "b.png"}

    bad = zooflow("subjects", "update-metadata", "--subject-set", str(set_id), "--csv", str(tmp_path / "meta.csv"),
                  "--match", "nope=filename", "--apply", env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("zooflow: error:") and "nope" in bad.stderr
    unknown = zooflow("subjects", "dedupe", "--subject-set", "987654", "--field", "filename", "--apply", env=env)
    assert unknown.returncode == 2 and "987654" in unknown.stderr and "Traceback" not in unknown.stderr

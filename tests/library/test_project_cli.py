"""``zooflow project init``: dry run by default, --apply creates, a rerun creates nothing new."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a4944415408d763f80f00010101001b0a1e3f"
    "0000000049454e44ae426082"
)


def zooflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", *args], capture_output=True, text=True, env=env, timeout=180)


def demo_env(demo_config, tmp_path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))} | {
        "PANOPTES_ENDPOINT": demo_config.endpoint, "PANOPTES_USERNAME": demo_config.username,
        "PANOPTES_PASSWORD": demo_config.password, "ZOOFLOW_DATA_ROOT": str(tmp_path / "data")}


def init_args(name: str, manifest) -> list[str]:
    return ["project", "init", "--name", name, "--description", "d", "--workflow", "W", "--question", "Q?",
            "--answer", "Yes", "--answer", "No", "--manifest", str(manifest), "--subject-set", "one"]


def test_init_dry_run_apply_rerun(demo_config, demo_sandbox, tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG)
    (tmp_path / "m.csv").write_text("file,#id\na.png,1\nb.png,2\n")
    env = demo_env(demo_config, tmp_path)
    args = init_args("CLI Made", tmp_path / "m.csv")
    before = demo_sandbox.admin.state()
    dry = zooflow(*args, env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[:2] == ["Dry run: nothing was changed (add --apply to create and upload).",
                                           "project zooflow/cli-made: would be created"]
    assert demo_sandbox.admin.state()["projects"] == before["projects"]

    applied = zooflow(*args, "--apply", "--json", env=env)
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["project"]["created"] and report["subject_set"]["created"] == 2
    again = zooflow(*args, "--apply", env=env)
    assert again.returncode == 0 and "0 uploaded, 2 already there" in again.stdout and "found" in again.stdout
    after = demo_sandbox.admin.state()
    assert (after["projects"], after["subjects"]) == (before["projects"] + 1, before["subjects"] + 2)


def test_allow_missing_with_nothing_left_to_upload_creates_nothing_and_says_why(demo_config, demo_sandbox, tmp_path) -> None:
    (tmp_path / "m.csv").write_text("file,#id\n" + "".join(f"gone{n}.png,{n}\n" for n in range(25)))
    before = demo_sandbox.admin.state()
    for extra in ([], ["--apply"]):
        refused = zooflow(*init_args("Nothing Here", tmp_path / "m.csv"), "--allow-missing", *extra,
                          env=demo_env(demo_config, tmp_path))
        assert refused.returncode == 2, refused.stdout
        assert "every row's files are missing (25 file(s): line 2: gone0.png; " in refused.stderr
        assert "and 5 more), so there is nothing to upload" in refused.stderr
        assert "Nothing was created or uploaded." in refused.stderr
    after = demo_sandbox.admin.state()
    assert [after[t] for t in ("projects", "workflows", "subject_sets", "subjects")] == \
        [before[t] for t in ("projects", "workflows", "subject_sets", "subjects")]

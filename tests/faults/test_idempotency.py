"""Running a DAG run twice (the same run id, as "Clear" in the UI does) gives identical outputs and
writes nothing more to the API. The sandbox's request log is the witness: after the first run, the
second may read but not create, change or delete anything."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fault_support import EXPORTS_CONF, SLUG, al_conf
from zooflow.panoptes import connect
from zooflow.sandbox.populate import demo_subject_set

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
LOGINS = ("/oauth/", "/users/sign_in")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a4944415408d763f80f00010101001b0a1e3f"
    "0000000049454e44ae426082"
)


def outputs(root: Path) -> dict[str, str]:
    """Every output's bytes, except run reports, whose timings differ; those must keep the same names."""
    return {str(p.relative_to(root)): ("report" if "/reports/" in str(p) else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def writes_since(world, since: int) -> list[str]:
    return [f"{r['method']} {r['path']} {r['status']}" for r in world.admin.requests(since_id=since)
            if r["method"] in WRITES and not r["path"].startswith(LOGINS)]


def conf_for(name: str, world, tmp_path: Path) -> dict:
    if name == "zooniverse_connection_check":
        return {"project": SLUG}
    if name == "zooniverse_exports":
        world.admin.advance_clock(hours=25)  # a fresh export is due, so the first run requests one
        return EXPORTS_CONF
    if name == "zooniverse_active_learning":
        world.label_until_retired(seed_=21)
        return al_conf(world)
    if name == "zooniverse_project_setup":
        folder = tmp_path / "batch"
        folder.mkdir()
        for i in range(3):
            (folder / f"img{i}.png").write_bytes(PNG)
        (folder / "manifest.csv").write_text("image,label\n" + "".join(f"img{i}.png,item {i}\n" for i in range(3)))
        return {"display_name": "Idempotent Project", "description": "made twice, exists once",
                "workflow_name": "Round?", "question": "Is it round?", "answers": ["Yes", "No"],
                "manifest": str(folder / "manifest.csv"), "subject_set": "first", "dry_run": False}
    with connect(world.config):
        set_id, _ = demo_subject_set([{"filename": "a.png"}, {"filename": "a.png"}, {"filename": "b.png"}])
    if name == "zooniverse_remove_duplicates":
        return {"subject_set_id": set_id, "field": "filename", "dry_run": False}
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text("filename,label\na.png,Cosmic Ray\nb.png,Other\n", encoding="utf-8")
    return {"subject_set_id": set_id, "csv_path": str(csv_path), "match": "filename=filename", "dry_run": False}


@pytest.mark.parametrize("name", [
    "zooniverse_connection_check", "zooniverse_exports", "zooniverse_active_learning",
    "zooniverse_project_setup", "zooniverse_remove_duplicates", "zooniverse_update_metadata",
])
def test_a_run_done_twice_gives_the_same_outputs_and_no_second_write(env, load, table, tmp_path, name) -> None:
    world = env
    dag = load(name)
    conf = conf_for(name, world, tmp_path)
    moment = datetime.now(timezone.utc).replace(microsecond=0)
    before = world.admin.last_request_id()
    first = dag.test(logical_date=moment, run_after=moment, run_conf=conf)
    assert first.state == "success"
    first_writes = writes_since(world, before)
    if name != "zooniverse_connection_check":  # every other DAG here has something to create or change
        assert first_writes, [(ti.task_id, ti.state, ti.xcom_pull(task_ids=ti.task_id)) for ti in first.get_task_instances()]
    done = outputs(world.root)
    since = world.admin.last_request_id()

    second = dag.test(logical_date=moment, run_after=moment, run_conf=conf)
    assert second.state == "success" and second.run_id == first.run_id
    assert writes_since(world, since) == []
    assert outputs(world.root) == done
    table("idempotency", f"{name}: the same run twice",
          f"second run wrote nothing to the API (first wrote {len(first_writes)}); outputs byte-identical",
          "nothing duplicated")

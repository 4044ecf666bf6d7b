"""Bad input, each fed to the real DAG or command a user would run it through. A bad row is set aside
(quarantined with its line) and the rest go on; a bad file, name, id, credential or Param stops with a
message that names the problem and the fix, and leaves the last good outputs as they were."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from airflow.exceptions import ParamValidationError

from fault_support import EXPORTS_CONF, SLUG, al_conf, classification_line, task, write_classifications_export
from zooflow.cli import main as zooflow_main
from zooflow.paths import DataRoot

GOOD_ROWS = 40


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def half_written(folder: Path) -> list[str]:
    """Files a crash or a refused input could leave behind: temporaries and partial downloads."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and (".tmp" in p.name or p.suffix == ".part")]


def serve_export(world, path: Path) -> None:
    """Make ``path`` the project's ready classifications export, newer than the last one."""
    world.admin.advance_clock(hours=25)
    world.admin.install_export("project", 1, "classifications", path)


def run_exports(world, load):
    return load("zooniverse_exports").test(run_conf=EXPORTS_CONF | {"export_types": ["classifications"]})


def error_line(capfd, needle: str) -> str:
    """The last error message that mentions ``needle``, without the log line's prefix."""
    output = capfd.readouterr()
    lines = [line for line in (output.out + output.err).splitlines() if needle in line and "Error: " in line]
    assert lines, f"no error message mentions {needle!r}: " + "\n".join(
        line[:300] for line in (output.out + output.err).splitlines() if needle in line or "rror" in line)
    return lines[-1].split("Error: ", 1)[1]


def test_a_truncated_gzip_is_refused_and_the_last_good_export_kept(env, load, table, tmp_path, capfd) -> None:
    world = env
    project = DataRoot(world.root).project_dir(SLUG)
    serve_export(world, write_classifications_export(tmp_path / "good.csv.gz", GOOD_ROWS))
    assert run_exports(world, load).state == "success"
    before = snapshot(project)
    whole = write_classifications_export(tmp_path / "whole.csv.gz", GOOD_ROWS, padding=32).read_bytes()
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    serve_export(world, truncated)
    capfd.readouterr()
    run = run_exports(world, load)
    assert run.state == "failed"
    # The server announces the truncated length, so the transfer completes; the slice, which inflates the
    # file anyway, is the gzip check (CRC and length), and refuses it before anything replaces the last good.
    assert task(run, "classifications.download").state == "success" and task(run, "classifications.slice").state == "failed"
    message = error_line(capfd, "is not a complete gzip file")
    assert "(it ends early), found by the slice: removed, so the next run downloads it again" in message
    after = snapshot(project)
    assert {k: after.get(k) for k in before if "/reports/" not in k} == {k: v for k, v in before.items() if "/reports/" not in k}
    assert half_written(project) == [] and not [k for k in after if k not in before and "/reports/" not in k]
    since = world.admin.last_request_id()
    again = run_exports(world, load)  # nothing stuck: the same export is fetched again, and refused again
    assert again.state == "failed" and [r["status"] for r in world.admin.requests(since_id=since)
                                        if r["method"] == "GET" and r["path"].startswith("/blob/")] == [200]
    assert {k: v for k, v in snapshot(project).items() if "/reports/" not in k} == {
        k: v for k, v in before.items() if "/reports/" not in k}
    table("bad input", "truncated gzip export", message, "nothing (last good export and slices kept)")


@pytest.mark.parametrize("name, bad_line, stage", [
    ("broken CSV quoting", b'999,vol,1,ip,1,Glitch classification,1.1,2026-11-20 12:00:00 UTC,,,"{""a"":1},"[]","{}",1', "slice"),
    ("invalid JSON in annotations", classification_line(998, annotations="[{not json").encode(), "flatten"),
    ("non-UTF-8 bytes", classification_line(997).encode().replace(b"vol", b"vol\xff\xfe", 1), "slice"),
])
def test_a_bad_row_is_quarantined_with_its_line_and_the_rest_kept(env, load, table, tmp_path, name, bad_line, stage) -> None:
    world = env
    serve_export(world, write_classifications_export(tmp_path / "bad.csv.gz", GOOD_ROWS, extra_lines=(bad_line,)))
    run = run_exports(world, load)
    assert run.state == "success"
    report = task(run, f"classifications.{stage}").xcom_pull(task_ids=f"classifications.{stage}")
    if stage == "flatten":  # one report per partition flattened: take the one that set a row aside
        (report,) = [r for r in report["partitions"].values() if r["rows_quarantined"]]
    assert report["rows_quarantined"] == 1
    quarantine = Path(report["quarantine_file"]).read_text(encoding="utf-8", errors="replace")
    assert f"{GOOD_ROWS + 2}" in quarantine  # the physical line of the bad row (the header is line 1)
    slice_report = task(run, "classifications.slice").xcom_pull(task_ids="classifications.slice")
    kept = slice_report["rows_kept"] + sum(slice_report["rows_filtered"].values())
    assert kept == GOOD_ROWS + (stage == "flatten")
    reasons = ", ".join(f"{k}: {v}" for k, v in report["quarantine_reasons"].items())
    table("bad input", name, f"run succeeded; {stage} quarantined 1 row ({reasons}) into "
          f"{Path(report['quarantine_file']).name} with its line number", "nothing (the row is in the quarantine file)")


def test_extra_columns_of_a_newer_export_are_kept(env, load, table, tmp_path) -> None:
    world = env
    header = "classification_id,brand_new_column," + ",".join(
        "classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
        "gold_standard,expert,metadata,annotations,subject_data,subject_ids".split(",")[1:])
    lines = tuple(line.replace(",", ",extra,", 1).encode() for line in (classification_line(n) for n in range(1, 6)))
    path = tmp_path / "extra.csv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write((header + "\n").encode() + b"\n".join(lines) + b"\n")
    serve_export(world, path)
    run = run_exports(world, load)
    assert run.state == "success"
    report = task(run, "classifications.slice").xcom_pull(task_ids="classifications.slice")
    assert report["rows_kept"] + sum(report["rows_filtered"].values()) == 5 and report["rows_quarantined"] == 0
    part = next(Path(p) for p in report["outputs"] if str(p).endswith(".csv"))
    assert "brand_new_column" in part.read_text().splitlines()[0]
    table("bad input", "extra column in the export", "run succeeded; the new column is carried into the slices", "nothing")


def test_a_missing_column_stops_with_its_name(env, load, table, tmp_path, capfd) -> None:
    world = env
    project = DataRoot(world.root).project_dir(SLUG)
    before = snapshot(DataRoot(world.root).slices_dir(SLUG, "classifications"))
    header = "classification_id,user_name,user_id,workflow_id,annotations,subject_ids"
    path = tmp_path / "missing.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(header + "\n1,vol,1,1,[],1\n")
    serve_export(world, path)
    capfd.readouterr()
    run = run_exports(world, load)
    assert run.state == "failed"
    message = error_line(capfd, "created_at")
    assert snapshot(DataRoot(world.root).slices_dir(SLUG, "classifications")) == before
    assert half_written(project) == []
    table("bad input", "export missing a column (created_at)", message, "nothing (slices untouched)")


def test_an_unknown_project_slug_names_the_fix(env, load, table, capfd) -> None:
    capfd.readouterr()
    run = load("zooniverse_exports").test(run_conf=EXPORTS_CONF | {"project": "nobody/no-such-project"})
    assert run.state == "failed"
    message = error_line(capfd, "nobody/no-such-project")
    assert all(ti.try_number <= 1 for ti in run.get_task_instances())  # a wrong name is not retried
    table("bad input", "unknown project slug", message)


def test_an_unknown_workflow_id_names_the_fix(env, load, table, capfd) -> None:
    world = env
    config = json.loads(json.dumps(__import__("yaml").safe_load(Path(world.al_config).read_text())))
    config["workflow_id"] = 987654
    bad = Path(world.al_config).with_name("unknown-workflow.yaml")  # in the config folder, as a form needs
    bad.write_text(__import__("yaml").safe_dump(config))
    before = world.admin.state()
    capfd.readouterr()
    try:
        run = load("zooniverse_active_learning").test(run_conf=al_conf(world) | {"config": bad.name})
    finally:
        bad.unlink()
    assert run.state == "failed"
    message = error_line(capfd, "987654")
    after = world.admin.state()
    assert (after["subjects"], after["subject_sets"]) == (before["subjects"], before["subject_sets"])
    table("bad input", "unknown workflow id in the AL config", message)


def test_wrong_credentials_are_not_retried(env, load, table, monkeypatch, capfd) -> None:
    from zooflow.airflow_env import connection_env
    from zooflow.panoptes import PanoptesConfig

    world = env
    wrong = PanoptesConfig(endpoint=world.config.endpoint, username=world.config.username, password="not-the-password")
    for key, value in connection_env(wrong).items():
        monkeypatch.setenv(key, value)
    since = world.admin.last_request_id()
    capfd.readouterr()
    run = load("zooniverse_connection_check").test(run_conf={"project": SLUG})
    assert run.state == "failed"
    message = error_line(capfd, "password")
    logins = [r for r in world.admin.requests(since_id=since) if r["path"].startswith("/users/sign_in") and r["method"] == "POST"]
    assert len(logins) == 1  # one failed login, not three: repeated failures can lock an account
    table("bad input", "wrong password in the connection", message)


@pytest.mark.parametrize("name, rows, needle", [
    ("manifest naming a missing file", "image,#id\nnot-there.png,1\n", "not-there.png"),
    ("manifest with a ../ path", "image,#id\n../outside.png,1\n", "../outside.png"),
])
def test_a_bad_manifest_is_refused_before_anything_is_created(env, table, tmp_path, capsys, monkeypatch,
                                                              name, rows, needle) -> None:
    world = env
    monkeypatch.setenv("PANOPTES_ENDPOINT", world.config.endpoint)
    monkeypatch.setenv("PANOPTES_USERNAME", world.config.username)
    monkeypatch.setenv("PANOPTES_PASSWORD", world.config.password)
    (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    folder = tmp_path / "manifest"
    folder.mkdir()
    manifest = folder / "manifest.csv"
    manifest.write_text(rows)
    before = world.admin.state()
    code = zooflow_main(["project", "init", "--name", "Fault Project", "--description", "d", "--workflow", "W",
                         "--question", "Q?", "--answer", "a", "--answer", "b", "--manifest", str(manifest),
                         "--subject-set", "first"])
    assert code != 0
    err = capsys.readouterr().err
    message = next(line for line in err.splitlines() if needle in line)
    after = world.admin.state()
    assert (after["projects"], after["subjects"], after["subject_sets"]) == (
        before["projects"], before["subjects"], before["subject_sets"])
    table("bad input", name, message[message.index("manifest"):] if "manifest" in message else message,
          "nothing (no project, set or subject created)")


@pytest.mark.parametrize("name, conf, needle", [
    ("poll_seconds below its minimum", {"poll_seconds": 0}, "poll_seconds"),
    ("k above its maximum", {"k": 5000}, "k"),
])
def test_params_out_of_range_are_refused_before_the_run(env, load, table, name, conf, needle) -> None:
    dag = load("zooniverse_active_learning" if "k" in conf else "zooniverse_exports")
    with pytest.raises(ParamValidationError) as refused:
        dag.test(run_conf={"project": SLUG} | conf)
    message = str(refused.value)
    assert needle in message
    table("bad input", f"Param {name}", message.splitlines()[0][:200], "nothing (no run was created)")

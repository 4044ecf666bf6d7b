"""plan_metadata_update / apply_metadata_update and `zooflow subjects update-metadata` against the sandbox."""

from __future__ import annotations

import json

import pytest
from panoptes_client import Subject

from zooflow.cli import main
from zooflow.errors import ConfigurationError
from zooflow.subjects.metadata import apply_metadata_update, plan_metadata_update

from test_dedupe import all_set_ids, client, make_set, snapshot  # noqa: F401 - the fixture is reused


def write_csv(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def metadata_of(set_id: int) -> dict[int, dict]:
    return {int(s.id): dict(s.metadata) for s in Subject.where(subject_set_id=set_id, page_size=100)}


@pytest.fixture()
def subjects(client):
    return make_set([
        {"filename": "a.png", "#truth": "Other", "size": 5, "note": "old"},
        {"filename": "b.png", "#truth": "Cosmic Ray"},
        {"filename": "c.png", "#truth": "Other"},  # no row matches it
        {"other": "no filename"},
    ])


def test_merge_dry_run_changes_nothing_then_apply_merges_and_a_rerun_changes_nothing(client, demo_sandbox, subjects, tmp_path) -> None:
    set_id, ids = subjects
    csv_path = write_csv(tmp_path / "m.csv", "file,size,note,é\na.png,5,new,ü\nb.png,,x,y\nzzz.png,1,2,3\n")
    admin = demo_sandbox.admin
    set_ids = all_set_ids()
    before = snapshot(admin, set_ids)
    plan = plan_metadata_update(set_id, csv_path, "file=filename")
    assert snapshot(admin, set_ids) == before
    report = plan.report()
    assert report["to_change"] == 2 and report["updated"] == 0
    a = report["changes"][str(ids[0])]
    assert a["added"] == {"é": "ü"}
    assert a["changed"] == {"note": ["old", "new"]}  # size 5 vs "5" is the same text: not a change
    assert a["removed"] == {}
    b = report["changes"][str(ids[1])]
    assert b["added"] == {"size": "", "note": "x", "é": "y"} and b["changed"] == {} and b["removed"] == {}
    assert report["unmatched_rows"] == [{"line": 4, "file": "zzz.png"}]
    assert report["unmatched_subjects"] == sorted([ids[2], ids[3]])

    start = admin.last_request_id()
    applied = apply_metadata_update(plan)
    assert applied["updated"] == 2
    puts = [r for r in admin.requests(start) if r["method"] == "PUT"]
    assert len(puts) == 2
    after = metadata_of(set_id)
    assert after[ids[0]] == {"filename": "a.png", "#truth": "Other", "size": 5, "note": "new", "é": "ü"}
    assert after[ids[1]] == {"filename": "b.png", "#truth": "Cosmic Ray", "size": "", "note": "x", "é": "y"}
    assert after[ids[2]] == {"filename": "c.png", "#truth": "Other"}

    again = plan_metadata_update(set_id, csv_path, "file=filename")
    assert again.changes == [] and len(again.unchanged) == 2
    start = admin.last_request_id()
    assert apply_metadata_update(again)["updated"] == 0
    assert [r for r in admin.requests(start) if r["method"] == "PUT"] == []


def test_replace_keeps_only_the_row_and_the_match_key(client, subjects, tmp_path) -> None:
    set_id, ids = subjects
    csv_path = write_csv(tmp_path / "r.csv", "filename,label\na.png,Point Source\n")
    plan = plan_metadata_update(set_id, csv_path, "filename=filename", mode="replace")
    diff = plan.report()["changes"][str(ids[0])]
    assert diff["removed"] == {"#truth": "Other", "size": 5, "note": "old"}
    assert diff["added"] == {"label": "Point Source"}
    apply_metadata_update(plan)
    assert metadata_of(set_id)[ids[0]] == {"filename": "a.png", "label": "Point Source"}
    assert plan_metadata_update(set_id, csv_path, "filename=filename", mode="replace").changes == []


def test_a_412_is_reloaded_and_retried_once(client, demo_sandbox, subjects, tmp_path) -> None:
    set_id, ids = subjects
    csv_path = write_csv(tmp_path / "p.csv", "filename,note\na.png,fresh\n")
    plan = plan_metadata_update(set_id, csv_path, "filename=filename")
    demo_sandbox.admin.configure(fail_next=[{"method": "PUT", "path_regex": f"^/api/subjects/{ids[0]}$", "status": 412, "count": 1}])
    try:
        report = apply_metadata_update(plan)
    finally:
        demo_sandbox.admin.configure(fail_next=[])
    assert report["updated"] == 1 and report["retried_after_412"] == 1
    assert metadata_of(set_id)[ids[0]]["note"] == "fresh"


@pytest.mark.parametrize("csv_text, match, mode, set_id, message", [
    (None, "filename=filename", "merge", None, "does not exist or is not a file"),
    ("name,x\na.png,1\n", "filename=filename", "merge", None, "has no column 'filename'"),
    ("filename,x\na.png,1\n", "filename", "merge", None, "not of the form COLUMN=KEY"),
    ("filename,x\na.png,1\n", "=filename", "merge", None, "not of the form COLUMN=KEY"),
    ("filename,x\na.png,1\n", "filename=filename", "overwrite", None, "mode must be one of merge, replace"),
    ("filename,x\na.png,1\n", "filename=filename", "merge", 987654, "subject set 987654 does not exist"),
    ("filename,x\na.png,1\nb.png,2\na.png,3\n", "filename=filename", "merge", None, r"'a.png' on lines 2, 4"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(client, demo_sandbox, subjects, tmp_path,
                                                        csv_text, match, mode, set_id, message) -> None:
    csv_path = tmp_path / "bad.csv"
    if csv_text is not None:
        write_csv(csv_path, csv_text)
    set_ids = all_set_ids()
    before = snapshot(demo_sandbox.admin, set_ids)
    with pytest.raises(ConfigurationError, match=message):
        plan_metadata_update(set_id or subjects[0], csv_path, match, mode=mode)
    assert snapshot(demo_sandbox.admin, set_ids) == before


def test_cli_dry_run_then_apply(client, demo_config, demo_sandbox, subjects, tmp_path, monkeypatch, capsys) -> None:
    set_id, ids = subjects
    csv_path = write_csv(tmp_path / "c.csv", "filename,note\nc.png,checked\n")
    for name, value in (("PANOPTES_ENDPOINT", demo_config.endpoint), ("PANOPTES_USERNAME", demo_config.username),
                        ("PANOPTES_PASSWORD", demo_config.password)):
        monkeypatch.setenv(name, value)
    args = ["subjects", "update-metadata", "--subject-set", str(set_id), "--csv", str(csv_path), "--match", "filename=filename"]
    before = metadata_of(set_id)
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"][str(ids[2])]["added"] == {"note": "checked"}
    assert metadata_of(set_id) == before
    assert main([*args, "--apply"]) == 0
    assert "1 updated" in capsys.readouterr().out
    assert metadata_of(set_id)[ids[2]]["note"] == "checked"
    assert main([*args[:-1], "filename"]) == 2
    assert "COLUMN=KEY" in capsys.readouterr().err

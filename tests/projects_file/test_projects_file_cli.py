"""``zooflow projects check``: the DAGs a good file makes (exit 0), every broken entry's key and fix (exit 1)."""

from __future__ import annotations

import json

import pytest

from projects_support import EXPECTED_DAG_IDS, three_projects, with_entry
from zooflow.cli import main


def test_a_good_file_lists_its_dags_and_exits_0(tmp_path, capsys) -> None:
    path = three_projects(tmp_path)

    assert main(["projects", "check", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{path}: 3 valid project entries making 6 DAGs\n")
    assert all(f"  {dag_id}\n" in out for dag_id in EXPECTED_DAG_IDS)
    assert "exports classifications, subjects, workflows on schedule 0 2 * * * (UTC)" in out
    assert 'slice {"workflow_ids": [28090], "since": "2025-01-01T00:00:00+00:00"}' in out
    assert (f"active learning, workflow 28090 ({tmp_path / 'al' / 'glitches.yaml'}): on each new classifications "
            "export, and on cadence */15 * * * *") in out
    assert "projects[1] lab/café-ørsted (connection zooniverse_lab)" in out
    assert "Errors" not in out


def test_a_broken_file_names_entry_key_and_fix_and_exits_1(tmp_path, capsys) -> None:
    path = with_entry(tmp_path, 1, {"schedule": "0 25 * * *", "exports": ["classification"]})

    assert main(["projects", "check", str(path)]) == 1

    out = capsys.readouterr().out
    assert out.startswith(f"{path}: 2 valid project entries making 5 DAGs; 1 broken entry\n")
    assert f"  {path}: projects[1] (lab/café-ørsted): schedule: '0 25 * * *': the hour field '25' is not valid (0-23); use a cron expression" in out
    assert (f"  {path}: projects[1] (lab/café-ørsted): exports[0]: 'classification' is not one of classifications, "
            "subjects, workflows (did you mean 'classifications'?); use a list of one or more export types") in out
    assert "    (DAGs this entry would make: zooniverse_exports__lab__cafe-orsted)" in out
    assert "  zooniverse_exports__project_12345\n" in out  # the other entries still listed


def test_json_output(tmp_path, capsys) -> None:
    path = with_entry(tmp_path, 2, {"schedule": "@dialy"})

    assert main(["projects", "check", str(path), "--json"]) == 1

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["file"] == str(path)
    assert [entry["dag_id"] for entry in report["entries"]] == [EXPECTED_DAG_IDS[0], EXPECTED_DAG_IDS[3]]
    assert report["entries"][0]["active_learning"][1]["workflow_id"] == 28091
    (error,) = report["errors"]
    assert (error["index"], error["project"], error["dag_ids"]) == (2, "12345", list(EXPECTED_DAG_IDS[4:]))
    assert error["problems"][0]["key"] == "projects[2].schedule" and "did you mean '@daily'?" in error["problems"][0]["message"]


def test_without_file_it_checks_the_one_the_dags_would_read(tmp_path, monkeypatch, capsys) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    three_projects(dags)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZOOFLOW_PROJECTS", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    assert main(["projects", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"{dags / 'projects.yaml'}: 3 valid")

    monkeypatch.setenv("ZOOFLOW_PROJECTS", "nowhere.yaml")
    assert main(["projects", "check"]) == 1
    assert f"projects file {dags / 'nowhere.yaml'} does not exist" in capsys.readouterr().out


def test_without_any_projects_file_it_checks_the_shorthand_or_says_what_to_do(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ZOOFLOW_PROJECTS", "AIRFLOW__CORE__DAGS_FOLDER", "ZOOFLOW_PROJECT", "ZOOFLOW_AL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["projects", "check"]) == 2
    assert "no projects file to check" in capsys.readouterr().err

    monkeypatch.setenv("ZOOFLOW_PROJECT", "zooflow/glitch-demo")
    assert main(["projects", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no projects file: the ZOOFLOW_PROJECT shorthand: 1 valid project entry making 1 DAG\n")
    assert "  zooniverse_exports\n" in out


@pytest.mark.parametrize("local", [True, False])
def test_projects_yaml_in_this_folder_is_the_last_default(local, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ZOOFLOW_PROJECTS", "AIRFLOW__CORE__DAGS_FOLDER", "ZOOFLOW_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    if local:
        three_projects(tmp_path)
    assert main(["projects", "check"]) == (0 if local else 2)

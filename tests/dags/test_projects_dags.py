"""A projects file in the DAG bag: one exports DAG per project on its own schedule and Params, one AL DAG
per AL workflow on its project's exports and cadence; a broken entry stands as a DAG saying what is
wrong while the other entries' DAGs load."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import AssetOrTimeSchedule

from support.projects_files import PROJECTS, write_projects

DAGS = Path(__file__).resolve().parents[2] / "dags"


def bag(monkeypatch, path: Path) -> DagBag:
    monkeypatch.setenv("ZOOFLOW_PROJECTS", str(path))
    monkeypatch.delenv("ZOOFLOW_AL_CONFIG", raising=False)
    return DagBag(dag_folder=str(DAGS))


def test_three_projects_make_their_dags_with_their_schedules_and_params(tmp_path, monkeypatch) -> None:
    dags = bag(monkeypatch, write_projects(tmp_path, PROJECTS))
    assert dags.import_errors == {}
    made = {dag_id for dag_id in dags.dags if "__" in dag_id}
    assert made == {
        "zooniverse_exports__lab__glitches", "zooniverse_exports__lab__penguins", "zooniverse_exports__lab__craters",
        "zooniverse_active_learning__lab__glitches__workflow_101", "zooniverse_active_learning__lab__glitches__workflow_102",
        "zooniverse_active_learning__lab__craters__workflow_301",
    }
    glitches, penguins = dags.dags["zooniverse_exports__lab__glitches"], dags.dags["zooniverse_exports__lab__penguins"]
    assert glitches.timetable.expression == "0 2 * * *" and penguins.timetable.expression == "0 0 * * *"
    assert dags.dags["zooniverse_exports__lab__craters"].timetable.expression == "0 0 * * 0"  # @weekly
    assert glitches.params["project"] == "lab/glitches" and glitches.params["workflow_ids"] == [28090]
    assert glitches.params["gold"] == "include" and "lab/glitches" in glitches.tags
    assert penguins.params["conn_id"] == "zooniverse_lab" and penguins.params["export_types"] == ["classifications"]
    shapes = dags.dags["zooniverse_active_learning__lab__glitches__workflow_101"]
    assert isinstance(shapes.timetable, AssetOrTimeSchedule) and shapes.timetable.timetable.expression == "*/15 * * * *"
    sources = dags.dags["zooniverse_active_learning__lab__glitches__workflow_102"]
    assert [a.uri for a in sources.timetable.asset_condition.objects] == ["zooniverse://lab/glitches/classifications"]
    assert "config" not in sources.params  # the projects file fixes it
    assert sources.get_task("plan").config_path == str(tmp_path / "al" / "glitch-sources.yaml")
    for generic in ("zooniverse_exports", "zooniverse_active_learning"):  # ad hoc only now
        assert not dags.dags[generic].timetable.can_be_scheduled, generic


def test_a_broken_entry_stands_as_a_dag_that_says_what_is_wrong(tmp_path, monkeypatch) -> None:
    broken = [PROJECTS[0], PROJECTS[1] | {"schedule": "every morning"}, PROJECTS[2]]
    dags = bag(monkeypatch, write_projects(tmp_path, broken))
    assert dags.import_errors == {}
    assert "zooniverse_exports__lab__glitches" in dags.dags and "zooniverse_exports__lab__craters" in dags.dags
    standing = dags.dags["zooniverse_exports__lab__penguins"]
    assert "config-error" in standing.tags and not standing.timetable.can_be_scheduled
    assert "projects[1]" in standing.description and "schedule" in standing.description
    assert str(tmp_path / "projects.yaml") in standing.doc_md
    (task,) = standing.tasks
    assert task.task_id == "fix_the_projects_file" and "every morning" in task.message


def test_errors_no_entry_can_show_stand_in_a_dag_of_their_own(tmp_path, monkeypatch) -> None:
    twice = [PROJECTS[0], PROJECTS[1], PROJECTS[1] | {"schedule": "@daily"}]
    dags = bag(monkeypatch, write_projects(tmp_path, twice))
    assert dags.import_errors == {} and "zooniverse_exports__lab__penguins" in dags.dags
    standing = dags.dags["zooniverse_projects_file_errors"]
    assert "projects[2]" in standing.doc_md and "config-error" in standing.tags

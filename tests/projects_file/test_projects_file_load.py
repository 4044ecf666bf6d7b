"""Reading a projects file: the DAGs each entry makes, and one error per broken entry while the others load."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from projects_support import EXPECTED_DAG_IDS, three_projects, with_entry
from zooflow.projects_file import (
    ALEntry, EntryError, ProjectEntry, deployment_projects, exports_dag_id, load_projects, projects_path,
    schedule_problem, shorthand_projects,
)

DAG_ID_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def test_three_projects_make_their_dags_with_their_schedules_and_al_workflows(tmp_path) -> None:
    checked = load_projects(three_projects(tmp_path))

    assert checked.ok and checked.errors == ()
    assert checked.dag_ids == EXPECTED_DAG_IDS
    glitch, cafe, numbered = checked.entries
    assert isinstance(glitch, ProjectEntry)
    assert (glitch.index, glitch.project, glitch.conn_id, glitch.schedule) == (0, "zooflow/glitch-demo",
                                                                              "zooniverse_default", "0 2 * * *")
    assert glitch.exports == ("classifications", "subjects", "workflows")
    assert glitch.slice.workflow_ids == (28090,) and glitch.slice.gold == "exclude"
    assert glitch.slice.since == datetime(2025, 1, 1, tzinfo=timezone.utc)  # YAML's date, read as UTC midnight
    assert glitch.active_learning == (
        ALEntry(0, tmp_path / "al" / "glitches.yaml", 28090, "*/15 * * * *",
                "zooniverse_active_learning__zooflow__glitch-demo__workflow_28090"),
        ALEntry(1, tmp_path / "al" / "second-pass.yaml", 28091, None,
                "zooniverse_active_learning__zooflow__glitch-demo__workflow_28091"),
    )
    # a YAML anchor kept under an x- key; the non-ASCII slug gives ASCII DAG-id characters
    assert (cafe.project, cafe.conn_id, cafe.schedule, cafe.exports) == ("lab/café-ørsted", "zooniverse_lab",
                                                                         "30 1 * * *", ("classifications",))
    assert cafe.dag_id == "zooniverse_exports__lab__cafe-orsted" and cafe.active_learning == ()
    assert numbered.project == "12345" and numbered.project_id == 12345 and glitch.project_id is None
    assert numbered.schedule == "@weekly"
    assert [(al.workflow_id, al.cadence) for al in numbered.active_learning] == [(30001, "@hourly")]
    assert all(set(dag_id) <= DAG_ID_CHARACTERS for dag_id in checked.dag_ids)


def test_an_entry_with_only_a_project_gets_the_defaults(tmp_path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text("projects:\n  - project: zooflow/glitch-demo\n")

    (entry,) = load_projects(path).entries

    assert (entry.conn_id, entry.schedule, entry.exports) == ("zooniverse_default", "0 0 * * *",
                                                              ("classifications", "subjects", "workflows"))
    assert entry.slice.workflow_ids == () and entry.active_learning == ()
    assert entry.dag_ids == ("zooniverse_exports__zooflow__glitch-demo",)


@pytest.mark.parametrize(("project", "dag_id"), [
    ("zooflow/glitch-demo", "zooniverse_exports__zooflow__glitch-demo"),
    ("12345", "zooniverse_exports__project_12345"),
    (12345, "zooniverse_exports__project_12345"),
    ("Straße/Æon", "zooniverse_exports__Strasse__aeon"),
    ("me/日本語", "zooniverse_exports__me__u65e5u672cu8a9e"),  # no ASCII spelling: code points keep ids apart
    ("owner/a+b", "zooniverse_exports__owner__a_b"),
])
def test_dag_ids_are_readable_and_made_of_airflow_dag_id_characters(project, dag_id) -> None:
    assert exports_dag_id(project) == dag_id
    assert set(dag_id) <= DAG_ID_CHARACTERS


# Each broken entry (projects[1] here): the key at fault, words of its message, words of its fix.
BROKEN = {
    "unknown key": ({"scheduel": "@daily"}, (), "scheduel", "unknown key 'scheduel'", "did you mean 'schedule'?"),
    "bad cron": ({"schedule": "0 25 * * *"}, (), "schedule", "the hour field '25' is not valid (0-23)",
                 "use a cron expression of five fields"),
    "cron with four fields": ({"schedule": "0 2 * *"}, (), "schedule", "'0 2 * *' is not a cron expression or preset",
                              "use a cron expression of five fields"),
    "misspelt preset": ({"schedule": "@dialy"}, (), "schedule", "did you mean '@daily'?", "or a preset: @hourly"),
    "a schedule that is a number": ({"schedule": 5}, (), "schedule", "5 is not a cron expression or preset",
                                    "use a cron expression"),
    "bad export type": ({"exports": ["classification"]}, (), "exports[0]",
                        "'classification' is not one of classifications, subjects, workflows (did you mean 'classifications'?)",
                        "use a list of one or more export types"),
    "exports not a list": ({"exports": "subjects"}, (), "exports", "'subjects' is text, not a list",
                           "use a list of one or more export types"),
    "no exports": ({"exports": []}, (), "exports", "is empty", "use a list of one or more export types"),
    "an export twice": ({"exports": ["subjects", "subjects"]}, (), "exports", "lists 'subjects' more than once",
                        "each once"),
    "missing AL config": ({"active_learning": [{"config": "al/nowhere.yaml"}]}, (), "active_learning[0].config",
                          "al/nowhere.yaml does not exist", "create the file, or correct the path"),
    "AL config without workflow_id": ({"active_learning": [{"config": "al/no-workflow.yaml"}]}, (),
                                      "active_learning[0].config", "no-workflow.yaml has no workflow_id",
                                      "set workflow_id in no-workflow.yaml"),
    "bad AL cadence": ({"active_learning": [{"config": "al/bad-cadence.yaml"}]}, (), "active_learning[0].config",
                       "cadence in", "or remove cadence"),
    "AL entry without config": ({"active_learning": [{"file": "al/glitches.yaml"}]}, (), "active_learning[0].config",
                                "config is missing", "add config: the path of an active-learning config YAML file"),
    "bad slice key": ({"slice": {"workflow_id": [1]}}, (), "slice.workflow_id", "unknown key 'workflow_id'",
                      "did you mean 'workflow_ids'?"),
    "bad slice value": ({"slice": {"gold": "maybe"}}, (), "slice.gold", "'maybe' is not one of exclude, only, include",
                        "use exclude, only or include"),
    "bad slice version": ({"slice": {"min_workflow_version": "abc"}}, (), "slice.min_workflow_version",
                          "workflow version 'abc' is not of the form MAJOR.MINOR", "in quotes, such as \"13.19\""),
    "empty slice window": ({"slice": {"since": "2025-02-01", "until": "2025-01-01"}}, (), "slice",
                           "the created_at window is empty", "use a slice spec"),
    "bad conn id": ({"conn_id": "my conn"}, (), "conn_id", "'my conn' is not an Airflow connection id",
                    "use the id of an Airflow connection"),
    "a display name for a slug": ({"project": "Café Ørsted"}, (), "project",
                                  "'Café Ørsted' is not a project slug or id", "(not its display name)"),
    "no project": ({"schedule": "@daily"}, ("project",), "project", "project is missing",
                   "add project: the project's slug"),
    "duplicate project": ({"project": "Zooflow/Glitch-Demo"}, (), "project",
                          "would make the DAG zooniverse_exports__Zooflow__Glitch-Demo, which projects[0].project "
                          "(zooflow/glitch-demo) already makes", "merge projects[0] and projects[1] into one entry"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_entry_names_entry_key_and_fix_and_the_others_still_load(case, tmp_path) -> None:
    changes, remove, key, message, fix = BROKEN[case]
    (tmp_path / "al").mkdir()
    (tmp_path / "al" / "no-workflow.yaml").write_text("pool: pool.csv\n")
    (tmp_path / "al" / "bad-cadence.yaml").write_text("pool: pool.csv\nworkflow_id: 7\ncadence: every hour\n")
    path = with_entry(tmp_path, 1, changes, remove=remove)

    checked = load_projects(path)

    assert [entry.index for entry in checked.entries] == [0, 2]
    assert checked.entries[0].dag_ids == EXPECTED_DAG_IDS[:3] and checked.entries[1].dag_ids == EXPECTED_DAG_IDS[4:]
    (error,) = checked.errors
    assert isinstance(error, EntryError) and error.index == 1 and error.file == str(path)
    assert error.key == f"projects[1].{key}"
    assert message in error.message and fix in error.fix
    line = str(error)
    assert line.startswith(f"{path}: projects[1]") and f": {key}: " in line
    assert message in line and fix in line and "\n" not in line


def test_a_broken_entry_keeps_its_would_be_dag_ids_when_its_project_is_known(tmp_path) -> None:
    checked = load_projects(with_entry(tmp_path, 0, {"schedule": "0 25 * * *"}))

    (error,) = checked.errors
    assert error.project == "zooflow/glitch-demo"
    assert error.dag_ids == EXPECTED_DAG_IDS[:3]
    assert checked.dag_ids == EXPECTED_DAG_IDS[3:]


def test_a_duplicate_takes_no_dag_id_from_the_entry_before_it(tmp_path) -> None:
    checked = load_projects(with_entry(tmp_path, 2, {"project": "zooflow/glitch-demo"}, remove=("active_learning",)))

    (error,) = checked.errors
    assert error.index == 2 and error.dag_ids == ()
    assert "projects[0]" in error.message and "projects[2]" in error.fix
    assert checked.dag_ids == EXPECTED_DAG_IDS[:4]


def test_the_same_al_workflow_twice_is_an_error_naming_both_places(tmp_path) -> None:
    twice = [{"config": "al/glitches.yaml"}, {"config": "al/glitches.yaml"}]
    checked = load_projects(with_entry(tmp_path, 0, {"active_learning": twice}))

    (error,) = checked.errors
    assert error.key == "projects[0].active_learning[1].config"
    assert "which projects[0].active_learning[0].config" in error.message and "workflow 28090" in error.message
    assert "list each active-learning workflow once" in error.fix
    assert error.dag_ids == EXPECTED_DAG_IDS[:2]


def test_every_problem_of_an_entry_is_listed_in_one_error(tmp_path) -> None:
    checked = load_projects(with_entry(tmp_path, 1, {"schedule": "0 25 * * *", "exports": ["x"],
                                                     "slice": {"gold": "maybe", "expert": "maybe"}}))

    (error,) = checked.errors
    assert [problem.key for problem in error.problems] == [
        "projects[1].schedule", "projects[1].exports[0]", "projects[1].slice.expert", "projects[1].slice.gold"]
    assert len(error.lines()) == 4 and all(line.startswith(f"{error.file}: projects[1] (lab/café-ørsted): ")
                                           for line in error.lines())
    assert str(error).endswith("(and 3 more in this entry: exports[0], slice.expert, slice.gold)")


def test_an_entry_that_is_not_a_mapping_is_one_error(tmp_path) -> None:
    checked = load_projects(with_entry(tmp_path, 1, replace_with="lab/café-ørsted"))

    (error,) = checked.errors
    assert (error.index, error.project, error.key, error.dag_ids) == (1, None, "projects[1]", ())
    assert "'lab/café-ørsted' is text, not a mapping" in str(error) and "use a project entry" in str(error)
    assert len(checked.entries) == 2


@pytest.mark.parametrize(("content", "message", "fix"), [
    (b"projects: zooflow/glitch-demo\n", "'zooflow/glitch-demo' is text, not a list", "use a list of project entries"),
    (b"projects:\n", "projects: is empty, not a list", "use a list of project entries"),
    (b"project: zooflow/glitch-demo\n", "unknown key 'project'", "did you mean 'projects'?"),
    (b"- project: zooflow/glitch-demo\n", "must hold a mapping of settings", "make it a mapping with one key, projects"),
    (b"projects: [a\n", "is not valid YAML", "make it a mapping with one key, projects"),
    (b"", "projects is missing", "add projects: a list of project entries"),
])
def test_a_file_that_is_not_a_projects_file_is_one_file_error(content, message, fix, tmp_path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_bytes(content)

    checked = load_projects(path)

    assert checked.entries == () and not checked.ok
    (error,) = checked.errors
    assert error.index is None and checked.file_errors == (error,)
    assert message in "\n".join(error.lines()) and fix in "\n".join(error.lines())


def test_a_missing_file_says_how_to_name_one(tmp_path) -> None:
    (error,) = load_projects(tmp_path / "projects.yaml").errors

    assert "does not exist" in error.message and "ZOOFLOW_PROJECTS" in error.fix


def test_unknown_top_level_keys_are_a_file_error_but_the_entries_still_load(tmp_path) -> None:
    path = three_projects(tmp_path)
    path.write_text(path.read_text() + "defaults: {schedule: '@daily'}\n")

    checked = load_projects(path)

    assert checked.dag_ids == EXPECTED_DAG_IDS
    (error,) = checked.errors
    assert error.index is None and error.key == "defaults" and "x-… keys" in error.fix


@pytest.mark.parametrize(("text", "verdict"), [
    ("0 2 * * *", None), ("*/15 * * * *", None), ("0 6 * * mon-fri", None), ("@daily", None), ("@quarterly", None),
    ("0 25 * * *", "the hour field '25' is not valid"), ("0 0 * * 8", "the day of week field '8'"),
    ("*/0 * * * *", "the minute field '*/0'"), ("0 0 * * * *", "has 6 field(s)"), ("@often", "is not a preset"),
])
def test_schedules_are_cron_expressions_or_presets(text, verdict) -> None:
    problem = schedule_problem(text)
    assert problem is None if verdict is None else verdict in problem


def test_the_projects_file_is_the_variable_else_the_one_beside_the_dags(tmp_path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    assert projects_path(dags, {}) is None
    assert projects_path(None, {}) is None
    (dags / "projects.yaml").write_text("projects: []\n")
    assert projects_path(dags, {}) == dags / "projects.yaml"
    # the variable wins; relative to the DAGs folder (as for the config folder), else as given
    assert projects_path(dags, {"ZOOFLOW_PROJECTS": "team/projects.yaml"}) == dags / "team" / "projects.yaml"
    assert projects_path(None, {"ZOOFLOW_PROJECTS": "team/projects.yaml"}) == Path("team/projects.yaml")
    assert projects_path(dags, {"ZOOFLOW_PROJECTS": str(tmp_path / "p.yaml")}) == tmp_path / "p.yaml"


def test_the_shorthand_is_one_entry_under_the_generic_dag_ids(tmp_path) -> None:
    (tmp_path / "al").mkdir()
    (tmp_path / "al" / "glitches.yaml").write_text("pool: p.csv\nworkflow_id: 28090\n")

    assert shorthand_projects({}) is None
    assert shorthand_projects({"ZOOFLOW_AL_CONFIG": str(tmp_path / "al" / "glitches.yaml")}) is None
    alone = shorthand_projects({"ZOOFLOW_PROJECT": "zooflow/glitch-demo"})
    assert alone.path is None and alone.ok and alone.dag_ids == ("zooniverse_exports",)
    (entry,) = alone.entries
    assert (entry.project, entry.schedule, entry.conn_id) == ("zooflow/glitch-demo", "0 0 * * *", "zooniverse_default")

    with_al = shorthand_projects({"ZOOFLOW_PROJECT": "zooflow/glitch-demo",
                                  "ZOOFLOW_AL_CONFIG": str(tmp_path / "al" / "glitches.yaml")})
    assert with_al.dag_ids == ("zooniverse_exports", "zooniverse_active_learning")
    assert with_al.entries[0].active_learning[0].workflow_id == 28090


def test_a_broken_shorthand_names_its_variables(tmp_path) -> None:
    broken = shorthand_projects({"ZOOFLOW_PROJECT": "glitch-demo", "ZOOFLOW_AL_CONFIG": str(tmp_path / "none.yaml")})

    (error,) = broken.errors
    assert [problem.key for problem in error.problems] == ["ZOOFLOW_PROJECT", "ZOOFLOW_AL_CONFIG"]
    assert error.lines()[0] == ("environment (glitch-demo): ZOOFLOW_PROJECT: 'glitch-demo' is not a project slug or id; "
                                "set ZOOFLOW_PROJECT to the project's slug, owner/name as in its URL (not its display "
                                "name), or its numeric id")
    assert "set ZOOFLOW_AL_CONFIG to the path of an active-learning config" in error.lines()[1]


def test_a_deployment_uses_its_projects_file_else_the_shorthand(tmp_path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    shorthand = {"ZOOFLOW_PROJECT": "zooflow/glitch-demo"}
    assert deployment_projects(dags, {}) is None
    assert deployment_projects(dags, shorthand).dag_ids == ("zooniverse_exports",)
    three_projects(dags)
    assert deployment_projects(dags, shorthand).dag_ids == EXPECTED_DAG_IDS

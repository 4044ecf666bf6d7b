"""zooflow.config_dir: which folder the forms' files come from, and which names lead out of it."""

from __future__ import annotations

import pytest

from zooflow.config_dir import AL_CONFIG, SLICE_SPEC, config_dir, config_names, resolve_config
from zooflow.errors import ConfigurationError


@pytest.fixture()
def dags(tmp_path, monkeypatch):
    for name in ("ZOOFLOW_CONFIG_DIR", "ZOOFLOW_PROJECTS", "ZOOFLOW_AL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "dags" / "config").mkdir(parents=True)
    return tmp_path / "dags"


def test_the_folder_is_the_variable_else_the_projects_files_else_config_in_the_dags(dags, tmp_path, monkeypatch) -> None:
    assert config_dir(dags) == dags / "config"
    assert config_dir(None) is None
    monkeypatch.setenv("ZOOFLOW_PROJECTS", "teams/projects.yaml")
    assert config_dir(dags) == dags / "teams"
    monkeypatch.setenv("ZOOFLOW_PROJECTS", str(tmp_path / "etc" / "projects.yaml"))
    assert config_dir(dags) == tmp_path / "etc"
    monkeypatch.setenv("ZOOFLOW_CONFIG_DIR", str(tmp_path / "shared"))
    assert config_dir(dags) == config_dir(None) == tmp_path / "shared"


@pytest.mark.parametrize("name", ["/etc/shadow", "../secret.yaml", "sub/../x.yaml", ".hidden.yaml", "airflow.cfg",
                                  "a\0.yaml", "..", "sub\\x.yaml"])
def test_names_that_are_not_plain_yaml_files_are_refused(dags, name) -> None:
    with pytest.raises(ConfigurationError, match=r"refused .* YAML file in the config folder .*copy it into that folder"):
        resolve_config(name, SLICE_SPEC, dags_folder=dags)


def test_a_symlink_out_of_the_folder_is_refused_and_not_listed(dags, tmp_path) -> None:
    (tmp_path / "secret.yaml").write_text("password: hunter2\n")
    (dags / "config" / "inside.yaml").write_text("gold: only\n")
    (dags / "config" / "escape.yaml").symlink_to(tmp_path / "secret.yaml")
    assert config_names(dags / "config") == ["inside.yaml"]
    assert resolve_config("inside.yaml", SLICE_SPEC, dags_folder=dags) == dags / "config" / "inside.yaml"
    with pytest.raises(ConfigurationError, match="leads out of the config folder") as error:
        resolve_config("escape.yaml", SLICE_SPEC, dags_folder=dags)
    assert "hunter2" not in str(error.value)


def test_a_missing_name_lists_what_the_folder_holds(dags) -> None:
    (dags / "config" / "daily.yaml").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"no slice spec 'weekly.yaml' in the config folder .* holds daily.yaml"):
        resolve_config("weekly.yaml", SLICE_SPEC, dags_folder=dags)


def test_empty_means_the_deployments_default_or_a_clear_error(dags, tmp_path, monkeypatch) -> None:
    assert resolve_config("", SLICE_SPEC, dags_folder=dags) is None
    with pytest.raises(ConfigurationError, match="choose a file in the form .* or set ZOOFLOW_AL_CONFIG"):
        resolve_config(None, AL_CONFIG, dags_folder=dags)
    monkeypatch.setenv("ZOOFLOW_AL_CONFIG", str(tmp_path / "anywhere" / "al.yaml"))
    assert resolve_config(" ", AL_CONFIG, dags_folder=dags) == tmp_path / "anywhere" / "al.yaml"


def test_the_command_line_also_takes_a_path_to_an_existing_file(dags, tmp_path) -> None:
    spec = tmp_path / "mine.yaml"
    spec.write_text("{}")
    assert resolve_config(str(spec), SLICE_SPEC, shell=True) == spec
    with pytest.raises(ConfigurationError, match="set ZOOFLOW_CONFIG_DIR"):
        resolve_config("nowhere.yaml", SLICE_SPEC, shell=True)
    with pytest.raises(ConfigurationError, match="refused"):
        resolve_config(str(spec), SLICE_SPEC, dags_folder=dags)

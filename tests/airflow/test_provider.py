"""The zooniverse connection type reaches Airflow through the package's provider entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import airflow
import jsonschema

from zooflow.airflow.provider import get_provider_info


def test_provider_info_matches_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_is_declared_by_the_installed_package() -> None:
    points = [ep for ep in metadata.entry_points(group="apache_airflow_provider") if ep.value.startswith("zooflow.")]
    assert [ep.load() for ep in points] == [get_provider_info]


def test_task_runtime_finds_the_hook() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["zooniverse"]
    assert hook.hook_class_name == "zooflow.airflow.hooks.zooniverse.PanoptesHook"


def test_ui_gets_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["zooniverse"]
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    assert behaviour["relabeling"]["host"] == "API endpoint"
    widgets = manager.connection_form_widgets
    assert widgets["extra__zooniverse__client_secret"].is_sensitive


def test_airflow_cli_lists_the_connection_type() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "providers", "hooks", "--output", "plain"],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("zooniverse"))
    assert "zooflow.airflow.hooks.zooniverse.PanoptesHook" in line

"""The schema ships in the package, is valid JSON Schema, and says what the loader checks; loading stays light and fast."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from projects_support import three_projects
from zooflow.errors import ConfigurationError
from zooflow.exports.slice_spec import SliceSpec
from zooflow.projects_file import load_projects, schema
from zooflow.projects_file.load import ENTRY_KEYS

HEAVY = ("pandas", "numpy", "sklearn", "scipy", "matplotlib", "pyarrow", "airflow", "panoptes_client", "modAL", "requests")


def test_the_schema_is_package_data_and_valid_json_schema() -> None:
    shipped = resources.files("zooflow.projects_file").joinpath("projects.schema.json")
    assert shipped.is_file()
    Draft202012Validator.check_schema(json.loads(shipped.read_text(encoding="utf-8")))
    assert schema() == json.loads(shipped.read_text(encoding="utf-8"))


def test_the_package_data_setting_ships_it() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "projects_file/*.json" in pyproject["tool"]["setuptools"]["package-data"]["zooflow"]


def test_the_schema_knows_the_same_keys_as_the_loader_and_the_slice_spec() -> None:
    defs = schema()["$defs"]
    assert tuple(defs["project"]["properties"]) == ENTRY_KEYS
    with pytest.raises(ConfigurationError) as raised:
        SliceSpec.from_mapping({"?": 1})
    known = re.search(r"known keys: (.*)$", str(raised.value)).group(1).split(", ")
    assert sorted(defs["slice"]["properties"]) == sorted(known)


def test_the_readme_example_loads(tmp_path) -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Projects file", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "al").mkdir()
    (tmp_path / "al" / "glitches.yaml").write_text("pool: p.csv\nworkflow_id: 28090\n")
    (tmp_path / "projects.yaml").write_text(example)

    checked = load_projects(tmp_path / "projects.yaml")

    assert checked.ok, [str(error) for error in checked.errors]
    assert checked.dag_ids == ("zooniverse_exports__zooflow__glitch-demo",
                               "zooniverse_active_learning__zooflow__glitch-demo__workflow_28090")


def test_an_editor_with_the_schema_accepts_a_good_file(tmp_path) -> None:
    import yaml

    path = three_projects(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["projects"][0]["slice"]["since"] = "2025-01-01"  # JSON has no dates: an editor sees text
    assert list(Draft202012Validator(schema()).iter_errors(data)) == []


def write_ten(folder):
    (folder / "al").mkdir()
    lines = ["projects:"]
    for i in range(10):
        (folder / "al" / f"w{i}.yaml").write_text(f"pool: p.csv\nworkflow_id: {28000 + i}\ncadence: '*/15 * * * *'\n")
        lines += [f"  - project: team/project-{i}", "    conn_id: zooniverse_default", f"    schedule: '0 {i} * * *'",
                  "    exports: [classifications, subjects]",
                  f"    slice: {{workflow_ids: [{28000 + i}], gold: exclude, since: 2025-01-01}}",
                  "    active_learning:", f"      - config: al/w{i}.yaml"]
    path = folder / "projects.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ten_entries_load_each_with_its_dags(tmp_path) -> None:
    """Parse time is measured in the issue's note, not asserted here (no timed tests)."""
    projects = load_projects(write_ten(tmp_path))
    assert len(projects.entries) == 10 and not projects.errors
    assert len(projects.dag_ids) == 20


def test_checking_a_file_imports_nothing_heavy(tmp_path) -> None:
    path = write_ten(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        from zooflow.projects_file import load_projects
        from zooflow.projects_file.cli import describe
        checked = load_projects({str(path)!r})
        assert len(checked.entries) == 10, checked.errors
        describe(checked)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        print(heavy)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

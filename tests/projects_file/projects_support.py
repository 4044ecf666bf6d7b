"""A three-project file (one project with two active-learning workflows) and a way to break one entry."""

from __future__ import annotations

from pathlib import Path

import yaml

THREE_PROJECTS = """\
x-nightly: &nightly "30 1 * * *"
projects:
  - project: zooflow/glitch-demo
    schedule: "0 2 * * *"
    exports: [classifications, subjects, workflows]
    slice: {workflow_ids: [28090], gold: exclude, since: 2025-01-01}
    active_learning:
      - config: al/glitches.yaml
      - config: al/second-pass.yaml
  - project: lab/café-ørsted
    conn_id: zooniverse_lab
    schedule: *nightly
    exports: [classifications]
  - project: 12345
    schedule: "@weekly"
    active_learning:
      - config: al/numbers.yaml
"""

EXPECTED_DAG_IDS = (
    "zooniverse_exports__zooflow__glitch-demo",
    "zooniverse_active_learning__zooflow__glitch-demo__workflow_28090",
    "zooniverse_active_learning__zooflow__glitch-demo__workflow_28091",
    "zooniverse_exports__lab__cafe-orsted",
    "zooniverse_exports__project_12345",
    "zooniverse_active_learning__project_12345__workflow_30001",
)


def write_al_configs(folder: Path) -> None:
    (folder / "al").mkdir(parents=True, exist_ok=True)
    (folder / "al" / "glitches.yaml").write_text("pool: pool.csv\nworkflow_id: 28090\ncadence: '*/15 * * * *'\n")
    (folder / "al" / "second-pass.yaml").write_text("pool: pool.csv\nworkflow_id: 28091\n")
    (folder / "al" / "numbers.yaml").write_text("pool: digits.csv\nworkflow_id: '30001'\ncadence: '@hourly'\n")


def three_projects(folder: Path) -> Path:
    """The three-project file, with its AL configs, in ``folder``."""
    write_al_configs(folder)
    path = folder / "projects.yaml"
    path.write_text(THREE_PROJECTS, encoding="utf-8")
    return path


def with_entry(folder: Path, index: int, changes: dict | None = None, *, remove: tuple[str, ...] = (),
               replace_with: object = None) -> Path:
    """The three-project file with entry ``index`` changed (keys set or removed), or replaced whole."""
    write_al_configs(folder)
    data = yaml.safe_load(THREE_PROJECTS)
    data.pop("x-nightly")
    if replace_with is not None:
        data["projects"][index] = replace_with
    else:
        data["projects"][index] = {k: v for k, v in data["projects"][index].items() if k not in remove} | (changes or {})
    path = folder / "projects.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path

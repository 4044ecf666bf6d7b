"""``zooflow --help`` and every command's ``--help`` load none of zooflow's dependencies.

Help has to answer at once (issue 19), so each command group declares its parser with argparse and
light constants only, and its handlers import the heavy libraries when they run. Each help runs as
a user runs it, in a fresh interpreter, and ``-X importtime`` lists every module it imported. How
fast that is, is shown by timing the command, not here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from zooflow.cli import build_parser

# zooflow's dependencies (pyproject.toml) by import name, with what they bring in: none is needed to show help
HEAVY = ("airflow", "croniter", "isal", "jinja2", "jsonschema", "markupsafe", "matplotlib", "modAL", "numpy",
         "pandas", "panoptes_client", "pyarrow", "requests", "rich", "sklearn", "tenacity", "yaml")


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command line with a help of its own: (), ("export",), ("export", "slice"), ..."""
    paths = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += command_paths(sub, (*path, name))
    return paths


@pytest.mark.parametrize("path", command_paths(build_parser()), ids=lambda path: " ".join(("zooflow", *path)))
def test_help_loads_no_dependency(path: tuple[str, ...]) -> None:
    command = " ".join(("zooflow", *path))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "zooflow", *path, "--help"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {command}"), done.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    loaded = sorted({name.split(".")[0] for name in imported} & set(HEAVY))
    assert not loaded, f"`{command} --help` imported {', '.join(loaded)}"

"""``zooflow al simulate`` from the command line, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from zooflow.al import cli as al_cli
from zooflow.al.learner import DEFAULT_STRATEGY
from zooflow.al.demo_data import write_digits_pool
from zooflow.cli import build_parser


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_pool(tmp_path_factory.mktemp("digits"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooflow", "al", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


def test_simulate_json(digits):
    done = run("simulate", "--pool", str(digits), "--label-column", "label", "--rounds", "2", "--batch", "15",
               "--strategy", "margin", "--seed", "4", "--initial", "12", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [p["labelled"] for p in result["curve"]] == [12, 27, 42]
    assert set(result["curve"][0]) == {"round", "labelled", "accuracy", "f1"}
    assert (result["strategy"], result["seed"], result["initial"], result["batch"]) == ("margin", 4, 12, 15)
    assert result["held_out"] == 450 and len(result["classes"]) == 10


def test_simulate_table_and_errors(digits, tmp_path):
    done = run("simulate", "--pool", str(digits), "--label-column", "label", "--rounds", "1", "--batch", "5",
               "--strategy", "random", "--per-class", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "random (seed 0)" in lines[0] and lines[1].split() == ["round", "labelled", "accuracy", "macro", "F1"]
    assert [line.split()[:2] for line in lines[2:]] == [["0", "10"], ["1", "17"]]
    missing = run("simulate", "--pool", str(tmp_path / "none.csv"), "--label-column", "label", "--rounds", "1", "--batch", "5")
    assert missing.returncode == 2 and "zooflow: error: pool file" in missing.stderr and "does not exist" in missing.stderr
    bad = run("simulate", "--pool", str(digits), "--label-column", "label", "--rounds", "1", "--batch", "5", "--strategy", "smart")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_the_al_group_parses_round_and_simulate():
    parser = build_parser()
    round_args = parser.parse_args(["al", "round", "owner/name", "--config", "al.yaml", "--k", "3", "--dry-run"])
    assert (round_args.func, round_args.project, round_args.k, round_args.m, round_args.dry_run) == (
        al_cli.run_round, "owner/name", 3, None, True)
    args = parser.parse_args(["al", "simulate", "--pool", "p.csv", "--label-column", "y", "--rounds", "3", "--batch", "4"])
    assert (args.func, args.strategy, args.initial, args.threshold, args.json) == (al_cli.run_simulate, DEFAULT_STRATEGY, 10, 0.6, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["al"])  # a step is required

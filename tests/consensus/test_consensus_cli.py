"""``zooflow labels consensus`` on a classification export: LABELS.csv, votes_used in time order,
gold from the export and from GOLD.csv, and errors that say what to fix."""

from __future__ import annotations

import csv
import json

import pytest

from zooflow.cli import main
from zooflow.consensus.table import COLUMNS

HEADER = ["classification_id", "user_name", "user_id", "workflow_id", "created_at", "gold_standard", "annotations",
          "subject_data", "subject_ids"]


def row(n: int, subject: int, answer: str, user: str | None, *, workflow: int = 7, gold: bool = False) -> list:
    return [1000 + n, user or f"not-logged-in-{n}", user or "", workflow, f"2026-01-01 10:{n:02d}:00 UTC",
            "true" if gold else "", json.dumps([{"task": "T0", "value": answer}]),
            json.dumps({str(subject): {"retired": None}}), subject]


@pytest.fixture()
def export(tmp_path):
    rows = [
        # subject 1: clear after two votes ("Yes", "Yes"), then one dissent
        row(1, 1, "Yes", "11"), row(2, 1, "Yes", "12"), row(3, 1, "No", "13"), row(4, 1, "Yes", None),
        # subject 2: split until the fourth vote
        row(5, 2, "Yes", "11"), row(6, 2, "No", "12"), row(7, 2, "No", "13"), row(8, 2, "No", None),
        # subject 3: the owner's gold-standard answer and two volunteers who disagree with it
        row(9, 3, "No", "1", gold=True), row(10, 3, "Yes", "11"), row(11, 3, "Yes", "12"),
        row(12, 4, "Yes", "11", workflow=8),  # another workflow
    ]
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


def run(*args: str) -> int:
    return main(["labels", "consensus", *args])


def read(path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == COLUMNS
        return {r["subject_id"]: r for r in reader}


def test_majority_with_retire_confidence_counts_the_votes_it_took(export, tmp_path, capsys) -> None:
    out = tmp_path / "labels.csv"
    assert run(str(export), "--workflow-id", "7", "--method", "majority", "--retire-confidence", "0.9",
               "--min-votes", "2", "--out", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    labels = read(out)
    assert sorted(labels) == ["1", "2", "3"]  # subject 4 is another workflow's
    assert (labels["1"]["label"], labels["1"]["votes"], labels["1"]["votes_used"], labels["1"]["retire"]) == \
        ("Yes", "4", "2", "True")  # clear after "Yes", "Yes"
    assert (labels["2"]["label"], labels["2"]["votes_used"], labels["2"]["retire"]) == ("No", "4", "False")
    assert float(labels["2"]["confidence"]) == 0.75  # never clear: the label and share after all its votes
    assert (labels["3"]["label"], labels["3"]["gold"], labels["3"]["votes"]) == ("No", "True", "2")  # the owner's
    assert summary["retired_early"] == 1 and summary["votes"] == 10 and summary["votes_used"] == 8
    assert summary["skipped"] == {"other workflow": 1} and summary["gold_subjects"] == 1


def test_weighted_writes_every_subject_and_a_gold_file_adds_known_labels(export, tmp_path, capsys) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("subject_id,label\n2,Yes\n")
    out = tmp_path / "labels.csv"
    assert run(str(export), "--workflow-id", "7", "--gold", str(gold), "--out", str(out)) == 0
    labels = read(out)
    assert labels["2"]["label"] == "Yes" and labels["2"]["gold"] == "True"
    assert all(r["votes_used"] == r["votes"] for r in labels.values())  # no confidence given: all votes
    assert "3 subjects labelled by weighted consensus from 10 votes" in capsys.readouterr().out


def test_auto_confidence_says_what_it_chose(export, tmp_path, capsys) -> None:
    out = tmp_path / "labels.csv"
    assert run(str(export), "--workflow-id", "7", "--retire-confidence", "auto", "--retire-count", "4",
               "--min-votes", "2", "--out", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["retire_rule"].startswith("auto: a majority of 4 votes from this crowd is right")
    assert 0 < summary["retire_confidence"] <= 1 and read(out)


@pytest.mark.parametrize("args, message", [
    (["--workflow-id", "99"], "has no answers to task T0 of workflow 99"),
    (["--workflow-id", "7", "--retire-confidence", "1.5"], "retire confidence is a probability in (0, 1] or 'auto'"),
    (["--workflow-id", "7", "--gold", "GOLD"], "needs the columns subject_id,label"),
])
def test_bad_input_is_one_line_naming_the_fix(export, tmp_path, capsys, args, message) -> None:
    (tmp_path / "GOLD").write_text("subject,answer\n1,Yes\n")
    args = [a.replace("GOLD", str(tmp_path / "GOLD")) for a in args]
    assert run(str(export), *args, "--out", str(tmp_path / "labels.csv")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "labels.csv").exists()

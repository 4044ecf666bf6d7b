"""Simulated volunteers who differ: skill profiles by account, the pooled anonymous profile, the
owner's gold-standard classifications, and the defaults that keep every volunteer alike."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from contract_support import csv_rows, linked_workflow_with_subjects, make_project, wait_ready

from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdminError
from zooflow.sandbox.skills import PRESETS, is_gold

ANSWERS = list(seed.DEMO_ANSWERS)


def _truth(i: int) -> dict:
    return {"#truth": ANSWERS[i % len(ANSWERS)]}


def _export(workflow, subjects) -> list[dict]:
    truth = {s.id: s.metadata.get("#truth") for s in subjects}
    workflow.generate_export("classifications")
    wait_ready(workflow, "classifications")
    return [{
        "id": int(r["classification_id"]), "subject_id": r["subject_ids"], "truth": truth[r["subject_ids"]],
        "user": r["user_name"] if r["user_id"] else "anonymous", "gold": r["gold_standard"],
        "answer": json.loads(r["annotations"])[0]["value"],
    } for r in csv_rows(workflow.get_export("classifications"))]


def _run_out(admin, workflow, seed_: int) -> int:
    made = 0
    while True:
        step = admin.run_volunteers(200, seed=seed_ + made, workflow_id=workflow.id)
        if not step:
            return made
        made += step


def _accuracy(rows: list[dict]) -> float:
    assert rows, "no classifications to judge"
    return sum(r["answer"] == r["truth"] for r in rows) / len(rows)


def test_defaults_keep_every_volunteer_alike_and_no_gold(owner, admin, configure) -> None:
    configure(volunteer_error_rate=0.3, anonymous_fraction=0.3)
    profiles = admin.volunteers()
    assert {(v["profile"], v["error_rate"]) for v in profiles["volunteers"]} == {("plain", 0.3)}
    assert [v["login"] for v in profiles["volunteers"]] == [f"volunteer-{n:02d}" for n in range(1, 11)]
    assert profiles["anonymous"]["profile"] == "plain" and profiles["gold_standard_fraction"] == 0.0
    workflow, _, subjects = linked_workflow_with_subjects(make_project(), 40, _truth, retire_after=10)
    assert _run_out(admin, workflow, 3) == 400
    rows = _export(workflow, subjects)
    assert not [r for r in rows if r["gold"]]
    named = [r for r in rows if r["user"] != "anonymous"]
    anonymous = [r for r in rows if r["user"] == "anonymous"]
    assert 0.6 < _accuracy(named) < 0.8 and 0.55 < _accuracy(anonymous) < 0.85  # 1 - 0.3 for everyone
    wrong = Counter(r["answer"] for r in rows if r["answer"] != r["truth"])
    assert len(wrong) == len(ANSWERS)  # mistakes spread over every answer, none favoured


def test_a_skill_mix_gives_careful_random_middling_and_biased_volunteers(owner, admin, configure) -> None:
    configure(volunteer_skills="mixed", anonymous_skill="random", anonymous_fraction=0.25)
    profiles = admin.volunteers()
    by_login = {v["login"]: v for v in profiles["volunteers"]}
    expected = ["careful"] * 3 + ["middling"] * 4 + ["random"] + ["biased"] * 2  # 30/40/10/20 % of 10, in login order
    assert [by_login[f"volunteer-{n:02d}"]["profile"] for n in range(1, 11)] == expected
    assert [by_login[f"volunteer-{n:02d}"]["favourite"] for n in (9, 10)] == [0, 1]
    assert profiles["anonymous"] == {"profile": "random", "error_rate": None, "favour_rate": None, "favourite": None}
    assert admin.volunteers() == profiles  # stable between calls

    workflow, _, subjects = linked_workflow_with_subjects(make_project(), 48, _truth, retire_after=10)
    assert _run_out(admin, workflow, 11) == 480
    rows = _export(workflow, subjects)
    profile_of = {login: v["profile"] for login, v in by_login.items()} | {"anonymous": "anonymous"}
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[profile_of[row["user"]]].append(row)
    assert _accuracy(groups["careful"]) > 0.9
    assert 0.65 < _accuracy(groups["middling"]) < 0.92
    assert _accuracy(groups["random"]) < 0.45
    assert _accuracy(groups["anonymous"]) < 0.45  # the pooled anonymous crowd clicks at random here
    for login, favourite in (("volunteer-09", ANSWERS[0]), ("volunteer-10", ANSWERS[1])):
        answers = Counter(r["answer"] for r in rows if r["user"] == login)
        assert answers.most_common(1)[0][0] == favourite
        assert answers[favourite] / sum(answers.values()) > 0.5  # 1 in 4 subjects has it as its truth
    assert not [r for r in rows if r["gold"]]


def test_seeded_runs_with_a_mix_repeat_exactly(owner, admin, configure) -> None:
    configure(volunteer_skills={"careful": 1, "random": 1, "biased": 2}, anonymous_skill="biased")
    runs = []
    for _ in range(2):
        workflow, _, subjects = linked_workflow_with_subjects(make_project(), 6, _truth, retire_after=5)
        assert admin.run_volunteers(20, seed=5, workflow_id=workflow.id) == 20
        position = {s.id: i for i, s in enumerate(subjects)}
        runs.append([(position[r["subject_id"]], r["user"], r["answer"]) for r in _export(workflow, subjects)])
    assert runs[0] == runs[1]
    profiles = [v["profile"] for v in admin.volunteers()["volunteers"]]
    assert Counter(profiles) == {"careful": 3, "random": 2, "biased": 5}  # 2.5 each rounds up for the first listed


def test_gold_standard_subjects_get_the_owners_true_answer_first(owner, admin, configure) -> None:
    configure(gold_standard_fraction=0.5)
    assert admin.volunteers()["gold_standard_fraction"] == 0.5
    project = make_project()
    workflow, _, subjects = linked_workflow_with_subjects(
        project, 72, lambda i: _truth(i) if i < 60 else {"filename": f"unknown-{i}.png"}, retire_after=3)
    made = _run_out(admin, workflow, 23)
    assert made == 72 * 3  # the owner's classification counts towards retirement like any other
    rows = _export(workflow, subjects)
    gold = [r for r in rows if r["gold"]]
    assert all(r["gold"] == "true" and r["user"] == seed.DEMO_USER and r["answer"] == r["truth"] for r in gold)
    gold_subjects = Counter(r["subject_id"] for r in gold)
    assert set(gold_subjects.values()) == {1}
    known = [s.id for s in subjects[:60]]
    assert set(gold_subjects) == {s for s in known if is_gold(int(s), 0.5)}
    assert 18 <= len(gold_subjects) <= 42  # about half of the 60 whose truth is known
    unknown = [s.id for s in subjects[60:]]
    assert any(is_gold(int(s), 0.5) for s in unknown)
    assert not set(gold_subjects) & set(unknown)  # nobody vouches for an answer nobody knows
    first = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        first.setdefault(row["subject_id"], row)
    assert all(first[s]["gold"] == "true" for s in gold_subjects)
    per_subject = Counter(r["subject_id"] for r in rows)
    assert set(per_subject.values()) == {3}
    assert all(r["user"] != seed.DEMO_USER for r in rows if not r["gold"])


@pytest.mark.parametrize("changes, message", [
    ({"volunteer_skills": {"expert": 1}}, "unknown profile"),
    ({"volunteer_skills": {"careful": -0.5, "random": 1}}, "at least 0"),
    ({"volunteer_skills": {"careful": 0}}, "must not all be 0"),
    ({"volunteer_skills": "lots"}, "preset must be one of mixed"),
    ({"volunteer_skills": ["careful"]}, "must map profiles"),
    ({"anonymous_skill": "genius"}, "must be one of plain, careful"),
    ({"gold_standard_fraction": 1.5}, "at most 1"),
])
def test_bad_skill_settings_are_refused(admin, configure, changes, message) -> None:
    before = admin.settings()
    with pytest.raises(SandboxAdminError, match=message):
        configure(**changes)
    assert admin.settings() == before


def test_a_preset_is_stored_as_its_shares_and_empty_means_plain(admin, configure) -> None:
    assert configure(volunteer_skills="mixed")["volunteer_skills"] == PRESETS["mixed"]
    assert configure(volunteer_skills={})["volunteer_skills"] is None
    assert {v["profile"] for v in admin.volunteers()["volunteers"]} == {"plain"}

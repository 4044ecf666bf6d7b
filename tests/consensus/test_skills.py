"""Dawid–Skene volunteer skill on simulated crowds with a known truth: better than majority where
volunteers differ, sparse volunteers held near the crowd, gold labels held and learned from."""

from __future__ import annotations

import numpy as np
import pytest

from zooflow.consensus.crowds import SKILL_MIXES, simulate_crowd
from zooflow.consensus.skills import fit_skills
from zooflow.consensus.table import consensus
from zooflow.consensus.votes import ANONYMOUS, Votes
from zooflow.errors import ConfigurationError


@pytest.mark.parametrize("mix", sorted(SKILL_MIXES))
def test_weighted_is_at_least_as_accurate_as_majority(mix) -> None:
    crowd = simulate_crowd(items=600, volunteers=120, votes_per_item=9, mix=mix, seed=4)
    majority = consensus(crowd.votes, method="majority").replay.label
    weighted = consensus(crowd.votes, method="weighted").replay.label
    assert (weighted == crowd.truth).mean() >= (majority == crowd.truth).mean()


def test_the_skills_it_finds_are_the_profiles_the_crowd_was_made_of() -> None:
    crowd = simulate_crowd(items=1500, volunteers=150, votes_per_item=9, mix="noisy", seed=2)
    model = fit_skills(crowd.votes)
    accuracy, busy = model.worker_accuracy, model.worker_votes >= 50
    by_profile = {p: accuracy[[q == p and b for q, b in zip(crowd.profiles, busy)]] for p in ("careful", "random")}
    assert by_profile["careful"].min() > 0.8 and by_profile["random"].max() < 0.5  # 0.95 and 1/3 in truth
    assert crowd.votes.workers.count(ANONYMOUS) == 1  # the not-logged-in votes share one profile


def test_a_volunteer_with_few_votes_stays_near_the_crowd() -> None:
    # Volunteer "x" answered once, wrongly; the others agree with the truth ("a") on every item.
    items = [f"i{n}" for n in range(20)]
    votes = Votes.from_arrays([*[i for i in items for _ in range(3)], "i0"],
                              [*[w for _ in items for w in ("u1", "u2", "u3")], "x"],
                              [*["a"] * 60, "b"], classes=["a", "b"])
    model = fit_skills(votes, prior_strength=5.0)
    sparse, busy = model.confusion[votes.workers.index("x")], model.confusion[votes.workers.index("u1")]
    assert 0.6 < sparse[0, 0] < 0.95  # pulled towards the crowd's "a", not its one answer "b"
    assert busy[0, 0] > sparse[0, 0]
    assert fit_skills(votes, prior_strength=0.0).confusion[votes.workers.index("x")][0, 0] < 0.01


def test_gold_labels_are_held_and_teach_who_is_biased() -> None:
    # Two biased volunteers always answer "b"; one careful volunteer answers the truth. Without gold
    # the majority of every item is "b"; gold on a few items shows the biased ones are wrong.
    truth = ["a", "b"] * 15
    items = [f"i{n}" for n in range(len(truth))]
    votes = Votes.from_arrays([i for i in items for _ in range(3)],
                              [w for _ in items for w in ("bias1", "bias2", "careful")],
                              [x for t in truth for x in ("b", "b", t)], classes=["a", "b"])
    gold = {items[n]: truth[n] for n in range(6)}
    without = consensus(votes, method="weighted")
    with_gold = consensus(votes, method="weighted", gold=gold)
    right = lambda result: np.mean([votes.classes[c] == t for c, t in zip(result.replay.label, truth)])  # noqa: E731
    assert right(without) == 0.5 and right(with_gold) == 1.0
    rows = {row["subject_id"]: row for row in with_gold.rows()}
    assert rows["i0"]["gold"] and rows["i0"]["label"] == "a" and rows["i0"]["confidence"] == 1.0


def test_a_gold_label_that_is_no_answer_is_refused() -> None:
    votes = Votes.from_arrays(["i1", "i1"], ["u1", "u2"], ["a", "b"])
    with pytest.raises(ConfigurationError, match="gold-standard label.*'c'.*not answers of the task"):
        fit_skills(votes, gold={"i1": "c"})


def test_a_million_votes_fit_in_seconds_is_left_to_the_benchmark() -> None:
    """The speed figure is benchmarks/bench_consensus.py's; here only that the fit converges."""
    crowd = simulate_crowd(items=3000, volunteers=500, votes_per_item=10, seed=9)
    model = fit_skills(crowd.votes)
    assert model.converged and model.iterations < 100


@pytest.mark.parametrize("mix", sorted(SKILL_MIXES))
def test_auto_confidence_is_the_accuracy_a_full_count_majority_reaches(mix) -> None:
    from zooflow.consensus.table import majority_accuracy

    crowd = simulate_crowd(items=1500, volunteers=200, votes_per_item=9, mix=mix, seed=6)
    measured = (consensus(crowd.votes, method="majority").replay.label == crowd.truth).mean()
    model = fit_skills(crowd.votes)
    assert abs(majority_accuracy(model, crowd.votes, 9) - measured) < 0.03
    assert majority_accuracy(model, crowd.votes, 3) < majority_accuracy(model, crowd.votes, 9)  # fewer votes, worse
    auto = consensus(crowd.votes, method="weighted", retire_confidence="auto", min_votes=3, retire_count=9)
    assert auto.retire_rule.startswith("auto: a majority of 9 votes") and 0.5 < auto.retire_confidence <= 1
    assert auto.replay.used.sum() < auto.replay.votes.sum()


def test_auto_needs_the_weighted_method() -> None:
    votes = Votes.from_arrays(["i1", "i1"], ["u1", "u2"], ["a", "a"])
    with pytest.raises(ConfigurationError, match="'auto' needs the weighted method"):
        consensus(votes, method="majority", retire_confidence="auto")

"""Replaying the loop offline: the curve, fairness between runs, and active learning against random."""

from __future__ import annotations

import pytest
from al_support import blobs

from zooflow.al.demo_data import write_digits_pool
from zooflow.al.learner import DEFAULT_STRATEGY
from zooflow.al.simulate import simulate
from zooflow.errors import ConfigurationError


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_pool(tmp_path_factory.mktemp("digits"))


def test_curve_shape_and_reproducibility(tmp_path):
    path = tmp_path / "blobs.csv"
    blobs(n_per_class=40).to_csv(path, index=False)
    result = simulate(path, "truth", rounds=4, batch=6, seed=3, initial=5)
    assert [p["labelled"] for p in result["curve"]] == [5, 11, 17, 23, 29]
    assert [p["round"] for p in result["curve"]] == [0, 1, 2, 3, 4]
    assert all(0 <= p["accuracy"] <= 1 and 0 <= p["f1"] <= 1 for p in result["curve"])
    assert result["held_out"] == 30 and result["queryable"] == 90 and result["classes"] == ["cosmic ray", "other", "point source"]
    assert (result["strategy"], result["seed"], result["rounds"], result["batch"]) == (DEFAULT_STRATEGY, 3, 4, 6)
    assert simulate(path, "truth", rounds=4, batch=6, seed=3, initial=5) == result


def test_a_project_estimator_replaces_the_forest(tmp_path):
    path = tmp_path / "blobs.csv"
    blobs(n_per_class=30).to_csv(path, index=False)
    linear = simulate(path, "truth", rounds=2, batch=4, initial=6, estimator="sklearn.linear_model:LogisticRegression")
    assert [p["labelled"] for p in linear["curve"]] == [6, 10, 14] and linear["curve"][-1]["accuracy"] > 0.8
    with pytest.raises(ConfigurationError, match="no fit/predict_proba"):
        simulate(path, "truth", rounds=2, batch=4, initial=6, estimator="collections:OrderedDict")


def test_held_out_items_are_never_queried_and_the_curve_ends_when_the_pool_runs_out(tmp_path):
    path = tmp_path / "small.parquet"
    blobs(n_per_class=10, classes=("a", "b")).drop(columns="id").to_parquet(path, index=False)  # no id column
    result = simulate(path, "truth", rounds=10, batch=6, initial=2, test_fraction=0.25)
    assert result["queryable"] == 15 and result["held_out"] == 5
    assert [p["labelled"] for p in result["curve"]] == [2, 8, 14, 15]  # then nothing left but the held-out part


def test_high_probability_picks_add_to_the_budget(tmp_path):
    path = tmp_path / "blobs.csv"
    blobs(n_per_class=40).to_csv(path, index=False)
    result = simulate(path, "truth", rounds=2, batch=2, per_class=3, initial=9, seed=1)
    steps = [b["labelled"] - a["labelled"] for a, b in zip(result["curve"], result["curve"][1:])]
    assert all(2 < step <= 2 + 3 * 3 for step in steps)


def test_active_learning_beats_random_sampling_on_digits(digits):
    settings = dict(rounds=12, batch=10, initial=20, seed=0)
    active = simulate(digits, "label", **settings)
    random = simulate(digits, "label", strategy="random", **settings)
    assert [p["labelled"] for p in active["curve"]] == [p["labelled"] for p in random["curve"]]
    assert active["curve"][0] == random["curve"][0]  # the same initial labels, split and model
    assert active["curve"][-1]["labelled"] == 140
    assert active["curve"][-1]["accuracy"] > random["curve"][-1]["accuracy"] + 0.03
    assert active["curve"][-1]["accuracy"] > 0.9


def test_bad_settings(tmp_path, digits):
    one_class = tmp_path / "one.csv"
    blobs(n_per_class=5, classes=("a",)).to_csv(one_class, index=False)
    with pytest.raises(ConfigurationError, match="at least two classes"):
        simulate(one_class, "truth", rounds=1, batch=1)
    with pytest.raises(ConfigurationError, match="initial must be between 1 and the 1347"):
        simulate(digits, "label", rounds=1, batch=1, initial=0)
    with pytest.raises(ConfigurationError, match="test_fraction"):
        simulate(digits, "label", rounds=1, batch=1, test_fraction=1)
    with pytest.raises(ConfigurationError, match="something to pick"):
        simulate(digits, "label", rounds=1, batch=0)
    with pytest.raises(ConfigurationError, match="no label column 'truth'"):
        simulate(digits, "truth", rounds=1, batch=1)

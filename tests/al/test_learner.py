"""Batch selection, the estimator, and the metrics of the model that chose the batch."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
from al_support import blobs

from zooflow.al.learner import DEFAULT_STRATEGY, STRATEGIES, Batch, evaluate, make_estimator, metrics, select_batch
from zooflow.al.pool import load_pool
from zooflow.errors import ConfigurationError


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "blobs.csv"
    blobs(n_per_class=80).to_csv(path, index=False)
    return load_pool(path, label_column="truth")


def some_labels(pool, per_class: int) -> dict[str, str]:
    taken: Counter = Counter()
    labelled = {}
    for pool_id in pool.ids:
        label = pool.known[pool_id]
        if taken[label] < per_class:
            labelled[pool_id] = label
            taken[label] += 1
    return labelled


def test_strategies_are_the_modal_ones():
    assert STRATEGIES == ("uncertainty", "margin", "entropy")


def test_reproducible_with_a_seed_and_different_with_another(pool):
    labelled = some_labels(pool, 3)
    first = select_batch(pool, labelled, seed=4)
    again = select_batch(pool, labelled, seed=4)
    assert first.picks == again.picks
    others = [select_batch(pool, labelled, seed=seed).picks for seed in (5, 6, 7)]
    assert any(picks != first.picks for picks in others)  # the high-probability picks are random


def test_never_picks_labelled_or_excluded_items_nor_one_twice(pool):
    labelled = some_labels(pool, 4)
    exclude = set(pool.ids[::3].tolist())
    for strategy in STRATEGIES + ("random",):
        batch = select_batch(pool, labelled, exclude=exclude, k=10, m=20, strategy=strategy, seed=1)
        assert batch.ids and len(set(batch.ids)) == len(batch.ids)
        assert not set(batch.ids) & (set(labelled) | exclude)


def test_k_most_informative_then_up_to_m_per_class_above_the_threshold(pool):
    labelled = some_labels(pool, 2)
    batch = select_batch(pool, labelled, k=6, m=4, threshold=0.6, strategy="uncertainty", seed=0)
    reasons = Counter(pick.reason for pick in batch.picks)
    assert reasons["uncertainty"] == 6 and set(reasons) <= {"uncertainty", "high_probability"}
    confident = [p for p in batch.picks if p.reason == "high_probability"]
    per_class = Counter(p.predicted for p in confident)
    assert confident and max(per_class.values()) <= 4 and set(per_class) <= set(batch.classes)
    assert all(p.probability > 0.6 for p in confident)
    # The uncertainty picks are the least sure items left: none of the others is less sure.
    candidates = [i for i in pool.ids if i not in labelled]
    top = dict(zip(candidates, batch.learner.predict_proba(pool.X[pool.index_of(candidates)]).max(axis=1)))
    chosen = [p.pool_id for p in batch.picks if p.reason == "uncertainty"]
    assert max(top[i] for i in chosen) <= min(top[i] for i in candidates if i not in chosen)
    assert [p.probability for p in batch.picks[:6]] == sorted(p.probability for p in batch.picks[:6])
    assert all(p.probability == pytest.approx(top[p.pool_id]) for p in batch.picks)


@pytest.mark.parametrize("strategy", ["margin", "entropy"])
def test_other_strategies_name_their_picks(pool, strategy):
    batch = select_batch(pool, some_labels(pool, 2), k=3, m=0, strategy=strategy)
    assert [p.reason for p in batch.picks] == [strategy] * 3


def test_learner_is_taught_only_the_labelled_items(pool):
    labelled = some_labels(pool, 3) | {"gone-from-pool": "other"}
    batch = select_batch(pool, labelled, k=5, m=5)
    learner = batch.learner
    assert learner.X_training.shape[0] == batch.taught == len(labelled) - 1
    assert sorted(learner.y_training.tolist()) == sorted(v for k, v in labelled.items() if k in pool)
    np.testing.assert_array_equal(np.sort(learner.X_training, axis=0),
                                  np.sort(pool.X[pool.index_of([k for k in labelled if k in pool])], axis=0))
    assert batch.ignored == ["gone-from-pool"]
    data = batch.to_dict()
    assert data["taught"] == 9 and data["reasons"][DEFAULT_STRATEGY] == 5 and "learner" not in data


@pytest.mark.parametrize("labelled", [{}, {"p000": "cosmic ray", "p001": "cosmic ray"}])
def test_cold_start_with_fewer_than_two_classes(pool, labelled):
    batch = select_batch(pool, labelled, k=4, m=3, seed=2)
    assert batch.learner is None and len(batch.picks) == 7
    assert {p.reason for p in batch.picks} == {"cold_start"}
    assert all(p.probability is None and p.predicted is None for p in batch.picks)
    assert batch.picks == select_batch(pool, labelled, k=4, m=3, seed=2).picks


def test_random_baseline_still_reports_the_model(pool):
    batch = select_batch(pool, some_labels(pool, 3), k=4, m=3, strategy="random", seed=3)
    assert [p.reason for p in batch.picks] == ["random"] * 7
    assert all(p.predicted in batch.classes and 0 < p.probability <= 1 for p in batch.picks)


def test_pool_exhausted_gives_an_empty_batch(pool):
    labelled = some_labels(pool, 2)
    batch = select_batch(pool, labelled, exclude=set(pool.ids.tolist()))
    assert isinstance(batch, Batch) and batch.picks == [] and batch.learner is not None


def test_bad_arguments(pool):
    with pytest.raises(ConfigurationError, match="unknown strategy 'smart'"):
        select_batch(pool, {}, strategy="smart")
    with pytest.raises(ConfigurationError, match="negative"):
        select_batch(pool, {}, k=-1)


def test_make_estimator_default_and_dotted():
    forest = make_estimator(seed=7)
    assert (forest.criterion, forest.n_estimators, forest.max_depth, forest.random_state) == ("entropy", 50, 15, 7)
    logistic = make_estimator("sklearn.linear_model:LogisticRegression", seed=3)
    assert type(logistic).__name__ == "LogisticRegression" and logistic.random_state == 3
    assert type(make_estimator("sklearn.tree.DecisionTreeClassifier")).__name__ == "DecisionTreeClassifier"
    with pytest.raises(ConfigurationError, match="cannot import module 'no_such_module'"):
        make_estimator("no_such_module:Thing")
    with pytest.raises(ConfigurationError, match="has no 'Nope'"):
        make_estimator("sklearn.linear_model:Nope")
    with pytest.raises(ConfigurationError, match="no fit/predict_proba"):
        make_estimator("collections:OrderedDict")


def test_a_project_estimator_is_used_and_left_unfitted(pool):
    from sklearn.linear_model import LogisticRegression

    mine = LogisticRegression(max_iter=500)
    batch = select_batch(pool, some_labels(pool, 3), estimator=mine)
    assert isinstance(batch.learner.estimator, LogisticRegression) and batch.learner.estimator is not mine
    assert not hasattr(mine, "coef_")


def test_evaluate_accuracy_and_macro_f1(pool):
    model = make_estimator().fit(pool.X, [pool.known[i] for i in pool.ids])
    truth = [pool.known[i] for i in pool.ids]
    assert evaluate(model, pool.X, truth) == {"accuracy": 1.0, "f1": 1.0, "n_test": len(pool)}
    wrong = ["other"] * len(truth)
    scores = evaluate(model, pool.X, wrong)
    assert scores["accuracy"] == pytest.approx(1 / 3) and scores["f1"] < scores["accuracy"]


def test_metrics_with_enough_labels(pool):
    labelled = some_labels(pool, 12)
    result = metrics(pool, labelled, held_out_fraction=0.25, seed=0)
    assert result["labelled"] == 36 and result["held_out"] == 9 and result["trained_on"] == 27
    assert result["class_balance"] == {"cosmic ray": 12, "other": 12, "point source": 12}
    assert result["stratified"] and result["note"] is None
    assert result["accuracy"] > 0.85 and 0 < result["f1"] <= 1
    assert metrics(pool, labelled, seed=0) == result


@pytest.mark.parametrize("labelled, note", [
    ({}, "0 labelled item"),
    ({"p000": "x", "p001": "x", "p002": "x"}, "1 class"),
    ({"p000": "a", "p001": "b"}, "2 labelled item"),
])
def test_metrics_with_too_few_labels_says_why(pool, labelled, note):
    result = metrics(pool, labelled)
    assert result["accuracy"] is None and result["f1"] is None and note in result["note"]
    assert result["labelled"] == len(labelled)


def test_metrics_with_a_handful_of_labels_still_scores_unstratified(pool):
    labelled = some_labels(pool, 2)
    labelled[next(i for i in pool.ids if pool.known[i] == "other" and i not in labelled)] = "other"  # classes of 2, 2, 3
    result = metrics(pool, labelled, seed=1)
    assert result["labelled"] == 7 and result["held_out"] == 2 and not result["stratified"]
    assert result["accuracy"] is not None


def test_installed_modal_works_with_installed_scikit_learn():
    """modAL 0.4.2.1 passes ``force_all_finite``, which scikit-learn 1.8 removed: teach() would raise."""
    import sklearn
    from modAL.models import ActiveLearner
    from modAL.uncertainty import uncertainty_sampling

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    assert (major, minor) < (1, 8), f"scikit-learn {sklearn.__version__} breaks modAL 0.4.2.1; keep the pin"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "a", "b").astype(object)
    learner = ActiveLearner(estimator=make_estimator(), query_strategy=uncertainty_sampling, X_training=X[:10], y_training=y[:10])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the rename warning scikit-learn 1.6-1.7 gives for it
        learner.teach(X[10:20], y[10:20])
    assert learner.X_training.shape == (20, 3)
    index, _ = learner.query(X[20:], n_instances=3)
    assert len(set(index.tolist())) == 3

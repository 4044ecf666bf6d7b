"""Choosing the next batch for volunteers, and measuring the model that chose it.

The founding loop is kept: a random forest in a modAL ``ActiveLearner``, the most uncertain items,
plus a few "high probability" items per predicted class (volunteers see some easy subjects, and the
team sees whether the model's confident calls hold up). Its flaws are not: the learner is taught
only labels that volunteers agreed on or that the pool file already held (never its own
predictions), items are named by pool id (no index drift), an item already labelled or already
uploaded is never picked again, and every random choice comes from one seed, so a round can be
replayed exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from zooflow.al.dotted import import_object
from zooflow.al.pool import Pool
from zooflow.al.strategies import DEFAULT_STRATEGY, RANDOM, STRATEGIES
from zooflow.errors import ConfigurationError

COLD_START = "cold_start"
HIGH_PROBABILITY = "high_probability"
EXPLORE = "explore"  # random items added so the model keeps seeing what it is sure about (KaDE's "spice")


@dataclass(frozen=True)
class Pick:
    """One item for volunteers, and why it was chosen."""

    pool_id: str
    reason: str  # a strategy name, "high_probability", "random" or "cold_start"
    probability: float | None = None  # the model's top class probability for the item
    predicted: str | None = None  # the model's class for the item


@dataclass
class Batch:
    """The items chosen for one round, and the learner that chose them (None on a cold start)."""

    picks: list[Pick]
    learner: Any  # modAL ActiveLearner, fitted on exactly the labelled items in the pool
    strategy: str
    seed: int
    taught: int  # labelled items the learner was fitted on
    classes: list[str]
    ignored: list[str] = field(default_factory=list)  # labelled ids that are not in this pool

    @property
    def ids(self) -> list[str]:
        return [pick.pool_id for pick in self.picks]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the learner, fit for JSON (an Airflow XCom, a round report)."""
        return {"picks": [asdict(pick) for pick in self.picks], "strategy": self.strategy, "seed": self.seed,
                "taught": self.taught, "classes": list(self.classes), "ignored": list(self.ignored),
                "reasons": dict(Counter(pick.reason for pick in self.picks))}


def make_estimator(dotted: str | None = None, seed: int = 0) -> Any:
    """The founding random forest, or a project's own classifier named ``module:callable``.

    The callable is called without arguments and must give a scikit-learn style classifier with
    ``predict_proba``; its ``random_state``, if it has one, is set to ``seed``.
    """
    if dotted is None:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(criterion="entropy", n_estimators=50, max_depth=15, random_state=seed)
    estimator = import_object(dotted, "estimator")()
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
        raise ConfigurationError(
            f"estimator {dotted!r} gave {type(estimator).__name__}, which has no fit/predict_proba; "
            f"name a scikit-learn classifier (or a function returning one)")
    if hasattr(estimator, "get_params") and "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    return estimator


def _query_strategy(strategy: str):
    from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

    return {"uncertainty": uncertainty_sampling, "margin": margin_sampling, "entropy": entropy_sampling}[strategy]


def fit_learner(pool: Pool, labelled: Mapping[str, str], *, strategy: str = DEFAULT_STRATEGY, seed: int = 0,
                estimator: Any = None) -> Any:
    """A modAL ``ActiveLearner`` taught exactly the ``labelled`` items that are in the pool."""
    from modAL.models import ActiveLearner

    ids = sorted(pool_id for pool_id in labelled if pool_id in pool)
    return ActiveLearner(
        estimator=clone_or_make(estimator, seed),
        query_strategy=_query_strategy(strategy if strategy in STRATEGIES else "uncertainty"),
        X_training=pool.X[pool.index_of(ids)],
        y_training=np.array([labelled[pool_id] for pool_id in ids], dtype=object),
    )


def select_batch(
    pool: Pool,
    labelled: Mapping[str, str],
    *,
    exclude: Iterable[str] = (),
    k: int = 5,
    m: int = 5,
    threshold: float = 0.6,
    strategy: str = DEFAULT_STRATEGY,
    seed: int = 0,
    estimator: Any = None,
    explore_fraction: float = 0.0,
) -> Batch:
    """The next batch: the ``k`` most informative unlabelled items by ``strategy``, then up to ``m``
    items per predicted class whose top probability is above ``threshold`` (chosen at random), then
    ``round(explore_fraction * (k + m))`` items chosen at random among the rest ("explore"), so the
    model keeps meeting items its own choices would never show it.

    ``labelled`` (pool id -> class) is all the learner is taught: volunteer consensus merged with
    the pool's known labels by the caller. Items in ``labelled`` or ``exclude`` (already uploaded)
    are never picked, and no item is picked twice. With fewer than two classes labelled there is
    nothing to learn from: the batch is ``k + m`` random items ("cold_start"). ``strategy="random"``
    picks ``k + m`` random items (the baseline) but still fits the learner when it can.
    """
    if strategy not in STRATEGIES + (RANDOM,):
        raise ConfigurationError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES + (RANDOM,))}")
    if k < 0 or m < 0:
        raise ConfigurationError(f"k and m count items and cannot be negative (k={k}, m={m})")
    if not 0 <= explore_fraction <= 1:
        raise ConfigurationError(f"explore_fraction is a share of k + m, between 0 and 1, not {explore_fraction}")
    labels = {str(pool_id): str(label) for pool_id, label in labelled.items()}
    blocked = set(labels) | {str(pool_id) for pool_id in exclude}
    candidates = np.array([row for row, pool_id in enumerate(pool.ids) if pool_id not in blocked], dtype=np.int64)
    in_pool = {pool_id: label for pool_id, label in labels.items() if pool_id in pool}
    classes = sorted(set(in_pool.values()))
    rng = np.random.default_rng(seed)
    learner = fit_learner(pool, in_pool, strategy=strategy, seed=seed, estimator=estimator) if len(classes) >= 2 else None
    batch = Batch(picks=[], learner=learner, strategy=strategy, seed=seed, taught=len(in_pool), classes=classes,
                  ignored=sorted(set(labels) - set(in_pool)))
    if not len(candidates):
        return batch
    if learner is None:
        chosen = rng.choice(len(candidates), size=min(k + m, len(candidates)), replace=False)
        batch.picks = [Pick(str(pool.ids[candidates[i]]), COLD_START) for i in chosen]
        return batch
    X = pool.X[candidates]
    proba = learner.predict_proba(X)
    top, predicted = proba.max(axis=1), learner.estimator.classes_[proba.argmax(axis=1)]

    def pick(i: int, reason: str) -> Pick:
        return Pick(str(pool.ids[candidates[i]]), reason, float(top[i]), str(predicted[i]))

    if strategy == RANDOM:
        chosen = rng.choice(len(candidates), size=min(k + m, len(candidates)), replace=False)
        batch.picks = [pick(int(i), RANDOM) for i in chosen]
        return batch
    taken: list[int] = []
    if k:
        found, _, utility = learner.query(X, n_instances=min(k, len(candidates)), return_metrics=True)
        # Most informative first: highest uncertainty or entropy, smallest margin; ties by pool order.
        keys = np.asarray(utility) if strategy == "margin" else -np.asarray(utility)
        taken = [int(found[i]) for i in np.lexsort((candidates[found], keys))]
    picks = [pick(i, strategy) for i in taken]
    free = np.ones(len(candidates), dtype=bool)
    free[taken] = False
    if m:
        for class_index in range(proba.shape[1]):
            qualifying = np.flatnonzero(free & (proba.argmax(axis=1) == class_index) & (top > threshold))
            if len(qualifying):
                chosen = rng.choice(qualifying, size=min(m, len(qualifying)), replace=False)
                picks.extend(pick(int(i), HIGH_PROBABILITY) for i in chosen)
                free[chosen] = False
    if (explore := int(round(explore_fraction * (k + m)))) and free.any():
        chosen = rng.choice(np.flatnonzero(free), size=min(explore, int(free.sum())), replace=False)
        picks.extend(pick(int(i), EXPLORE) for i in chosen)
    batch.picks = picks
    return batch


def evaluate(learner_or_estimator: Any, X_test: np.ndarray, y_test: Iterable[Any]) -> dict[str, Any]:
    """Accuracy and macro-averaged F1 of a fitted learner or estimator on a test set."""
    from sklearn.metrics import accuracy_score, f1_score

    truth = np.array([str(label) for label in y_test], dtype=object)
    if not len(truth):
        raise ConfigurationError("the test set is empty; nothing to score")
    predicted = np.asarray(learner_or_estimator.predict(np.asarray(X_test))).astype(str).astype(object)
    return {"accuracy": float(accuracy_score(truth, predicted)),
            "f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            "n_test": int(len(truth))}


def metrics(
    pool: Pool,
    labelled: Mapping[str, str],
    *,
    held_out_fraction: float = 0.25,
    seed: int = 0,
    estimator: Any = None,
) -> dict[str, Any]:
    """How well a model trained on the labels so far does on labels it was not trained on.

    A ``held_out_fraction`` of the labelled items (stratified when every class has two items) is
    kept back and scored by a model fitted on the rest. The items were chosen by the learner, so
    they are harder than the pool at large and the figures are a cautious estimate. With too few
    labels to split (fewer than two classes to train on, or nothing left to test) accuracy and F1
    are None and ``note`` says why; the counts are always given. ``confusion`` keeps the held-out
    predictions as a matrix (rows: true class, columns: predicted class, both in the order of its own
    ``classes`` list), so a round report can show which classes the model mixes up, not only how
    often it is wrong.
    """
    if not 0 < held_out_fraction < 1:
        raise ConfigurationError(f"held_out_fraction must be between 0 and 1, not {held_out_fraction}")
    ids = sorted(pool_id for pool_id in map(str, labelled) if pool_id in pool)
    y = np.array([str(labelled[pool_id]) for pool_id in ids], dtype=object)
    balance = Counter(y.tolist())
    result: dict[str, Any] = {
        "labelled": len(ids), "class_balance": dict(sorted(balance.items())), "classes": len(balance),
        "accuracy": None, "f1": None, "trained_on": 0, "held_out": 0, "stratified": False, "note": None,
        "confusion": None,
    }
    n_test = max(1, int(round(len(ids) * held_out_fraction)))
    n_train = len(ids) - n_test
    if len(balance) < 2 or n_train < 2:
        result["note"] = (f"{len(ids)} labelled item(s) in {len(balance)} class(es): scoring needs at least two "
                          f"classes and enough items to hold {held_out_fraction:g} of them back")
        return result
    from sklearn.model_selection import train_test_split

    stratified = min(balance.values()) >= 2 and n_test >= len(balance) and n_train >= len(balance)
    train, test = train_test_split(np.arange(len(ids)), test_size=n_test, random_state=seed,
                                   stratify=y if stratified else None)
    if len(set(y[train])) < 2:
        result["note"] = "the items left to train on after holding some back are all one class; label more items"
        return result
    model = clone_or_make(estimator, seed)
    X = pool.X[pool.index_of(ids)]
    model.fit(X[train], y[train])
    scores = evaluate(model, X[test], y[test])
    from sklearn.metrics import confusion_matrix

    classes = sorted(balance)
    predicted = np.asarray(model.predict(X[test])).astype(str)
    matrix = confusion_matrix(y[test].astype(str), predicted, labels=classes)
    result.update(accuracy=scores["accuracy"], f1=scores["f1"], trained_on=int(len(train)),
                  held_out=int(len(test)), stratified=bool(stratified),
                  confusion={"classes": classes, "matrix": matrix.tolist()})
    return result


def clone_or_make(estimator: Any, seed: int) -> Any:
    """A fresh, unfitted copy of ``estimator``, or the default one, so callers' objects stay untouched."""
    from sklearn.base import clone

    return clone(estimator) if estimator is not None else make_estimator(seed=seed)

"""Replaying the labelling loop offline on a data set whose labels are already known.

Before a team spends volunteers' time, it can see what a strategy buys: the loop is run round by
round exactly as the DAG runs it (``select_batch`` on the labels so far), the label column answers
each query in place of volunteers, and a model fitted on the labels so far is scored after each
round on a held-out part that is never queried. Two runs with the same seed share the held-out
part, the initial labels and the estimator, so strategies compare fairly at equal label budgets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zooflow.al.learner import DEFAULT_STRATEGY, evaluate, make_estimator, select_batch
from zooflow.al.pool import pool_from_frame, read_table
from zooflow.errors import ConfigurationError

ROW_IDS = "_row"  # ids made from row numbers when the data set has no id column


def simulate(
    pool_path: str | os.PathLike[str],
    label_column: str,
    *,
    rounds: int,
    batch: int,
    strategy: str = DEFAULT_STRATEGY,
    seed: int = 0,
    initial: int = 10,
    test_fraction: float = 0.25,
    per_class: int = 0,
    threshold: float = 0.6,
    id_column: str = "id",
    estimator: str | None = None,
) -> dict[str, Any]:
    """Run ``rounds`` rounds of ``batch`` queries (plus up to ``per_class`` high-probability picks
    per class) after ``initial`` random labels, and return the learning curve.

    Every numeric column other than ``id_column`` (used when present) and ``label_column`` is a
    feature; rows with an empty label are left out. A stratified ``test_fraction`` is held out.
    ``estimator`` names a classifier of your own (``module:callable``, see ``make_estimator``); each
    round's model is seeded with ``seed`` plus the round number, the same for every strategy.
    The curve has one point per round, the initial labels first; it ends early if the pool runs out.
    """
    if rounds < 0 or batch < 0 or per_class < 0:
        raise ConfigurationError(f"rounds, batch and per_class cannot be negative ({rounds}, {batch}, {per_class})")
    if rounds and batch + per_class == 0:
        raise ConfigurationError("each round needs something to pick: give batch or per_class above 0")
    if not 0 < test_fraction < 1:
        raise ConfigurationError(f"test_fraction must be between 0 and 1, not {test_fraction}")
    source = Path(pool_path)
    frame = read_table(source, text_columns=(id_column, label_column))
    if id_column not in frame.columns:
        frame.insert(0, ROW_IDS, [f"row{i}" for i in range(len(frame))])
        id_column = ROW_IDS
    pool = pool_from_frame(frame, source, id_column=id_column, label_column=label_column)
    truth = pool.known
    answered = np.array([pool_id for pool_id in pool.ids if pool_id in truth], dtype=str)
    y = np.array([truth[pool_id] for pool_id in answered], dtype=str)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ConfigurationError(f"{source}: column {label_column!r} needs labels of at least two classes to simulate")
    from sklearn.model_selection import train_test_split

    n_test = int(np.ceil(test_fraction * len(answered)))
    stratify = counts.min() >= 2 and min(n_test, len(answered) - n_test) >= len(classes)
    queryable, held_out = train_test_split(answered, test_size=n_test, random_state=seed, stratify=y if stratify else None)
    if not 1 <= initial <= len(queryable):
        raise ConfigurationError(f"initial must be between 1 and the {len(queryable)} items not held out, not {initial}")
    rng = np.random.default_rng(seed)
    labelled = {str(pool_id): truth[str(pool_id)] for pool_id in rng.choice(queryable, size=initial, replace=False)}
    never = set(held_out.tolist()) | (set(pool.ids.tolist()) - set(truth))
    X_test = pool.X[pool.index_of(held_out)]
    y_test = [truth[pool_id] for pool_id in held_out]

    curve: list[dict[str, Any]] = []
    for number in range(rounds + 1):
        chosen = None
        if number < rounds:
            chosen = select_batch(pool, labelled, exclude=never, k=batch, m=per_class, threshold=threshold,
                                  strategy=strategy, seed=seed + number,
                                  estimator=make_estimator(estimator, seed + number))
        model = chosen.learner if chosen is not None else None
        if model is None:  # the last point, or a cold start: fit on the labels so far as the learner would
            ids = sorted(labelled)
            model = make_estimator(estimator, seed + number)
            model.fit(pool.X[pool.index_of(ids)], np.array([labelled[i] for i in ids], dtype=object))
        scores = evaluate(model, X_test, y_test)
        curve.append({"round": number, "labelled": len(labelled), "accuracy": scores["accuracy"], "f1": scores["f1"]})
        if chosen is None or not chosen.picks:
            break
        labelled.update({pick.pool_id: truth[pick.pool_id] for pick in chosen.picks})
    return {
        "curve": curve, "strategy": strategy, "seed": seed, "pool": str(source), "label_column": label_column,
        "rounds": len(curve) - 1, "batch": batch, "per_class": per_class, "threshold": threshold,
        "initial": initial, "test_fraction": test_fraction, "held_out": len(held_out),
        "queryable": len(queryable), "classes": [str(c) for c in classes],
    }

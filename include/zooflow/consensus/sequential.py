"""How many votes, in the order they came, each item needed before its label was clear.

A subject can be retired as soon as its answer is clear, and the votes it would still have received go
to the next batch. Replaying each item's votes in time order, the label and its confidence are known
after every vote: the first vote after which the confidence reaches the threshold (with at least
``min_votes``) is where the item could have been retired. One pass over all votes, vectorised: votes
grouped by item (stable, so each group stays in time order), a running sum of each vote's evidence per
group, and the first qualifying vote of each group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Score = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (evidence so far n x K, votes so far n) -> probabilities


@dataclass
class Replay:
    """Per item (by item code, items without votes included): the label and confidence after all its
    votes and, when it reached the threshold, after the vote that did (``used`` votes)."""

    label: np.ndarray  # class code after all votes (-1: no votes)
    confidence: np.ndarray
    votes: np.ndarray
    used: np.ndarray  # votes until clear; all of them when never clear
    clear: np.ndarray  # reached the confidence with at least min_votes
    label_used: np.ndarray  # the label held at that point (= label when never clear)
    confidence_used: np.ndarray


def replay(item: np.ndarray, evidence: np.ndarray, score: Score, n_items: int, *,
           confidence: float | None = None, min_votes: int = 1) -> Replay:
    """Replay votes (``item`` codes in time order, each vote's ``evidence`` row) item by item.

    ``score`` turns an item's summed evidence after n votes into class probabilities: shares of the
    votes for a majority, a posterior for a skill model. Without ``confidence`` nothing is clear
    early and ``used`` is every vote.
    """
    k = evidence.shape[1]
    label = np.full(n_items, -1, dtype=np.int64)
    conf = np.zeros(n_items)
    votes = np.bincount(item, minlength=n_items)
    used, clear = votes.copy(), np.zeros(n_items, dtype=bool)
    label_used, conf_used = label.copy(), conf.copy()
    if not len(item):
        return Replay(label, conf, votes, used, clear, label_used, conf_used)
    order = np.argsort(item, kind="stable")
    grouped = item[order]
    running = np.cumsum(evidence[order], axis=0)
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, len(grouped)])
    group = np.repeat(np.arange(len(starts)), sizes)
    before = np.zeros((len(starts), k))
    before[1:] = running[starts[1:] - 1]
    running -= before[group]
    count = np.arange(len(grouped)) - starts[group] + 1
    probabilities = score(running, count)
    best, top = probabilities.argmax(axis=1), probabilities.max(axis=1)
    items = grouped[starts]
    last = starts + sizes - 1
    label[items], conf[items] = best[last], top[last]
    label_used[items], conf_used[items] = best[last], top[last]
    if confidence is not None:
        ok = (count >= min_votes) & (top >= confidence)
        first = np.minimum.reduceat(np.where(ok, np.arange(len(grouped)), len(grouped)), starts)
        reached = first < len(grouped)
        at = first[reached]
        hit = items[reached]
        clear[hit], used[hit] = True, count[at]
        label_used[hit], conf_used[hit] = best[at], top[at]
    return Replay(label, conf, votes, used, clear, label_used, conf_used)


def vote_shares(running: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The majority's score: each class's share of the votes so far (ties: the first class)."""
    return running / count[:, None]


def softmax_from(log_prior: np.ndarray) -> Score:
    """A skill model's score: the posterior from the class prior and the summed log-likelihoods."""
    def score(running: np.ndarray, count: np.ndarray) -> np.ndarray:
        logits = running + log_prior
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)
    return score

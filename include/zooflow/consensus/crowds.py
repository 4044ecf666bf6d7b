"""Simulated crowds with a known truth, to measure consensus methods against it.

Volunteers differ, and the published results on skill weighting rest on that: careful ones, middling
ones, random clickers, and some who favour one answer. A crowd here is a mix of those profiles; how much
each volunteer classifies follows a heavy tail (a few make most classifications, many make a handful),
as on Zooniverse. Each item gets ``votes_per_item`` votes from volunteers drawn by their activity, never
the same volunteer twice on one item, arriving interleaved with the other items' votes; a share of the votes is made without logging in
(one pooled volunteer, as zooflow reads them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zooflow.consensus.votes import ANONYMOUS, Votes

# profile -> (share of right answers when not biased, share of answers going to the favoured class)
PROFILES = {"careful": (0.95, 0.0), "middling": (0.70, 0.0), "random": (None, 0.0), "biased": (0.70, 0.6)}
# mix name -> share of volunteers per profile
SKILL_MIXES = {
    "mostly careful": {"careful": 0.6, "middling": 0.3, "random": 0.05, "biased": 0.05},
    "mixed": {"careful": 0.3, "middling": 0.4, "random": 0.15, "biased": 0.15},
    "noisy": {"careful": 0.15, "middling": 0.35, "random": 0.3, "biased": 0.2},
}


@dataclass
class Crowd:
    votes: Votes
    truth: np.ndarray  # class code per item code
    profiles: list[str]  # per worker code (the pooled anonymous volunteer is "anonymous")


def simulate_crowd(*, items: int = 2000, volunteers: int = 300, votes_per_item: int = 15, classes: int = 3,
                   mix: str = "mixed", anonymous_share: float = 0.1, seed: int = 0) -> Crowd:
    """A crowd of ``volunteers`` in the ``mix`` of profiles voting on ``items`` with a known truth."""
    if mix not in SKILL_MIXES:
        raise ValueError(f"unknown skill mix {mix!r}; use one of {', '.join(SKILL_MIXES)}")
    rng = np.random.default_rng(seed)
    names, shares = zip(*SKILL_MIXES[mix].items())
    profile = rng.choice(len(names), size=volunteers, p=np.array(shares) / sum(shares))
    favourite = rng.integers(0, classes, volunteers)
    activity = rng.pareto(1.2, volunteers) + 0.05
    activity /= activity.sum()
    truth = rng.integers(0, classes, items)
    per_item = min(votes_per_item, volunteers)
    who = np.stack([rng.choice(volunteers, size=per_item, replace=False, p=activity) for _ in range(items)])
    item = np.repeat(np.arange(items), per_item)
    worker = who.ravel()
    label = answer_votes(rng, truth[item], profile[worker], favourite[worker], names, classes)
    anonymous = rng.random(len(item)) < anonymous_share
    order = rng.permutation(len(item))  # the time order: votes on all items interleaved
    worker_names = np.where(anonymous, ANONYMOUS, worker.astype(str))
    votes = Votes.from_arrays(item[order].astype(str), worker_names[order], label[order].astype(str),
                              classes=[str(c) for c in range(classes)])
    item_truth = truth[np.array([int(name) for name in votes.items])]
    by_worker = {str(w): names[profile[w]] for w in range(volunteers)} | {ANONYMOUS: "anonymous"}
    return Crowd(votes, item_truth, [by_worker[name] for name in votes.workers])


def answer_votes(rng: np.random.Generator, truth: np.ndarray, profile: np.ndarray, favourite: np.ndarray,
             names: tuple[str, ...], classes: int) -> np.ndarray:
    """Each vote's answer by its volunteer's profile: right with the profile's accuracy, else another
    class at random; a random clicker picks any class; a biased one picks the favourite first."""
    accuracy = np.array([PROFILES[n][0] if PROFILES[n][0] is not None else 1.0 / classes for n in names])[profile]
    bias = np.array([PROFILES[n][1] for n in names])[profile]
    wrong = (truth + rng.integers(1, classes, len(truth))) % classes
    answer = np.where(rng.random(len(truth)) < accuracy, truth, wrong)
    random_click = np.array([PROFILES[n][0] is None for n in names])[profile]
    answer = np.where(random_click, rng.integers(0, classes, len(truth)), answer)
    return np.where(rng.random(len(truth)) < bias, favourite, answer)

"""One label per item from its votes, by plain majority or by volunteer skill, and the votes it needed.

``majority``: the most frequent answer, its share of the votes as the confidence (the founding scripts'
rule, and panoptes_aggregation's question reducer). ``weighted``: Dawid–Skene (``zooflow.consensus.skills``),
the posterior of the most probable class as the confidence. With ``retire_confidence``, each item's
votes are replayed in time order (``zooflow.consensus.sequential``) to find how many it took to reach
that confidence with at least ``min_votes``: the item could have been retired there, and the label is
the one held at that point. Items with a known (gold) label keep it.

``retire_confidence="auto"`` (weighted only) asks for no number: it retires an item once its posterior
is as high as the accuracy a plain majority of the workflow's full count of votes would reach with
this crowd (``majority_accuracy``, from the fitted skills), so early retirement keeps the count rule's
accuracy whatever the crowd, and spends fewer votes where volunteers are good. The replay uses skills
fitted on all the votes, later ones included; a live deployment fits on the votes so far, which
``benchmarks/bench_consensus.py`` measures separately (a few tenths of a point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zooflow.consensus.sequential import Replay, replay, softmax_from, vote_shares
from zooflow.consensus.skills import SkillModel, fit_skills
from zooflow.consensus.votes import Votes
from zooflow.errors import ConfigurationError

METHODS = ("majority", "weighted")
AUTO = "auto"  # the retire confidence that matches a full-count majority's accuracy
COLUMNS = ("subject_id", "label", "confidence", "votes", "votes_used", "retire", "gold")


@dataclass
class Consensus:
    """Labels per item, the replay that says how many votes each needed, and the skill model if any."""

    method: str
    votes: Votes
    replay: Replay
    model: SkillModel | None
    retire_confidence: float | None  # the threshold used (the estimate, for "auto")
    min_votes: int
    gold: dict[str, str]
    retire_rule: str | None = None  # how the threshold was chosen, for "auto"

    def rows(self) -> list[dict[str, Any]]:
        """One row per item with votes, in item order: the ``COLUMNS`` of ``LABELS.csv``."""
        r, classes, out = self.replay, self.votes.classes, []
        for code, item in enumerate(self.votes.items):
            if r.votes[code] == 0:
                continue
            known = self.gold.get(item)
            out.append({
                "subject_id": item,
                "label": known if known is not None else classes[r.label_used[code]],
                "confidence": 1.0 if known is not None else round(float(r.confidence_used[code]), 6),
                "votes": int(r.votes[code]),
                "votes_used": int(r.votes[code] if known is not None else r.used[code]),
                "retire": bool(r.clear[code]) and known is None,
                "gold": known is not None,
            })
        return out

    def summary(self) -> dict[str, Any]:
        rows = self.rows()
        votes_all, votes_used = sum(r["votes"] for r in rows), sum(r["votes_used"] for r in rows)
        labels: dict[str, int] = {}
        for row in rows:
            labels[row["label"]] = labels.get(row["label"], 0) + 1
        summary = {
            "method": self.method, "subjects": len(rows), "votes": votes_all, "votes_used": votes_used,
            "votes_saved_share": round(1 - votes_used / votes_all, 4) if votes_all else 0.0,
            "volunteers": len(self.votes.workers), "labels": dict(sorted(labels.items())),
            "retire_confidence": self.retire_confidence, "retire_rule": self.retire_rule, "min_votes": self.min_votes,
            "retired_early": sum(r["retire"] for r in rows), "gold_subjects": sum(r["gold"] for r in rows),
            "skipped": dict(self.votes.skipped),
        }
        if self.model is not None:
            accuracy = self.model.worker_accuracy
            summary |= {"iterations": self.model.iterations, "converged": self.model.converged,
                        "volunteer_accuracy_quartiles": [round(float(q), 3) for q in
                                                         np.quantile(accuracy, [0.25, 0.5, 0.75])]}
        return summary

    def labels(self, *, min_confidence: float = 0.0) -> dict[str, str]:
        """Item -> label for items with at least ``min_votes`` votes (or clear early, or gold) and at
        least ``min_confidence``: what a learner may be taught."""
        return {row["subject_id"]: row["label"] for row in self.rows()
                if row["gold"] or row["retire"]
                or (row["votes"] >= self.min_votes and row["confidence"] >= min_confidence)}


def consensus(votes: Votes, *, method: str = "weighted", gold: dict[str, str] | None = None,
              retire_confidence: float | str | None = None, min_votes: int = 1, prior_strength: float = 5.0,
              retire_count: int | None = None) -> Consensus:
    """Labels for ``votes`` by ``method``; ``gold`` adds known labels to the export's gold-standard ones.

    :param retire_confidence: a probability, or ``"auto"`` (weighted only): the accuracy a majority of
        ``retire_count`` votes (default: the median votes per item) would reach with this crowd.
    """
    if method not in METHODS:
        raise ConfigurationError(f"unknown consensus method {method!r}; use one of {', '.join(METHODS)}")
    auto = retire_confidence == AUTO
    if auto and method != "weighted":
        raise ConfigurationError("retire confidence 'auto' needs the weighted method (the volunteers' skills)")
    if retire_confidence is not None and not auto and not (
            isinstance(retire_confidence, (int, float)) and 0 < retire_confidence <= 1):
        raise ConfigurationError(f"retire confidence is a probability in (0, 1] or 'auto', not {retire_confidence!r}")
    if min_votes < 1:
        raise ConfigurationError(f"min_votes must be at least 1, not {min_votes}")
    known = {**votes.gold, **(gold or {})}
    k = len(votes.classes)
    rule = None
    if method == "majority":
        model, evidence, score = None, np.eye(k)[votes.label], vote_shares
    else:
        model = fit_skills(votes, gold=known, prior_strength=prior_strength)
        evidence, score = model.evidence(votes), softmax_from(np.log(model.class_prior))
        if auto:
            count = retire_count or max(int(np.median(votes.counts()[votes.counts() > 0])), 1)
            retire_confidence = majority_accuracy(model, votes, count)
            rule = f"auto: a majority of {count} votes from this crowd is right {retire_confidence:.4f} of the time"
    played = replay(votes.item, evidence, score, len(votes.items), confidence=retire_confidence, min_votes=min_votes)
    return Consensus(method, votes, played, model, retire_confidence, min_votes, known, rule)


def majority_accuracy(model: SkillModel, votes: Votes, count: int, *, samples: int = 20_000, seed: int = 0) -> float:
    """How often a plain majority of ``count`` votes is right with this crowd: items drawn from the
    class prior, their voters drawn as often as each voted, answers from the voters' fitted confusion
    rows, ties broken at random. The accuracy the workflow's count rule buys, by simulation."""
    rng = np.random.default_rng(seed)
    k = len(votes.classes)
    truth = rng.choice(k, size=samples, p=model.class_prior / model.class_prior.sum())
    voters = votes.worker[rng.integers(0, len(votes.worker), size=(samples, count))]
    rows = np.cumsum(model.confusion[voters, truth[:, None], :], axis=2)
    answers = (rows < rng.random((samples, count, 1)) * rows[..., -1:]).sum(axis=2).clip(max=k - 1)
    tally = np.stack([(answers == c).sum(axis=1) for c in range(k)], axis=1) + rng.random((samples, k)) * 0.5
    return float((tally.argmax(axis=1) == truth).mean())

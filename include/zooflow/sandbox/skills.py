"""How well each simulated volunteer answers, and which subjects carry the owner's gold standard.

A volunteer follows one skill profile:

- ``plain``: wrong with probability ``volunteer_error_rate`` (the setting), as every volunteer did before profiles;
- ``careful``: wrong with probability 0.03;
- ``middling``: wrong with probability 0.2;
- ``random``: any answer, uniformly at random, whatever the truth;
- ``biased``: its favourite answer with probability 0.6, otherwise like a middling volunteer.

A wrong answer is one of the other answers, uniformly. ``volunteer_skills`` maps profiles to shares of
the logged-in accounts (``"mixed"`` is a preset); accounts get their profile in login order, in blocks
sized by the shares (largest remainders), so ``volunteer-01`` keeps its profile across runs. The k-th
biased account (from 0) favours answer k, modulo the question's answer count, so biased volunteers
disagree with each other. Not-logged-in classifications are pooled, as zooflow pools them, and follow
``anonymous_skill`` (a biased anonymous crowd favours the first answer). Unset, everyone is ``plain``.

``gold_standard_fraction`` of a workflow's subjects, chosen by a hash of the subject id (stable across
runs and sandboxes), get one classification by the project's owner with the true answer and
``gold_standard`` true, as a project expert makes them in Panoptes.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any, Optional

PROFILES = ("plain", "careful", "middling", "random", "biased")
ERROR_RATES = {"careful": 0.03, "middling": 0.2, "biased": 0.2}
FAVOUR_RATE = 0.6  # how often a biased volunteer picks its favourite, whatever the truth
PRESETS = {"mixed": {"careful": 0.3, "middling": 0.4, "random": 0.1, "biased": 0.2}}


@dataclass(frozen=True)
class Skill:
    profile: str
    error_rate: Optional[float]  # None: answers uniformly at random
    favourite: Optional[int] = None  # biased only: the answer index favoured (modulo the answer count)

    def describe(self) -> dict[str, Any]:
        return {"profile": self.profile, "error_rate": self.error_rate,
                "favour_rate": FAVOUR_RATE if self.favourite is not None else None, "favourite": self.favourite}


def skill(profile: str, plain_error_rate: float, favourite: int = 0) -> Skill:
    if profile == "random":
        return Skill(profile, None)
    if profile == "plain":
        return Skill(profile, plain_error_rate)
    return Skill(profile, ERROR_RATES[profile], favourite if profile == "biased" else None)


def block_sizes(shares: dict[str, float], count: int) -> list[tuple[str, int]]:
    """How many of ``count`` accounts get each profile: the shares' floors, then the largest remainders
    (ties to the profile listed first in ``PROFILES``)."""
    total = sum(shares.values())
    ordered = [p for p in PROFILES if p in shares]
    exact = {p: shares[p] / total * count for p in ordered}
    sizes = {p: math.floor(exact[p]) for p in ordered}
    for p in sorted(ordered, key=lambda p: -(exact[p] - sizes[p]))[:count - sum(sizes.values())]:
        sizes[p] += 1
    return [(p, sizes[p]) for p in ordered]


def assign(count: int, shares: Optional[dict[str, float]], plain_error_rate: float) -> list[Skill]:
    """The skills of accounts 1..``count`` in login order."""
    if not shares:
        return [skill("plain", plain_error_rate)] * count
    skills: list[Skill] = []
    biased = 0
    for profile, size in block_sizes(shares, count):
        for _ in range(size):
            skills.append(skill(profile, plain_error_rate, biased))
            biased += profile == "biased"
    return skills


def answer(rng: random.Random, who: Skill, labels: list[str], truth: Optional[str]) -> int:
    """The answer index ``who`` gives when the true label is ``truth`` (unknown: at random)."""
    if who.favourite is not None and rng.random() < FAVOUR_RATE:
        return who.favourite % len(labels)
    if truth not in labels or who.error_rate is None:
        return rng.randrange(len(labels))
    if rng.random() >= who.error_rate or len(labels) == 1:
        return labels.index(truth)
    return rng.choice([i for i, label in enumerate(labels) if label != truth])


def is_gold(subject_id: int, fraction: float) -> bool:
    """Whether the subject is among the ``fraction`` the owner classified as gold standard."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"zooflow-sandbox-gold:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction

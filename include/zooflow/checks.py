"""The result of one look at Panoptes by a sensor: done or not, and what was seen.

Sensors and their trigger run these checks by dotted name, so the same library function decides
in a worker (poke), in the triggerer (deferred) and in the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from zooflow.errors import ZooflowError


class WaitEnded(ZooflowError):
    """What a check waits for has ended without success (an export marked ``failed``) and never will
    be done: the wait stops at once, without retries, with this message."""


@dataclass(frozen=True)
class Check:
    done: bool
    state: str  # a word for logs and timeout messages: "creating", "12 of 20 retired", ...
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

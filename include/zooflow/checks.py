"""The result of one look at Panoptes by a sensor: done or not, and what was seen.

Sensors and their trigger run these checks by dotted name, so the same library function decides
in a worker (poke), in the triggerer (deferred) and in the CLI. A trigger's arguments are read back
from Airflow's database, so :func:`check_function` resolves only names inside zooflow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


def check_function(dotted: str) -> Callable[..., Check]:
    """The zooflow function ``dotted`` names ("zooflow.retirement.batch_retired_check"); any name
    outside the ``zooflow`` package is refused, so a stored trigger cannot run arbitrary code."""
    module, _, name = dotted.rpartition(".")
    if not (module == "zooflow" or module.startswith("zooflow.")) or not name:
        raise ValueError(f"{dotted!r} is not a zooflow check (a dotted path inside the zooflow package)")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ValueError(f"{dotted!r} names no function")
    return function

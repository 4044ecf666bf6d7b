"""The round settings a person may change for one run, written once for the form, the operators and the CLI.

The AL config file holds every setting; these few are the ones the trigger form and ``zooflow al
round`` flags put on top of it for a single run. One list means a setting added here is offered
everywhere, and an override never reaches a setting that is not meant to be overridden. This module
stays light (no model or image libraries) because the DAG file imports it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zooflow.al.learner import STRATEGIES
from zooflow.retirement import MODES


@dataclass(frozen=True)
class RunSetting:
    """One overridable setting: its name in the config, its type, and what it means."""

    name: str
    kind: type
    help: str
    choices: tuple[str, ...] | None = None


RUN_SETTINGS = (
    RunSetting("k", int, "most informative items"),
    RunSetting("m", int, "high-probability items per class"),
    RunSetting("threshold", float, "probability threshold"),
    RunSetting("strategy", str, "query strategy", STRATEGIES),
    RunSetting("seed", int, "random seed"),
    RunSetting("retirement_mode", str, "when the current batch counts as retired", MODES),
)
RUN_SETTING_NAMES = tuple(setting.name for setting in RUN_SETTINGS)


def run_overrides(values: dict[str, Any] | None) -> dict[str, Any]:
    """The overridable settings among ``values`` (a form's or the CLI's); anything else is dropped."""
    return {name: value for name, value in (values or {}).items() if name in RUN_SETTING_NAMES}

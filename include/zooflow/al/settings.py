"""The round settings a person may change for one run, written once for the form, the operators and the CLI.

The AL config file holds every setting; these few are the ones the trigger form and ``zooflow al
round`` flags put on top of it for a single run. One list means a setting added here is offered
everywhere, and an override never reaches a setting that is not meant to be overridden. This module
stays light (no model or image libraries) because the DAG file imports it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zooflow.al.strategies import STRATEGIES
from zooflow.consensus import confidence
from zooflow.retirement_modes import MODES


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
    RunSetting("refill_below", int, "start the next round once fewer of the batch's subjects are unretired"),
    RunSetting("explore_fraction", float, "random items added to each batch, as a share of k + m"),
    RunSetting("consensus", str, "how votes become labels", ("majority", "weighted")),
    RunSetting("retire_confidence", confidence, "retire a subject early once its label is this clear "
                                                "(a probability, or auto: as sure as the full count makes a majority)"),
)
CONSENSUS_METHODS = next(s.choices for s in RUN_SETTINGS if s.name == "consensus")
RUN_SETTING_NAMES = tuple(setting.name for setting in RUN_SETTINGS)


def run_overrides(values: dict[str, Any] | None) -> dict[str, Any]:
    """The overridable settings among ``values`` (a form's or the CLI's); anything else is dropped."""
    return {name: value for name, value in (values or {}).items() if name in RUN_SETTING_NAMES}


def config_cadence(path: Path | None) -> str | None:
    """The ``cadence`` an AL config file sets (the AL DAG's own schedule, read when the DAG is parsed),
    or None: no file, a file not there (the round says so when it runs), or no cadence in it."""
    from zooflow.config_files import load_mapping
    from zooflow.errors import ConfigurationError

    if path is None or not Path(path).is_file():
        return None
    cadence = load_mapping(path, "active-learning config").get("cadence")
    if cadence is not None and not (isinstance(cadence, str) and cadence.strip()):
        raise ConfigurationError(f"cadence in {path} must be a cron expression or preset such as "
                                 f"'*/15 * * * *' or '@hourly', not {cadence!r}")
    return cadence.strip() if cadence else None

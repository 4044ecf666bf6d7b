"""Finding a project's own code (an estimator, a renderer) from a dotted name in its settings.

DAG Params and CLI flags can only carry text, so a project names its callable as
``package.module:name`` or ``package.module.Name``; a typo should say what to fix, not raise an
``ImportError`` from deep inside a task.
"""

from __future__ import annotations

import importlib
from typing import Any

from zooflow.errors import ConfigurationError


def import_object(dotted: str, what: str) -> Any:
    """The object ``dotted`` names (``module:attr`` or ``module.attr``); ``what`` goes into errors."""
    text = str(dotted).strip()
    module_name, sep, attr = text.partition(":")
    if not sep:
        module_name, _, attr = text.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(
            f"{what} {dotted!r} is not a dotted name; write it as package.module:name or package.module.Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{what} {dotted!r}: cannot import module {module_name!r} ({exc}); install it or fix the name") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"{what} {dotted!r}: module {module_name!r} has no {attr!r}; fix the name") from None
    if not callable(target):
        raise ConfigurationError(f"{what} {dotted!r} is not callable; name a function or a class")
    return target

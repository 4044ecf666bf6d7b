"""Turning zooflow's errors into Airflow's task outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException

from zooflow.errors import ConfigurationError


@contextmanager
def fail_fast_on_bad_config() -> Iterator[None]:
    """A wrong slug or a missing setting will not fix itself: fail now instead of retrying."""
    try:
        yield
    except ConfigurationError as exc:
        raise AirflowFailException(str(exc)) from exc

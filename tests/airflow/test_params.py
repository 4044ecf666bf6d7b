"""as_bool: the one reading of a templated boolean argument (dry_run, request_new)."""

from __future__ import annotations

import pytest

from zooflow.airflow.params import as_bool


@pytest.mark.parametrize("value", [True, "True", "true", " TRUE ", "1", "yes", "on"])
def test_true(value) -> None:
    assert as_bool(value) is True


@pytest.mark.parametrize("value", [False, None, "False", "false", "", "0", "no", "off"])
def test_false(value) -> None:
    assert as_bool(value) is False


def test_a_word_that_is_no_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        as_bool("maybe")

"""check_function: sensors and triggers run checks by dotted name, and only zooflow's own."""

from __future__ import annotations

import pytest

from zooflow.checks import check_function
from zooflow.retirement import batch_retired_check


def test_a_zooflow_check_resolves() -> None:
    assert check_function("zooflow.retirement.batch_retired_check") is batch_retired_check


@pytest.mark.parametrize("dotted", ["os.system", "zooflowx.evil.run", "builtins.exec", "system"])
def test_a_name_outside_zooflow_is_refused(dotted: str) -> None:
    with pytest.raises(ValueError, match="not a zooflow check"):
        check_function(dotted)


def test_a_name_that_is_no_function_is_refused() -> None:
    with pytest.raises(ValueError, match="names no function"):
        check_function("zooflow.retirement.nothing_here")

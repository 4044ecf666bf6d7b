"""The fault-injection suite's world and its table.

Every test here injects one fault or feeds one bad input, asserts that the run ends well (or fails
with a message naming the problem and the fix) and that nothing was lost or duplicated, then adds a
row to the table printed at the end of the run: what was tried, what the user saw, what was lost.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass

import pytest

from support.dag_runs import load_dag
from support.digits_world import digits_world


@dataclass(frozen=True)
class Row:
    kind: str
    tried: str
    seen: str
    lost: str


_ROWS: list[Row] = []


@pytest.fixture()
def table():
    """Adds a row once the test has proved it; a failing test adds nothing."""

    def record(kind: str, tried: str, seen: str, lost: str = "nothing") -> None:
        _ROWS.append(Row(kind, tried, " ".join(str(seen).split())[:240], lost))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _ROWS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("faults and bad input: what was tried, what the user saw, what was lost")
    widths = (11, 44, 70, 12)
    header = ("kind", "tried", "what the user saw", "lost")
    write(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    write("-+-".join("-" * w for w in widths))
    for row in _ROWS:
        cells = [textwrap.wrap(text, width) or [""] for text, width in zip((row.kind, row.tried, row.seen, row.lost), widths)]
        for line in range(max(len(c) for c in cells)):
            write(" | ".join((c[line] if line < len(c) else "").ljust(w) for c, w in zip(cells, widths)))
    write(f"{len(_ROWS)} faults and bad inputs tried; lost or duplicated: "
          f"{sum(not row.lost.startswith('nothing') for row in _ROWS)}")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The digits world with the demo project's subjects classified too, for the exports."""
    with digits_world(tmp_path_factory.mktemp("faults"), demo_subjects=12, classifications=30) as world:
        yield world


@pytest.fixture()
def env(world, monkeypatch):
    """The world in the DAG runs' environment, and the sandbox with no fault left set."""
    world.use_in_dag_runs(monkeypatch)
    world.admin.configure(export_stuck=False, fault_rate=0.0, fail_next=[], drop_download_after_bytes=None,
                          drop_download_count=None, latency_ms=0, token_lifetime=7200, download_rate_mb_s=None)
    yield world
    world.admin.configure(export_stuck=False, fault_rate=0.0, fail_next=[], drop_download_after_bytes=None,
                          latency_ms=0, token_lifetime=7200, download_rate_mb_s=None)


@pytest.fixture()
def load(dags_folder, airflow_db):
    """``load(name)``: a fresh DAG from the real dags/ folder (support.dag_runs.load_dag)."""
    return functools.partial(load_dag, dags_folder)

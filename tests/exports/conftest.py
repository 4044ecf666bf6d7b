"""The exports tests' table of what was compared with panoptes-aggregation (test_flatten_reference.py)."""

from __future__ import annotations

from reference_compare import SUMMARY

from support.reference import LAST_BUILD, VENV


def pytest_terminal_summary(terminalreporter) -> None:
    if not SUMMARY:
        return
    write = terminalreporter.write_line
    terminalreporter.section("zooflow's flatten against panoptes-aggregation 5.3.1: what was compared")
    widths = (38, 8, 6, 6, 8)
    header = ("fixture", "classif.", "tasks", "marks", "extracts")
    write(" | ".join(h.ljust(w) for h, w in zip(header, widths)) + " | reference faults and gaps")
    write("-+-".join("-" * w for w in widths) + "-+-" + "-" * 40)
    for tally in SUMMARY:
        cells = (tally.fixture, len(tally.classifications), len(tally.tasks), len(tally.marks), tally.extracts)
        notes = [f"{n}x {why}" for why, n in {**tally.faults, **tally.gaps}.items()] + ([tally.note] if tally.note else [])
        notes = notes or ["none"]
        write(" | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " | " + notes[0])
        for note in notes[1:]:
            write(" | ".join("".ljust(w) for w in widths) + " | " + note)
    state = LAST_BUILD.get("state", "not used")
    took = f" in {LAST_BUILD['seconds']} s" if state == "built" else ""
    write(f"reference environment {VENV.name}: {state}{took}; faults: the reference fails on valid input "
          "(allowed only where the input has what triggers it); gaps: what it does not read, checked otherwise")

"""Progress lines come at a steady pace, in the unit of the work, and always at the end."""

from __future__ import annotations

from zooflow.progress import ProgressLog


def test_lines_are_spaced_by_the_interval_and_the_last_one_always_comes() -> None:
    lines: list[str] = []
    progress = ProgressLog("round 3 upload", every=10.0, emit=lines.append, unit="subjects")
    for done, elapsed in [(1, 1.0), (2, 5.0), (5, 10.5), (6, 12.0), (9, 20.6)]:
        progress(done, 22, elapsed)
    progress(22, 22, 21.0, final=True)
    assert lines == [
        "round 3 upload: 5 of 22 subjects (23%), 0.5 subjects/s, ETA 36 s",
        "round 3 upload: 9 of 22 subjects (41%), 0.4 subjects/s, ETA 30 s",
        "round 3 upload: 22 of 22 subjects (100%), 1.0 subjects/s, ETA 0 s",
    ]


def test_bytes_are_shown_in_megabytes_and_an_unknown_total_has_no_eta() -> None:
    lines: list[str] = []
    progress = ProgressLog("classifications", every=5.0, emit=lines.append)
    progress(12_000_000, 48_000_000, 6.0)
    progress(30_000_000, None, 12.0)
    assert lines == ["classifications: 12.0 of 48.0 MB (25%), 2.0 MB/s, ETA 18 s",
                     "classifications: 30.0 MB, 2.5 MB/s"]

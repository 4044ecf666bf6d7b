"""The connection check's lines when Panoptes' counters disagree, as they do for minutes after a link."""

from __future__ import annotations

from zooflow.projects import format_report


def _report(subjects: int, retired: int) -> dict:
    return {"project": {"id": 1, "slug": "o/p", "display_name": "P", "private": True},
            "workflows": [{"id": 2, "display_name": "W", "subjects_count": subjects, "fully_retired": False,
                           "retired_set_member_subjects_count": retired, "completeness": 0.0,
                           "classifications_count": 45}]}


def test_more_retired_than_counted_is_explained_as_counters_catching_up() -> None:
    (_, line) = format_report(_report(subjects=0, retired=11))
    assert "11 of 0 subjects retired" in line and "Panoptes' counters are still catching up" in line


def test_settled_counters_are_shown_plainly() -> None:
    (_, line) = format_report(_report(subjects=20, retired=11))
    assert "11 of 20 subjects retired" in line and "catching up" not in line

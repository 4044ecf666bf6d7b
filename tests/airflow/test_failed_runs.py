"""The Zooniverse page's failed runs, as far as plain Python decides them: which exception line a task's
structured log gives, and how a failure is shown (escaped, with its run id and failing task)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from zooflow.airflow.failed_runs import FailedRun, error_line, render_failed_runs

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def raised(exc_type: str, value: str) -> list[dict]:
    """``error_detail`` as Airflow's supervisor stores it: the raised exception first, then its cause."""
    return [{"exc_type": exc_type, "exc_value": value, "frames": [], "is_cause": False},
            {"exc_type": "KeyError", "exc_value": "'slug'", "frames": [], "is_cause": True}]


def test_the_last_exception_of_the_log_is_the_error_line() -> None:
    messages = [{"event": "starting"},
                {"event": "Task failed with exception", "error_detail": raised("ValueError", "first try")},
                {"event": "retrying"},
                {"event": "Task failed with exception",
                 "error_detail": raised("AirflowFailException", "project 'nobody/x' was not found\nmore detail")}]
    assert error_line(messages) == "AirflowFailException: project 'nobody/x' was not found"
    assert error_line([{"event": "ok"}, {"event": "odd", "error_detail": "not a list"}]) is None
    assert error_line([{"event": "bare", "error_detail": [{"exc_type": "SystemExit", "exc_value": ""}]}]) == "SystemExit"


def test_failed_runs_are_listed_escaped_with_their_run_and_task() -> None:
    runs = [FailedRun("zooniverse_exports", "manual__2026-03-01T10:00:00+00:00", NOW - timedelta(minutes=5),
                      "request_exports", 1, "ConfigurationError: project '<b>x</b>' was not found"),
            FailedRun("zooniverse_active_learning", "r&d", None, None, None, "no task failed")]
    html = render_failed_runs(runs, NOW)
    assert html.count('<tr class="failed"') == 2
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html and "r&amp;d" in html
    assert '<code class="sub">manual__2026-03-01T10:00:00+00:00</code>' in html and "<a " not in html
    assert "5 min ago" in html and "request_exports (try 1)" in html
    assert "No recent run of the zooflow DAGs failed." in render_failed_runs([], NOW)

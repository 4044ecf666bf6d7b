"""PanoptesCheckTrigger: serialize round trip, and its events against the sandbox (with the export check)."""

from __future__ import annotations

import asyncio
import time

import pytest
from airflow.sdk.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import TriggerEvent

from zooflow.airflow.triggers.panoptes import PanoptesCheckTrigger
from zooflow.exports.export_requests import ExportTarget, describe, request_export
from zooflow.panoptes import connect

TARGET = {"resource": "project", "resource_id": 1, "export_type": "workflows"}


CHECK = "zooflow.exports.export_requests.export_ready_check"


def export_trigger(requested_at: str, end_time: float, **kwargs) -> PanoptesCheckTrigger:
    return PanoptesCheckTrigger(check=CHECK, check_kwargs={"target": TARGET, "requested_at": requested_at},
                                end_time=end_time, **kwargs)


def first_event(trigger: PanoptesCheckTrigger) -> TriggerEvent:
    return asyncio.run(anext(trigger.run()))


def test_serialize_round_trip_holds_no_secret() -> None:
    trigger = export_trigger("2026-01-01T00:00:00+00:00", 123.5, zooniverse_conn_id="zoo", poll_interval=2.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "zooflow.airflow.triggers.panoptes.PanoptesCheckTrigger"
    rebuilt = import_string(classpath)(**deserialize(serialize(kwargs)))  # what the triggerer does
    assert rebuilt.serialize() == (classpath, kwargs)
    assert set(kwargs) == {"check", "check_kwargs", "end_time", "zooniverse_conn_id", "poll_interval"}
    assert kwargs["check_kwargs"] == {"target": TARGET, "requested_at": "2026-01-01T00:00:00+00:00"}


@pytest.fixture()
def requested(zooniverse_conn, demo_sandbox, tmp_path):
    demo_sandbox.admin.configure(export_delay=0.5, export_stuck=False)
    demo_sandbox.admin.advance_clock(hours=25)
    with connect(zooniverse_conn):
        outcome = request_export(ExportTarget(**TARGET), tmp_path / "last_request.json")
    yield outcome
    with connect(zooniverse_conn):  # let the build finish before the next test moves the clock
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and describe(ExportTarget(**TARGET)).state == "creating" and outcome.action == "requested":
            time.sleep(0.1)


def test_fires_success_once_the_export_is_built(requested) -> None:
    assert requested.action == "requested"
    event = first_event(export_trigger(requested.requested_at, time.time() + 30, poll_interval=0.2))
    assert event.payload["status"] == "success" and event.payload["done"] is True
    assert event.payload["detail"]["media_id"] == requested.media_id
    assert event.payload["detail"]["updated_at"] > requested.requested_at


def test_fires_timeout_at_its_own_end_time(zooniverse_conn, demo_sandbox, tmp_path) -> None:
    demo_sandbox.admin.configure(export_stuck=True)
    demo_sandbox.admin.advance_clock(hours=25)
    with connect(zooniverse_conn):
        stuck = request_export(ExportTarget(**TARGET), tmp_path / "stuck_request.json")
    assert stuck.action == "requested"
    started = time.monotonic()
    event = first_event(export_trigger(stuck.requested_at, time.time() + 1.0, poll_interval=0.2))
    assert event.payload == {"status": "timeout", "state": "creating"}
    assert 0.9 < time.monotonic() - started < 10
    demo_sandbox.admin.configure(export_stuck=False)


def test_fires_error_when_the_connection_is_missing(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_ZOONIVERSE_DEFAULT", raising=False)
    event = first_event(export_trigger("2026-01-01T00:00:00+00:00", time.time() + 5, poll_interval=0.2,
                                       zooniverse_conn_id="absent"))
    assert event.payload["status"] == "error" and "absent" in event.payload["message"]

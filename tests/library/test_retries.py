"""zooflow.retries: how many tries each policy makes and how long it waits in between."""

from __future__ import annotations

import pytest
import requests
from panoptes_client.panoptes import PanoptesAPIException
from tenacity import RetryError, stop_after_attempt

from zooflow.retries import (
    BLOB_UPLOAD,
    DOWNLOAD_RESUMES,
    PANOPTES_SERVER_ERRORS,
    STALE_ETAG,
    BlobRefused,
    Unfinished,
)


def waits_until_given_up(policy, failure: Exception) -> tuple[list[float], int]:
    """The waits a policy sleeps while ``failure`` keeps happening, and the tries it made."""
    slept: list[float] = []
    calls = []

    def fail() -> None:
        calls.append(1)
        raise failure

    with pytest.raises((RetryError, type(failure))):
        policy.copy(sleep=slept.append)(fail)
    return slept, len(calls)


def test_media_puts_try_four_times_doubling_from_one_second() -> None:
    assert waits_until_given_up(BLOB_UPLOAD, BlobRefused("HTTP 503")) == ([1, 2, 4], 4)
    assert waits_until_given_up(BLOB_UPLOAD, requests.ConnectionError()) == ([1, 2, 4], 4)


def test_panoptes_5xx_tries_four_times_and_other_errors_once() -> None:
    assert waits_until_given_up(PANOPTES_SERVER_ERRORS, PanoptesAPIException("Received HTTP status code 503 from API")) == ([1, 2, 4], 4)
    assert waits_until_given_up(PANOPTES_SERVER_ERRORS, PanoptesAPIException("Validation failed")) == ([], 1)


def test_downloads_wait_only_after_a_dropped_connection_and_at_most_30_seconds() -> None:
    assert waits_until_given_up(DOWNLOAD_RESUMES, Unfinished("dropped", dropped=True)) == ([0.5, 1, 2, 4, 8], 6)
    assert waits_until_given_up(DOWNLOAD_RESUMES, Unfinished("expired")) == ([0, 0, 0, 0, 0], 6)
    slept, _ = waits_until_given_up(DOWNLOAD_RESUMES.copy(stop=stop_after_attempt(10)),
                                    Unfinished("dropped", dropped=True))
    assert slept[-1] == 30


def test_a_stale_etag_is_saved_once_more_at_once() -> None:
    assert waits_until_given_up(STALE_ETAG, PanoptesAPIException("JsonApiController::PreconditionFailed")) == ([0], 2)
    assert waits_until_given_up(STALE_ETAG, PanoptesAPIException("HTTP 500")) == ([], 1)

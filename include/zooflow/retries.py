"""When zooflow tries a call to Panoptes or its blob store again, each policy named once.

Panoptes and the blob store fail now and then: a 5xx, a refused PUT, a dropped download, a 412
when a subject changed since it was read. tenacity runs the loops; a policy here says which
failures are worth another try, how many tries there are and how long to wait in between
(doubling, to give a struggling server room). Callers keep only what is theirs: what one attempt
does, and what to say when the tries run out. A policy is a ``Retrying`` to use as a decorator
(``@POLICY.wraps``) or, when an attempt must know it is a retry, as ``for attempt in POLICY.copy():``.
"""

from __future__ import annotations

import logging
import re

import requests
from panoptes_client.panoptes import PanoptesAPIException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)

UPLOAD_ATTEMPTS = 4
DOWNLOAD_ATTEMPTS = 6
SERVER_ERROR = re.compile(r"status code 5\d\d")  # how panoptes-client reports a 5xx it gave up on


class BlobRefused(Exception):
    """The blob store answered a media PUT with an error status (``HTTP 503``)."""


class Unfinished(Exception):
    """A download attempt ended short of the whole file; ``dropped`` when the connection broke."""

    def __init__(self, reason: str, *, dropped: bool = False) -> None:
        super().__init__(reason)
        self.dropped = dropped


def is_server_error(exc: BaseException) -> bool:
    return isinstance(exc, PanoptesAPIException) and SERVER_ERROR.search(str(exc)) is not None


def is_precondition_failure(exc: BaseException) -> bool:
    """A save refused because the object changed since it was read (HTTP 412, a stale ETag)."""
    text = str(exc)
    return isinstance(exc, PanoptesAPIException) and ("PreconditionFailed" in text or "HTTP 412" in text)


def _log_retry(state: RetryCallState) -> None:
    log.warning("%s; trying again in %.0f s", state.outcome.exception(), state.upcoming_sleep)


_DOUBLING_FROM_1S = wait_exponential(multiplier=1)  # 1, 2, 4 s
_DOUBLING_FROM_HALF_S_TO_30S = wait_exponential(multiplier=0.5, max=30)


def _wait_after_drop(state: RetryCallState) -> float:
    """A dropped connection waits, doubling; an expired URL or a short file resume at once."""
    dropped = getattr(state.outcome.exception(), "dropped", False)
    return _DOUBLING_FROM_HALF_S_TO_30S(state) if dropped else 0.0


# A media PUT to the blob store: any connection error or error status; RetryError when out of tries.
BLOB_UPLOAD = Retrying(retry=retry_if_exception_type((requests.RequestException, BlobRefused)),
                       stop=stop_after_attempt(UPLOAD_ATTEMPTS), wait=_DOUBLING_FROM_1S)
# A Panoptes write answered with a 5xx; any other error, and the last one, is raised as it is.
PANOPTES_SERVER_ERRORS = Retrying(retry=retry_if_exception(is_server_error), stop=stop_after_attempt(UPLOAD_ATTEMPTS),
                                  wait=_DOUBLING_FROM_1S, before_sleep=_log_retry, reraise=True)
# A resumable download: Unfinished attempts, waiting only after a dropped connection; RetryError when
# out of tries (``.copy(stop=stop_after_attempt(n))`` for another number).
DOWNLOAD_RESUMES = Retrying(retry=retry_if_exception_type(Unfinished), stop=stop_after_attempt(DOWNLOAD_ATTEMPTS),
                            wait=_wait_after_drop)
# A save refused with a stale ETag: reloaded and saved once more, at once.
STALE_ETAG = Retrying(retry=retry_if_exception(is_precondition_failure), stop=stop_after_attempt(2), reraise=True)

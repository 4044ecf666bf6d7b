"""Panoptes access: who to log in as, and a client session that survives threaded uploads.

Airflow tasks, the CLI and the tests all get their client from :func:`connect`, so a fix to login or
token handling applies everywhere at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from panoptes_client import Panoptes
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.errors import ConfigurationError, PanoptesError, PanoptesUnreachable

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://www.zooniverse.org"
# A refreshed token can itself be revoked by another thread's refresh before it is used; a few tries suffice.
REVOKED_TOKEN_RETRIES = 3


def login_hint(what: str) -> str:
    """What to add when Panoptes says a private resource does not exist.

    Panoptes reads an access token it does not know as no login at all, so a private project (and
    everything in it) answers 404 "could not find", exactly as for a wrong id.
    """
    return f"if the {what} exists, the login may have expired or been refused: check the connection's credentials"


@dataclass(frozen=True)
class PanoptesConfig:
    """Where Panoptes is and how to log in. Secrets are kept out of ``repr`` so they never reach a log."""

    endpoint: str = DEFAULT_ENDPOINT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"Panoptes endpoint {self.endpoint!r} is not an http(s) URL; "
                f"use for example {DEFAULT_ENDPOINT!r}"
            )
        # The client appends '/api/...' to the endpoint, so a trailing slash breaks every call.
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))
        if bool(self.username) != bool(self.password):
            raise ConfigurationError(
                "Panoptes login needs both a username and a password; only one was given"
            )
        if self.client_secret and not self.client_id:
            raise ConfigurationError("a Panoptes client_secret was given without its client_id")

    @property
    def identity(self) -> str:
        """Who this config logs in as, fit for logs."""
        if self.username:
            return f"user {self.username}"
        if self.client_secret:
            return f"OAuth application {self.client_id}"
        return "anonymous"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PanoptesConfig:
        """panoptes-client's own variables, so existing scripts' settings keep working."""
        return cls(
            endpoint=environ.get("PANOPTES_ENDPOINT") or DEFAULT_ENDPOINT,
            username=environ.get("PANOPTES_USERNAME") or None,
            password=environ.get("PANOPTES_PASSWORD") or None,
            client_id=environ.get("PANOPTES_CLIENT_ID") or None,
            client_secret=environ.get("PANOPTES_CLIENT_SECRET") or None,
        )

    @classmethod
    def from_connection(
        cls,
        *,
        host: str | None,
        port: int | None = None,
        login: str | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> PanoptesConfig:
        """Map the fields of a ``zooniverse`` Airflow connection.

        ``host`` may be a full URL (``http://127.0.0.1:8080``) or a bare host name, which gets the
        scheme from ``extra["scheme"]`` (https by default) and the port when one is set.
        """
        extra = dict(extra or {})
        if not host:
            endpoint = DEFAULT_ENDPOINT
        elif "://" in host:
            endpoint = host
        else:
            endpoint = f"{extra.get('scheme') or 'https'}://{host}"
            if port:
                endpoint = f"{endpoint}:{port}"
        return cls(
            endpoint=endpoint,
            username=login or None,
            password=password or None,
            client_id=extra.get("client_id") or None,
            client_secret=extra.get("client_secret") or None,
        )


class ZooflowPanoptes(Panoptes):
    """panoptes-client's ``Panoptes`` with token handling that is safe under threads.

    The stock client refreshes its bearer token without a lock: threaded subject uploads refresh
    concurrently with one single-use refresh token, and the loser dies with
    ``KeyError: 'access_token'`` (panoptes-cli #164, client #265). Here one thread refreshes while
    the others wait, and a refused refresh falls back to a fresh grant, then to a fresh sign-in.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._token_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def __enter__(self) -> ZooflowPanoptes:
        # The stock client remembers one previous client per thread, but Subject.save() enters the client
        # again inside our own `with client:`, so leaving the outer block would not restore the caller's.
        stack = self._local.__dict__.setdefault("zooflow_previous_clients", [])
        stack.append(getattr(self._local, "panoptes_client", None))
        self._local.panoptes_client = self
        return self

    def __exit__(self, *exc: Any) -> None:
        self._local.panoptes_client = self._local.zooflow_previous_clients.pop()

    def http_request(self, method: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        """Send once more, with a fresh token, a request refused because its token was revoked.

        When one thread first uses a refreshed token, Panoptes (Doorkeeper) revokes the previous one.
        Reads sent with it still act as the user, but writes and the other Doorkeeper-protected actions
        (export requests, retirement) come back 401 — with an empty body, which the stock client reads as
        "no data" without raising, or, for a token Panoptes does not know at all, "You must be logged in".
        A 401 means nothing was done, so a retry is safe.
        """
        for _ in range(REVOKED_TOKEN_RETRIES):
            response = super().http_request(method, path, *args, **kwargs)
            sent = response.request.headers.get("Authorization", "")
            if response.status_code != 401 or not sent.startswith("Bearer "):
                return response
            with self._token_lock:
                if self.bearer_token == sent.removeprefix("Bearer "):
                    self.bearer_token = None  # the token we hold is the one refused: get another
            log.info("Panoptes refused a revoked or expired token; retrying %s %s with a fresh one", method.upper(), path)
        return super().http_request(method, path, *args, **kwargs)

    def get_bearer_token(self) -> str | None:
        with self._token_lock:
            try:
                return super().get_bearer_token()
            except (KeyError, ValueError, PanoptesAPIException) as first_error:
                log.warning("Panoptes token grant failed (%s); requesting a new token", type(first_error).__name__)
            self.bearer_token = None
            self.refresh_token = None
            try:
                return super().get_bearer_token()
            except (KeyError, ValueError, PanoptesAPIException):
                if not self.username:
                    raise PanoptesError(
                        f"Panoptes at {self.endpoint} refused to issue an access token; "
                        "check the OAuth client id and secret of the connection"
                    ) from None
            # The cookie session behind the password grant has gone: sign in again.
            self.session.cookies.clear()
            self.logged_in = False
            try:
                return super().get_bearer_token()
            except (KeyError, ValueError, PanoptesAPIException) as exc:
                raise PanoptesError(
                    f"Panoptes at {self.endpoint} refused to issue an access token after a fresh sign-in "
                    f"as {self.username}: {exc}"
                ) from None


def connect(config: PanoptesConfig) -> ZooflowPanoptes:
    """Log in and return a client; use it as ``with client:`` so panoptes-client objects use it.

    Raises :class:`PanoptesError` with the endpoint named when Panoptes cannot be reached or refuses
    the credentials; the password never appears in the message.
    """
    try:
        client = ZooflowPanoptes(
            endpoint=config.endpoint,
            username=config.username,
            password=config.password,
            client_id=config.client_id,
            client_secret=config.client_secret,
            # Without a username the stock client falls back to PANOPTES_USERNAME/PASSWORD from the
            # environment; "keyring" is its only mode that does not, so the config alone decides.
            login=None if config.username else "keyring",
        )
        if config.client_secret:
            client.get_bearer_token()
    except requests.ConnectionError as exc:
        raise PanoptesUnreachable(
            f"cannot reach Panoptes at {config.endpoint}: {exc.__class__.__name__}; "
            "check the connection's host (the API endpoint) and that the server is running",
            config.endpoint, connection_failure(exc),
        ) from None
    except PanoptesAPIException as exc:
        # Wrong credentials do not heal on retry, and repeated failed logins can lock an account.
        raise ConfigurationError(
            f"Panoptes at {config.endpoint} refused the login as {config.identity}: {exc}; "
            "check the connection's login and password"
        ) from None
    except (KeyError, ValueError) as exc:
        raise PanoptesError(
            f"{config.endpoint} did not answer like a Panoptes API ({exc.__class__.__name__}: {exc}); "
            "check that the connection's host is the API endpoint"
        ) from None
    return client


def connection_failure(exc: requests.RequestException) -> str:
    """What went wrong reaching a server, in a few words instead of urllib3's nested reprs."""
    text = str(exc)
    for needle, words in (("Connection refused", "connection refused"), ("NameResolution", "host name not found"),
                          ("Name or service not known", "host name not found"), ("Temporary failure in name", "host name not found"),
                          ("timed out", "timed out"), ("Network is unreachable", "network unreachable"),
                          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted")):
        if needle in text:
            return words
    return type(exc).__name__

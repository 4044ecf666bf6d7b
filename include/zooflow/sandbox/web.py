"""Request and response values, the regex router, and the error responses each surface uses.

Panoptes answers errors in three dialects and the client depends on each: the JSON API
(``{"errors":[{"message":..}]}``), Devise and Doorkeeper (``{"error":..}``, or a 401 with an empty body
for a bad bearer token), and the Azure blob store (an XML ``<Error>``). Raising the matching
``HttpError`` anywhere in a handler produces the right one.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from http.cookies import SimpleCookie
from typing import Any, BinaryIO, Callable
from urllib.parse import parse_qs

API_CONTENT_TYPE = "application/vnd.api+json; version=1; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class FileBody:
    """A byte range of an open file, sent with sendfile; ``limit`` cuts the connection early, and
    ``rate`` (bytes per second) paces it like a real network link.

    The file is opened while the request is handled, so a concurrent atomic replace of the path
    (a regenerated export) cannot mix old and new bytes within one response.
    """

    handle: BinaryIO
    offset: int
    length: int
    limit: int | None = None
    rate: float | None = None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: FileBody | None = None

    @property
    def length(self) -> int:
        return self.file.length if self.file else len(self.body)


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def api_response(status: int, payload: Any, etag: str | None = None, headers: list | None = None) -> Response:
    extra = list(headers or [])
    if etag:
        extra.append(("ETag", etag))
    return Response(status, json_body(payload), [("Content-Type", API_CONTENT_TYPE), *extra])


def plain_json(status: int, payload: Any, headers: list | None = None) -> Response:
    return Response(status, json_body(payload), [("Content-Type", JSON_CONTENT_TYPE), *(headers or [])])


class HttpError(Exception):
    status: int

    def response(self) -> Response:
        raise NotImplementedError


class ApiError(HttpError):
    """A JSON API error: status plus ``{"errors":[{"message": ...}]}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return api_response(self.status, {"errors": [{"message": self.message}]})


def not_found(kind: str, resource_id: Any) -> ApiError:
    return ApiError(404, f"Could not find {kind} with id='{resource_id}'")


class PlainError(HttpError):
    """Devise/Doorkeeper style ``{"error": ...}`` JSON, or an empty body when ``payload`` is None."""

    def __init__(self, status: int, payload: dict | None, headers: list | None = None):
        super().__init__(payload)
        self.status = status
        self.payload = payload
        self.headers = headers or []

    def response(self) -> Response:
        if self.payload is None:
            return Response(self.status, b"", list(self.headers))
        return plain_json(self.status, self.payload, self.headers)


class BlobError(HttpError):
    """Azure Storage's XML error document."""

    def __init__(self, status: int, code: str, message: str, detail: str | None = None, headers: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or []

    def response(self) -> Response:
        detail = f"<AuthenticationErrorDetail>{self.detail}</AuthenticationErrorDetail>" if self.detail else ""
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error>'
            f"<Code>{self.code}</Code><Message>{self.message}\nRequestId:{uuid.uuid4()}</Message>{detail}</Error>"
        ).encode("utf-8")
        return Response(
            self.status, body, [("Content-Type", "application/xml"), ("x-ms-error-code", self.code), *self.headers]
        )


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    headers: Message
    body: bytes
    host: str  # the Host header, or the address the server listens on when a client sends none
    params: dict[str, str] = field(default_factory=dict)
    user: Any = None  # the auth.ApiUser of an /api request, set before its handler runs
    detail: str | None = None  # what the request log should remember beyond the path

    @cached_property
    def query(self) -> dict[str, str]:
        """Query parameters; a repeated key keeps its last value, as Rails does."""
        return {key: values[-1] for key, values in parse_qs(self.raw_query, keep_blank_values=True).items()}

    @cached_property
    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        jar.load(self.headers.get("Cookie", ""))
        return {key: morsel.value for key, morsel in jar.items()}

    @property
    def base_url(self) -> str:
        """Absolute URLs handed to the client (export src, upload URLs) point where it reached us."""
        return "http://" + self.host

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"There was a problem in the JSON you submitted: {exc}") from None

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode("utf-8", "replace")).items()}


Handler = Callable[[Request], Response]


class Router:
    """First match wins; a path that matches no pattern for the method is a 404."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, pattern, handler in self._routes:
            if route_method == method:
                found = pattern.match(path)
                if found:
                    return handler, found.groupdict()
        return None

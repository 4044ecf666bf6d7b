"""An Azure-blob-like file store: signed URLs, uploads, and downloads with HTTP ranges.

Panoptes never serves media itself; it hands out URLs on Azure storage that the client fetches with
plain ``requests`` (no auth, no session). Two containers mimic that: ``/uploads/...`` takes subject
media by signed PUT and serves it publicly, and ``/blob/...`` serves exports only through a signed,
expiring URL. Files live under ``<data dir>/blobs`` at the URL path; their headers live in the
``blobs`` table. Downloads are streamed with sendfile so large exports cost no memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Callable

from zooflow.sandbox.clock import SandboxClock
from zooflow.sandbox.db import Database
from zooflow.sandbox.settings import Settings
from zooflow.sandbox.timeutil import http_date
from zooflow.sandbox.web import BlobError, FileBody, Request, Response, Router

SECRET_KEY = "blob_signing_secret"
AUTH_FAILED = (
    "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
    "correctly including the signature."
)
UPLOAD_CONTAINER = "uploads/subject_location"
EXPORT_CONTAINER = "blob/exports"
_NAME = r"[A-Za-z0-9-]+\.[A-Za-z0-9]+"


class BlobStore:
    def __init__(self, root: Path, db: Database, clock: SandboxClock, settings: Settings):
        self.root = root
        self._db = db
        self._clock = clock
        self._settings = settings
        secret = db.meta_get(SECRET_KEY)
        if secret is None:
            secret = secrets.token_hex(32)
            db.meta_set(SECRET_KEY, secret)
        self._secret = bytes.fromhex(secret)
        for container in (UPLOAD_CONTAINER, EXPORT_CONTAINER):
            (root / container).mkdir(parents=True, exist_ok=True)

    def register(self, router: Router, download_limit: Callable[[], int | None]) -> None:
        """``download_limit`` says how many bytes the next export download may send (fault injection)."""
        router.add("PUT", f"/(?P<key>{UPLOAD_CONTAINER}/{_NAME})", self.upload)
        router.add("GET", f"/(?P<key>{UPLOAD_CONTAINER}/{_NAME})", lambda request: self.serve(request, None))

        def export_download(request: Request) -> Response:
            self.verify(request)
            return self.serve(request, download_limit())

        router.add("GET", f"/(?P<key>{EXPORT_CONTAINER}/{_NAME})", export_download)

    # -- URLs --------------------------------------------------------------------------------

    def _signature(self, path: str, expiry: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expiry}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, base_url: str, key: str) -> str:
        expiry = int(self._clock.now_epoch() + self._settings["url_lifetime"])
        return f"{base_url}/{key}?se={expiry}&sig={self._signature('/' + key, expiry)}"

    @staticmethod
    def public_url(base_url: str, key: str) -> str:
        return f"{base_url}/{key}"

    def verify(self, request: Request) -> None:
        expiry_text, signature = request.query.get("se", ""), request.query.get("sig", "")
        if not expiry_text.isdigit() or not hmac.compare_digest(
            signature, self._signature(request.path, int(expiry_text))
        ):
            raise BlobError(403, "AuthenticationFailed", AUTH_FAILED, "Signature did not match.")
        now = self._clock.now_epoch()
        if now > int(expiry_text):
            raise BlobError(
                403, "AuthenticationFailed", AUTH_FAILED,
                f"Signed expiry time [{http_date(int(expiry_text))}] must be after signed start time "
                f"[{http_date(now)}]",
            )

    # -- writing -----------------------------------------------------------------------------

    @staticmethod
    def new_key(container: str, extension: str) -> str:
        return f"{container}/{uuid.uuid4()}.{extension}"

    def temp_path(self, key: str) -> Path:
        return self.root / f"{key}.{secrets.token_hex(4)}.tmp"

    def commit(self, key: str, temp: Path, content_type: str, *, encoding: str | None = None,
               disposition: str | None = None) -> None:
        """Atomically put ``temp`` in place of the blob and record its headers."""
        size = temp.stat().st_size
        os.replace(temp, self.root / key)
        etag = f'"0x{time.time_ns():X}"'
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO blobs (path, content_type, content_encoding, content_disposition, size, "
                "etag, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, content_type, encoding, disposition, size, etag, self._clock.now_epoch()),
            )

    def upload(self, request: Request) -> Response:
        self.verify(request)
        if request.headers.get("x-ms-blob-type") != "BlockBlob":
            raise BlobError(400, "MissingRequiredHeader",
                            "An HTTP header that's mandatory for this request is not specified.")
        key = request.params["key"]
        temp = self.temp_path(key)
        temp.write_bytes(request.body)
        self.commit(key, temp, request.headers.get("Content-Type", "application/octet-stream"))
        blob = self._db.one("SELECT etag, updated_at FROM blobs WHERE path = ?", (key,))
        return Response(201, b"", [("ETag", blob["etag"]), ("Last-Modified", http_date(blob["updated_at"]))])

    # -- reading -----------------------------------------------------------------------------

    def serve(self, request: Request, limit: int | None) -> Response:
        key = request.params["key"]
        blob = self._db.one("SELECT * FROM blobs WHERE path = ?", (key,))
        try:
            handle = open(self.root / key, "rb")
        except FileNotFoundError:
            blob = None
        if blob is None:
            raise BlobError(404, "BlobNotFound", "The specified blob does not exist.")
        size = os.fstat(handle.fileno()).st_size
        headers = [("Content-Type", blob["content_type"])]
        if blob["content_encoding"]:
            headers.append(("Content-Encoding", blob["content_encoding"]))
        if blob["content_disposition"]:
            headers.append(("Content-Disposition", blob["content_disposition"]))
        headers += [
            ("Accept-Ranges", "bytes"), ("ETag", blob["etag"]), ("Last-Modified", http_date(blob["updated_at"])),
            ("x-ms-blob-type", "BlockBlob"),
        ]
        wanted = _parse_range(request.headers.get("Range"), size)
        if wanted == "unsatisfiable":
            handle.close()
            raise BlobError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.",
                            headers=[("Content-Range", f"bytes */{size}")])
        if wanted is None:
            return Response(200, headers=headers, file=FileBody(handle, 0, size, limit, self._rate()))
        start, end = wanted
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        return Response(206, headers=headers, file=FileBody(handle, start, end - start + 1, limit, self._rate()))

    def _rate(self) -> float | None:
        mb_per_second = self._settings["download_rate_mb_s"]
        return mb_per_second * 1e6 if mb_per_second else None


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as (start, end) inclusive; None to send everything; or "unsatisfiable"."""
    found = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if not found or found[1] == found[2] == "":
        return None
    if found[1] == "":
        suffix = int(found[2])
        return (max(0, size - suffix), size - 1) if suffix and size else "unsatisfiable"
    start = int(found[1])
    end = min(int(found[2]), size - 1) if found[2] else size - 1
    if start >= size:
        return "unsatisfiable"
    return (start, end) if end >= start else None

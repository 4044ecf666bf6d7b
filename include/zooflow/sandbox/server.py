"""HTTP/1.1 transport: a threading stdlib server that turns sockets into ``Request``/``Response``.

The client keeps connections alive, so every response carries Content-Length and the server speaks
HTTP/1.1. File bodies go out with ``socket.sendfile`` (zero-copy, flat memory for multi-GB exports);
a fault-injected download limit sends the headers for the whole file, then fewer bytes, then closes.
"""

from __future__ import annotations

import email.utils
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from zooflow.sandbox.app import Sandbox
from zooflow.sandbox.web import FileBody, Request, Response


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox):
        self.sandbox = sandbox
        super().__init__(address, SandboxRequestHandler)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.sandbox.db.close_thread_connection()


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zooflow-sandbox"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms delayed-ACK stalls
    server: SandboxServer

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        host, port = self.server.server_address[:2]
        request = Request(
            method=self.command, path=parts.path, raw_query=parts.query, headers=self.headers,
            body=self._read_body(), host=self.headers.get("Host") or f"{host}:{port}",
        )
        response = self.server.sandbox.handle(request)
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if response.file:
                response.file.handle.close()

    # HEAD and OPTIONS go through the router too, so a method no route serves is a JSON 404 like
    # any unknown route, never the standard library's HTML page.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised before routing (an unknown method, a bad request line) in JSON as well."""
        body = json.dumps({"errors": [{"message": message or self.responses.get(code, ("Error",))[0]}]}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/vnd.api+json; version=1; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:  # RFC 9110: a 204 has no body and no Content-Length
            self.send_header("Content-Length", str(response.length))
        self.end_headers()
        if self.command == "HEAD":  # headers only: a body would corrupt the next kept-alive request
            return
        if response.file:
            self._send_file(response.file)
        elif response.body:
            self.wfile.write(response.body)

    def _send_file(self, body: FileBody) -> None:
        count = body.length if body.limit is None else min(body.length, body.limit)
        if count and body.rate:
            started, sent, step = time.monotonic(), 0, 1 << 20
            while sent < count:
                sent += self.connection.sendfile(body.handle, body.offset + sent, min(step, count - sent))
                time.sleep(max(0.0, sent / body.rate - (time.monotonic() - started)))
        elif count:
            self.connection.sendfile(body.handle, body.offset, count)
        if count < body.length:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on the sandbox clock, as a real server's Date shows its own time: clients
        judge export ages against it, so moving the clock moves what they see."""
        return email.utils.formatdate(self.server.sandbox.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n")

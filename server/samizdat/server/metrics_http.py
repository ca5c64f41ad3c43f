"""The HTTP server of the metrics endpoint (/metrics, /healthz): bounded threads and time.

A thread per connection (the stdlib's threading WSGI server, no socket timeout) let anyone
who reached the port pile up threads that never end by opening connections that send nothing.
Here one event-loop thread accepts connections and reads requests; the WSGI app runs in
WORKERS threads. What a client can hold:

- a connection that has not sent its request head within `request_timeout` seconds
  (REQUEST_TIMEOUT unless the node sets it) is closed; a head over HEAD_LIMIT bytes too;
- at most PENDING connections wait for their request head: a new connection beyond that closes
  the oldest waiting one (a scraper sends its request at once; a slow client loses its turn,
  never a fresh scrape);
- at most QUEUED requests are being answered or waiting for a worker; beyond that a request
  is answered 503 at once;
- an answer not read within `request_timeout` is dropped with its connection.

One request per connection (HTTP/1.0 style: `Connection: close`), as Prometheus scrapes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import io
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.handlers import SimpleHandler

WsgiApp = Callable[..., Iterable[bytes]]

REQUEST_TIMEOUT = 10.0
PENDING = 64
QUEUED = 8
WORKERS = 2
HEAD_LIMIT = 16 << 10
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD = b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def serve(app: WsgiApp, host: str, port: int, *, request_timeout: float = REQUEST_TIMEOUT) -> int:
    """Serve `app` on host:port from a daemon thread; return the port (once listening)."""
    bound: concurrent.futures.Future[int] = concurrent.futures.Future()
    server = _Server(app, request_timeout)

    def run() -> None:
        try:
            asyncio.run(server.main(host, port, bound))
        except BaseException as e:  # reported to serve() if the listener never came up
            if not bound.done():
                bound.set_exception(e)
            raise

    threading.Thread(target=run, name="metrics", daemon=True).start()
    return bound.result(timeout=30)


class _Server:
    def __init__(self, app: WsgiApp, request_timeout: float) -> None:
        self.app, self.timeout = app, request_timeout
        self.workers = concurrent.futures.ThreadPoolExecutor(WORKERS, "metrics-worker")
        self.pending: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self.queued = 0
        self.address: tuple[str, int] = ("", 0)

    async def main(self, host: str, port: int, bound: concurrent.futures.Future[int]) -> None:
        server = await asyncio.start_server(self.handle, host, port, limit=HEAD_LIMIT)
        sockname = server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        bound.set_result(self.address[1])
        async with server:
            await server.serve_forever()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if len(self.pending) >= PENDING:
                oldest = next(iter(self.pending))
                del self.pending[oldest]
                oldest.transport.abort()
            self.pending[writer] = None
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            finally:
                self.pending.pop(writer, None)
            environ = self.environ(head, writer)
            if environ is None:
                answer = BAD
            elif self.queued >= QUEUED:
                answer = BUSY
            else:
                self.queued += 1
                try:
                    loop = asyncio.get_running_loop()
                    answer = await loop.run_in_executor(self.workers, self.run_app, environ)
                finally:
                    self.queued -= 1
            writer.write(answer)
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass  # silent, slow or gone: the connection is closed below
        finally:
            if writer.transport.get_write_buffer_size():  # an answer not read: drop it
                writer.transport.abort()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def environ(self, head: bytes, writer: asyncio.StreamWriter) -> dict[str, Any] | None:
        """The WSGI environ of a request head, or None if it is not HTTP/1.x."""
        line, _, rest = head.partition(b"\r\n")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return None
        method, target, version = parts
        path, _, query = target.partition("?")
        try:
            headers = http.client.parse_headers(io.BytesIO(rest))
        except http.client.HTTPException:
            return None
        peer = writer.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.address[0],
            "SERVER_PORT": str(self.address[1]),
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": str(peer[0]),
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        return environ

    def run_app(self, environ: dict[str, Any]) -> bytes:
        """The whole HTTP response of the app to `environ` (in a worker thread)."""
        out = io.BytesIO()
        handler = SimpleHandler(
            io.BytesIO(), out, sys.stderr, environ, multithread=True, multiprocess=False
        )
        handler.run(self.app)
        return out.getvalue()

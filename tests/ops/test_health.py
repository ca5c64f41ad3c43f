"""The node's health answer: `GET /healthz` on the metrics listener (for load balancers) and
systemd's notify protocol (READY=1, WATCHDOG=1 while healthy, RELOADING=1, STOPPING=1)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import make_wsgi_app

from samizdat.server import healthcheck
from samizdat.server.runtime import NodeRuntime
from samizdat.server.workers import start_workers
from tests.healthcluster import start_with_metrics
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(60)


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def call(app: Callable[..., object], path: str) -> tuple[str, bytes]:
    """Call a WSGI app in process; return (status line, body)."""
    environ: dict[str, object] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    got: list[str] = []
    body = b"".join(app(environ, lambda status, headers: got.append(status)))  # type: ignore[operator]
    return got[0], body


def test_healthz_of_a_running_node_and_metrics_beside_it(
    node_factory: Callable[..., NodeProcess],
) -> None:
    _node, port = start_with_metrics(node_factory)
    deadline = time.monotonic() + 20
    while True:  # the first replication round ends shortly after start
        code, doc = get(f"http://127.0.0.1:{port}/healthz")
        if code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert code == 200, doc
    assert doc["status"] == "ok" and doc["problems"] == []
    assert doc["serving"] is True and doc["store_open"] is True
    assert doc["replication_running"] is True
    assert isinstance(doc["last_round_age_seconds"], float)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert b"samizdat_chunks_stored" in r.read()


def test_healthz_answers_503_naming_each_problem(node_factory: Callable[..., NodeProcess]) -> None:
    """In process, on a real node runtime: not serving and no replication loop yet, then
    healthy, then a closed store."""
    proc = node_factory("n1", start=False)
    node = NodeRuntime(proc.directory)
    app = healthcheck.wsgi_app(node, make_wsgi_app(node.metrics.registry))
    try:
        status, body = call(app, "/healthz")
        doc = json.loads(body)
        assert status.startswith("503") and doc["status"] == "unhealthy"
        assert doc["problems"] == [
            "not serving (starting or stopping)",
            "replication loop is not running",
        ]
        start_workers(node)
        node.serving.set()
        status, body = call(app, "/healthz")
        assert status.startswith("200"), body
        assert b"samizdat_chunks_stored" in call(app, "/metrics")[1]  # the exporter's
    finally:
        node.close()
    status, body = call(app, "/healthz")
    doc = json.loads(body)
    assert status.startswith("503")
    assert doc["store_open"] is False and doc["serving"] is False
    assert any(p.startswith("store does not answer") for p in doc["problems"])  # type: ignore[union-attr]


def test_systemd_notify_ready_watchdog_reload_and_stop(
    node_factory: Callable[..., NodeProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(20)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
        node = node_factory("n1")
        monkeypatch.delenv("NOTIFY_SOCKET")

        def next_message(*wanted: str) -> str:
            while True:
                message = sock.recv(4096).decode()
                if message in wanted:
                    return message

        assert next_message("READY=1") == "READY=1"
        assert next_message("WATCHDOG=1") == "WATCHDOG=1"
        assert node.proc is not None
        node.proc.send_signal(1)  # SIGHUP
        assert next_message("RELOADING=1") == "RELOADING=1"
        assert next_message("READY=1") == "READY=1"
        assert node.stop() == 0
        assert next_message("STOPPING=1") == "STOPPING=1"

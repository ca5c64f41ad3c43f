"""Is this node healthy? One answer for load balancers (`GET /healthz` on the metrics
listener) and for systemd (READY=1 once serving, WATCHDOG=1 pings only while healthy).

Healthy means: the gRPC server is serving, the store answers a read, the replication loop
is alive, and a replication round finished within `stale_after` seconds (a round still
running, e.g. a long back-fill, is not stale: its calls have their own stall guards).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samizdat.server.runtime import NodeRuntime

log = logging.getLogger(__name__)

STALE_ROUNDS = 10  # rounds of `sync_interval` without a finished round: unhealthy
STALE_MINIMUM = 300.0  # seconds; never stricter than this


@dataclass
class Health:
    """The /healthz body (JSON); `ok` decides the HTTP status (200 or 503)."""

    ok: bool
    serving: bool
    store_open: bool
    replication_running: bool
    last_round_age_seconds: float | None
    round_in_progress: bool
    stale_after_seconds: float
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"status": "ok" if self.ok else "unhealthy", **asdict(self)}
        return json.dumps(doc).encode() + b"\n"


def check(node: NodeRuntime) -> Health:
    """Probe `node` now (cheap: one store read, no RPC)."""
    problems = []
    serving = node.serving.is_set() and not node.stopping.is_set()
    if not serving:
        problems.append("not serving (starting or stopping)")
    try:
        node.store.get_state(b"healthz-probe")
        store_open = True
    except Exception as e:  # closed store (KeyError), RocksDB error
        store_open = False
        problems.append(f"store does not answer: {type(e).__name__}: {e}")
    stale_after = max(STALE_ROUNDS * node.config.sync_interval, STALE_MINIMUM)
    replicator = node.replicator
    running = replicator is not None and replicator.thread.is_alive()
    age: float | None = None
    in_progress = False
    if not running:
        problems.append("replication loop is not running")
    else:
        assert replicator is not None
        in_progress = replicator.round_in_progress
        since = replicator.last_round_finished or node.started
        age = round(time.monotonic() - since, 3)
        if age > stale_after and not in_progress:
            problems.append(f"no replication round finished for {age:.0f} s")
    return Health(
        ok=not problems,
        serving=serving,
        store_open=store_open,
        replication_running=running,
        last_round_age_seconds=age,
        round_in_progress=in_progress,
        stale_after_seconds=stale_after,
        problems=problems,
    )


def wsgi_app(
    node: NodeRuntime, metrics_app: Callable[..., Iterable[bytes]]
) -> Callable[..., Iterable[bytes]]:
    """`/healthz` answered here; every other path goes to the Prometheus exporter."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)
        health = check(node)
        body = health.to_json()
        status = "200 OK" if health.ok else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else []

    return app


def sd_notify(message: str) -> bool:
    """Send `message` to systemd's notify socket ($NOTIFY_SOCKET); False if there is none."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify(%s) failed: %s", message, e)
        return False
    return True


def start_watchdog(node: NodeRuntime) -> None:
    """Tell systemd the node is ready; if it asks for a watchdog ($WATCHDOG_USEC), ping it at
    half that period while the node is healthy (an unhealthy node gets restarted)."""
    if not sd_notify("READY=1"):
        return
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        usec = 0
    pid = os.environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return
    period = usec / 2e6

    def loop() -> None:
        while not node.stopping.wait(period):
            health = check(node)
            if health.ok:
                sd_notify("WATCHDOG=1")
            else:
                log.warning("unhealthy, not pinging the watchdog: %s", "; ".join(health.problems))

    threading.Thread(target=loop, name="watchdog", daemon=True).start()

"""Running a node: its gRPC server (`RpcServer`) and its life until SIGTERM (`serve`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from samizdat.rpc.limits import CHANNEL_OPTIONS, STREAM_DEADLINE
from samizdat.server import healthcheck
from samizdat.server.admission import WORKERS, Admission
from samizdat.server.runtime import NodeRuntime
from samizdat.server.service import add_servicers

log = logging.getLogger(__name__)

CONTROL_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
# Seconds calls in flight get to finish after SIGTERM before they are cancelled.
STOP_GRACE = 5.0
# HTTP/2 streams one connection may have open at once (the transport refuses more).
STREAMS_PER_CONNECTION = 32
# A connection is asked to close (GOAWAY) after CONNECTION_AGE (gRPC adds +-10%): its client
# opens a new one for new calls. Calls still open CONNECTION_GRACE later are cancelled with it.
# This is the only end of a call whose client takes nothing: gRPC holds its unread answer, which
# no server API can drop (admission.py, review R21). The grace covers the longest call a client
# makes (STREAM_DEADLINE), so it never cuts an honest one.
CONNECTION_AGE = 600.0
CONNECTION_GRACE = STREAM_DEADLINE


class RpcServer:
    """The node's asyncio gRPC server, on its own event-loop thread (`start`, `stop`).

    Every call goes through `Admission` (samizdat.server.admission); blocking servicer work runs in
    a pool of admission.WORKERS threads, the loop's default executor.
    """

    def __init__(
        self,
        node: NodeRuntime,
        connection_age: float = CONNECTION_AGE,
        connection_grace: float = CONNECTION_GRACE,
    ) -> None:
        self.node = node
        self.connection_age, self.connection_grace = connection_age, connection_grace
        self.pool = futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="rpc")
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(self.pool)
        self.thread = threading.Thread(target=self.loop.run_forever, name="rpc-loop", daemon=True)
        self.server: grpc.aio.Server | None = None

    def start(self) -> int:
        """Bind, start serving; return the port. Raises OSError if it cannot listen."""
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> int:
        node = self.node
        server = grpc.aio.server(
            options=[
                *CHANNEL_OPTIONS,
                ("grpc.max_concurrent_streams", STREAMS_PER_CONNECTION),
                ("grpc.max_connection_age_ms", int(self.connection_age * 1000)),
                ("grpc.max_connection_age_grace_ms", int(self.connection_grace * 1000)),
            ],
            interceptors=[Admission(node)],
        )
        add_servicers(server, node)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        if node.config.tls:
            creds = grpc.ssl_server_credentials([(node.identity.key_pem, node.identity.cert_pem)])
            port = server.add_secure_port(node.config.listen, creds)
        else:
            port = server.add_insecure_port(node.config.listen)
        if port == 0:
            raise OSError(f"cannot listen on {node.config.listen}")
        await server.start()
        self.server = server
        return port

    def stop(self, grace: float) -> None:
        """Stop within about `grace` seconds whatever the calls in flight: new calls are
        refused at once, those left after `grace` are cancelled, the pool is not waited for
        beyond that (a step in it is short: one store operation)."""
        if self.server is not None:
            done = asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop)
            try:
                done.result(grace + 5)
            except (futures.TimeoutError, grpc.RpcError) as e:
                log.error("rpc server did not stop in time: %r", e)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)


def serve(directory: Path, ready_file: Path | None = None) -> None:
    """Run the node in the foreground until SIGTERM or SIGINT; SIGHUP reloads node.toml.

    Call it from the main thread before any other thread exists: it blocks the control
    signals in every thread and takes them with `sigwait`, so no signal handler ever runs.
    (A handler interrupts the main thread between any two bytecodes, also while it holds a
    lock; `Event.set()` from a SIGTERM handler deadlocked when the signal landed inside the
    main thread's own `Event.wait()`, and the node then ignored SIGTERM for good.)
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)  # inherited by every thread
    node = NodeRuntime(directory)
    server = RpcServer(node)
    port = server.start()
    from samizdat.server.workers import start_workers

    start_workers(node)
    node.serving.set()
    if node.config.metrics_listen:
        metrics_port = node.metrics.serve(
            node.config.metrics_listen, wrap=lambda app: healthcheck.wsgi_app(node, app)
        )
        log.info(
            "metrics on http://%s:%d/metrics (health: /healthz)",
            node.config.metrics_listen.rpartition(":")[0],
            metrics_port,
        )
    log.info(
        "node %s (%s) serving on %s port %d tls=%s",
        node.node_id,
        node.config.name,
        node.config.listen,
        port,
        node.config.tls,
    )
    if ready_file is not None:
        ready_file.write_text(f"{port}\n")
    healthcheck.start_watchdog(node)
    while (received := signal.sigwait(CONTROL_SIGNALS)) == signal.SIGHUP:
        healthcheck.sd_notify("RELOADING=1")
        node.reload()
        healthcheck.sd_notify("READY=1")
    log.info("stopping (%s)", signal.Signals(received).name)
    healthcheck.sd_notify("STOPPING=1")
    node.serving.clear()
    server.stop(grace=STOP_GRACE)
    node.close()
    log.info("stopped cleanly")

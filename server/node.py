"""Building and running a node's gRPC server (`build_server`, `serve`)."""

from __future__ import annotations

import logging
import signal
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from samizdat.rpc.limits import CHANNEL_OPTIONS
from samizdat.server import healthcheck
from samizdat.server.runtime import NodeRuntime
from samizdat.server.service import add_servicers

log = logging.getLogger(__name__)

CONTROL_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def build_server(node: NodeRuntime) -> tuple[grpc.Server, int]:
    """Create the gRPC server for `node`, bound to its listen address; return (server, port)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="rpc"),
        options=CHANNEL_OPTIONS,
        maximum_concurrent_rpcs=64,
        interceptors=[node.metrics.interceptor()],
    )
    add_servicers(server, node)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if node.config.tls:
        creds = grpc.ssl_server_credentials([(node.identity.key_pem, node.identity.cert_pem)])
        port = server.add_secure_port(node.config.listen, creds)
    else:
        port = server.add_insecure_port(node.config.listen)
    if port == 0:
        raise OSError(f"cannot listen on {node.config.listen}")
    return server, port


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
    server, port = build_server(node)
    server.start()
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
    server.stop(grace=5).wait()
    node.close()
    log.info("stopped cleanly")

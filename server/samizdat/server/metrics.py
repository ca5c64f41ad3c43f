"""Prometheus metrics of one node (its own registry, served over HTTP when configured).

Event counters (pulls, bad chunks, scrub work, RPC latencies) are updated where the events
happen. Levels (chunks and bytes stored, per-snapshot held and missing chunks, scrub progress,
peer sync times) are read from the node's incremental counters at scrape time by
`NodeCollector`: a scrape costs O(snapshots + peers), never O(chunks). The per-snapshot rows
(three samples a snapshot, most of a scrape at thousands of snapshots) are rendered once per
change of the stored records and format (`SnapshotRows`) and the text shared by every scrape
(`NodeMetrics.wsgi_app`).
"""

from __future__ import annotations

import gzip
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from samizdat.core.ids import short_hex
from samizdat.core.tokens import Caller
from samizdat.server import metrics_http
from samizdat.server.metrics_http import WsgiApp
from samizdat.server.shared import SharedBuild

if TYPE_CHECKING:
    from samizdat.server.runtime import NodeRuntime

RPC_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.chunks_written = Counter(
            "samizdat_chunks_written", "Chunks written by clients", registry=r
        )
        self.served_bytes = Counter(
            "samizdat_served_bytes", "Chunk bytes served", ["role"], registry=r
        )
        self.pulled_chunks = Counter(
            "samizdat_pulled_chunks", "Chunks pulled from peers", ["peer"], registry=r
        )
        self.pulled_bytes = Counter(
            "samizdat_pulled_bytes", "Chunk bytes pulled from peers", ["peer"], registry=r
        )
        self.offences = Counter(
            "samizdat_peer_offences",
            "Wrong answers from a peer (bad_chunk, bad_record, bad_answer); each backs it off",
            ["peer", "kind"],
            registry=r,
        )
        self.rejected_calls = Counter(
            "samizdat_rpc_rejected",
            "Calls refused before any work: undecodable or out-of-range input, over a limit",
            ["method", "reason"],
            registry=r,
        )
        self.bad_chunks = Counter(
            "samizdat_bad_chunks_received",
            "Chunks from a peer that failed verification",
            ["peer"],
            registry=r,
        )
        # Set by replication as it fills a snapshot; not exported: the exported
        # samizdat_snapshot_missing_chunks comes from the store counters (NodeCollector).
        self.missing = Gauge(
            "samizdat_snapshot_missing_chunks",
            "Chunks of a snapshot this node lacks",
            ["snapshot"],
            registry=None,
        )
        self.scrub_checked = Counter(
            "samizdat_scrub_checked_bytes", "Bytes re-hashed by scrub", registry=r
        )
        self.scrub_corrupt = Counter(
            "samizdat_scrub_corrupt_chunks",
            "Corrupt chunks found (by scrub or on read)",
            registry=r,
        )
        self.scrub_repaired = Counter(
            "samizdat_scrub_repaired_chunks", "Corrupt chunks fetched again from a peer", registry=r
        )
        self.round_seconds = Histogram(
            "samizdat_replication_round_seconds",
            "Duration of replication rounds",
            ["peer"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "samizdat_rpc_seconds",
            "Duration of RPCs served, by method and outcome",
            ["method", "outcome"],
            buckets=RPC_BUCKETS,
            registry=r,
        )

        self.shared_builds = Counter(
            "samizdat_shared_builds",
            "Builds of answers shared by every caller, rebuilt once per change of the stored"
            " records (snapshot_counters: the snapshot list of status and scrapes;"
            " status_snapshots: its GetStatus encoding; metrics_rows: its per-snapshot rows'"
            " text in a scrape, per format)",
            ["answer"],
            registry=r,
        )

    def built(self, answer: str) -> Callable[[], None]:
        """The callback counting one build of the shared answer `answer`."""
        return self.shared_builds.labels(answer=answer).inc

    def chunks_served(self, caller: Caller, size: int) -> None:
        self.served_bytes.labels(role=str(caller.role)).inc(size)

    def chunks_stored(self, count: int, size: int) -> None:
        self.chunks_written.inc(count)

    def watch(self, node: NodeRuntime) -> None:
        """Export the levels of `node` (store, snapshots, scrub, peers) at scrape time: in
        `registry` all but the per-snapshot rows, which `wsgi_app` adds (`SnapshotRows`)."""
        self.registry.register(NodeCollector(node))
        self.rows = SnapshotRows(node, self.built("metrics_rows"))

    def wsgi_app(self) -> WsgiApp:
        """The /metrics app: prometheus_client's (`make_wsgi_app`: format chosen by the Accept
        header, gzip, `name[]`), its text joined with the per-snapshot rows rendered once per
        change of the records (and format) instead of at every scrape."""
        full = CollectorRegistry()
        full.register(_Joined(self.registry, self.rows))
        plain = make_wsgi_app(full)  # everything else it answers, uncached

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            params = parse_qs(environ.get("QUERY_STRING", ""))
            if (
                environ["REQUEST_METHOD"] != "GET"
                or environ.get("PATH_INFO") == "/favicon.ico"
                or "name[]" in params
            ):
                return plain(environ, start_response)
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            body = _join(encoder(self.registry), self.rows.text(encoder, content_type))
            headers = [("Content-Type", content_type)]
            if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers)
            return [body]

        return app

    def serve(self, listen: str, wrap: Callable[[WsgiApp], WsgiApp] | None = None) -> int:
        """Start the /metrics HTTP endpoint (its WSGI app passed through `wrap`, which may
        answer other paths) in a daemon thread; return its port. Threads and time per
        connection are bounded: samizdat.server.metrics_http."""
        host, _, port = listen.rpartition(":")
        app = self.wsgi_app()
        return metrics_http.serve(wrap(app) if wrap else app, host.strip("[]"), int(port))


_EOF = b"# EOF\n"  # the end of an OpenMetrics exposition


def _join(body: bytes, rows: bytes) -> bytes:
    """Two expositions of one format as one (families in any order; OpenMetrics' end last)."""
    if body.endswith(_EOF):
        return body[: -len(_EOF)] + rows.removesuffix(_EOF) + _EOF
    return body + rows


class _Joined(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for c in self.collectors:
            yield from c.collect()


class SnapshotRows(Collector):
    """The per-snapshot families (held, total, missing: three samples a snapshot) of
    `node.snapshot_counters()`, and their text in a format, rendered once per change of
    `node.records_key` (samizdat.server.shared) and shared by every scrape: at 10,000
    snapshots rendering them was most of a scrape's ~300 ms of CPU (bench/README.md). The
    text of at most FORMATS formats is kept (the Accept header chooses one; others are
    rendered per scrape)."""

    FORMATS = 4

    def __init__(self, node: NodeRuntime, on_build: Callable[[], None]) -> None:
        self.node = node
        self._on_build = on_build
        self._lock = threading.Lock()
        self._texts: dict[str, SharedBuild[bytes]] = {}

    def collect(self) -> Iterator[Metric]:
        labels = ["snapshot", "archive"]
        held = GaugeMetricFamily(
            "samizdat_snapshot_chunks_held", "Chunks of a snapshot held here", labels=labels
        )
        total = GaugeMetricFamily(
            "samizdat_snapshot_chunks_total", "Chunks a snapshot references", labels=labels
        )
        missing = GaugeMetricFamily(
            "samizdat_snapshot_missing_chunks",
            "Chunks of a snapshot this node lacks",
            labels=labels,
        )
        for item in self.node.snapshot_counters():
            values = [short_hex(item.snapshot_id), short_hex(item.archive_id)]
            held.add_metric(values, item.chunks_held)
            total.add_metric(values, item.chunks_total)
            missing.add_metric(values, item.chunks_total - item.chunks_held)
        yield from (held, total, missing)

    def text(self, encoder: Callable[[Collector], bytes], content_type: str) -> bytes:
        """The rows in the format `encoder` writes (`content_type` names it)."""
        with self._lock:
            shared = self._texts.get(content_type)
            if shared is None and len(self._texts) < self.FORMATS:
                shared = SharedBuild(self.node.records_key, lambda: encoder(self), self._on_build)
                self._texts[content_type] = shared
        return encoder(self) if shared is None else shared.get()


class NodeCollector(Collector):
    """Levels read from the node's incremental counters at scrape time."""

    def __init__(self, node: NodeRuntime) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node, store, config = self.node, self.node.store, self.node.config
        usage = shutil.disk_usage(store.path)
        replicator = node.replicator
        yield from _gauges(
            ("samizdat_chunks_stored", "Chunks in the store", store.chunk_count),
            ("samizdat_bytes_stored", "Stored chunk bytes", store.chunk_bytes),
            (
                "samizdat_quarantined_chunks",
                "Corrupt chunks removed and not yet fetched again",
                store.quarantined_count(),
            ),
            (
                "samizdat_unrepairable_chunks",
                "Quarantined chunks that no reachable peer held at the last repair attempt",
                node.unrepairable_count(),
            ),
            ("samizdat_disk_free_bytes", "Free bytes on the store's disk", usage.free),
            ("samizdat_disk_size_bytes", "Size of the store's disk", usage.total),
            (
                "samizdat_sync_interval_seconds",
                "Configured seconds between replication rounds",
                config.sync_interval,
            ),
            (
                "samizdat_replication_last_round_timestamp_seconds",
                "End of the last finished replication round (0: none since start)",
                replicator.last_round_finished_unix if replicator is not None else 0,
            ),
        )

        scrub = node.scrub_status()
        yield from _gauges(
            ("samizdat_scrub_enabled", "1 when scrub runs (scrub_rate_mb > 0)", int(scrub.enabled)),
            (
                "samizdat_scrub_position_fraction",
                "Progress of the current scrub pass (0..1)",
                scrub.position_fraction,
            ),
            (
                "samizdat_scrub_pass_chunks_checked",
                "Chunks checked in the current scrub pass",
                scrub.chunks_checked,
            ),
        )
        yield CounterMetricFamily(
            "samizdat_scrub_passes", "Completed scrub passes", value=scrub.passes_completed
        )
        yield from _gauges(
            (
                "samizdat_scrub_verified_since_timestamp_seconds",
                "Every chunk held was hash-checked after this time (0: never)",
                scrub.verified_since_unix,
            ),
            (
                "samizdat_scrub_last_pass_completed_timestamp_seconds",
                "End of the last completed scrub pass",
                scrub.last_pass_completed_unix,
            ),
            (
                "samizdat_scrub_pass_started_timestamp_seconds",
                "Start of the scrub pass in progress (0: idle between passes)",
                scrub.pass_started_unix,
            ),
            (
                "samizdat_scrub_interval_seconds",
                "Configured seconds from the start of one scrub pass to the next",
                config.scrub_interval,
            ),
        )

        last = GaugeMetricFamily(
            "samizdat_peer_last_sync_timestamp_seconds",
            "Last successful sync with a peer",
            labels=["peer"],
        )
        bad_records = CounterMetricFamily(
            "samizdat_bad_records_received",
            "Snapshot records from a peer that failed verification",
            labels=["peer"],
        )
        for peer in node.peer_status():
            if peer.revoked:
                continue
            last.add_metric([peer.node_id[:12]], peer.last_success_unix)
            bad_records.add_metric([peer.node_id[:12]], peer.bad_records)
        yield from (last, bad_records)


def _gauges(*levels: tuple[str, str, float]) -> Iterator[Metric]:
    """One unlabelled gauge per (name, help, value), in that order."""
    for name, doc, value in levels:
        yield GaugeMetricFamily(name, doc, value=value)

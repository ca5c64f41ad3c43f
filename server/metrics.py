"""Prometheus metrics of one node (its own registry, served over HTTP when configured)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from samizdat.core.tokens import Caller


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.chunks = Gauge("samizdat_chunks_stored", "Chunks in the store", registry=r)
        self.bytes = Gauge("samizdat_bytes_stored", "Stored chunk bytes", registry=r)
        self.chunks_written = Counter("samizdat_chunks_written", "Chunks written by clients",
                                      registry=r)
        self.served_bytes = Counter("samizdat_served_bytes", "Chunk bytes served",
                                    ["role"], registry=r)
        self.pulled_chunks = Counter("samizdat_pulled_chunks", "Chunks pulled from peers",
                                     ["peer"], registry=r)
        self.pulled_bytes = Counter("samizdat_pulled_bytes", "Chunk bytes pulled from peers",
                                    ["peer"], registry=r)
        self.bad_chunks = Counter("samizdat_bad_chunks_received",
                                  "Chunks from a peer that failed verification", ["peer"],
                                  registry=r)
        self.missing = Gauge("samizdat_snapshot_missing_chunks",
                             "Chunks of a snapshot this node lacks", ["snapshot"], registry=r)
        self.scrub_checked = Counter("samizdat_scrub_checked_bytes", "Bytes re-hashed by scrub",
                                     registry=r)
        self.scrub_corrupt = Counter("samizdat_scrub_corrupt_chunks",
                                     "Corrupt chunks found by scrub", registry=r)
        self.scrub_fraction = Gauge("samizdat_scrub_position_fraction",
                                    "Progress of the current scrub pass", registry=r)
        self.round_seconds = Histogram("samizdat_replication_round_seconds",
                                       "Duration of replication rounds", ["peer"], registry=r)

    def chunks_served(self, caller: Caller, size: int) -> None:
        self.served_bytes.labels(role=str(caller.role)).inc(size)

    def chunks_stored(self, count: int, size: int) -> None:
        self.chunks_written.inc(count)

    def serve(self, listen: str) -> int:
        """Start the /metrics HTTP endpoint; return its port."""
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        return int(server.server_port)

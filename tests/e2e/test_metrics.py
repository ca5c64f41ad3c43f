"""The Prometheus /metrics endpoint of real nodes, scraped over HTTP and parsed with the
Prometheus text-format parser."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from samizdat.core.errors import AccessDenied
from tests.conftest import KeyFile
from tests.healthcluster import make_cluster, make_tree
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(90)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> tuple[Samples, set[str]]:
    """GET /metrics; return {(sample name, sorted labels): value} and the family names."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    families = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_endpoint_reports_store_snapshots_pulls_scrub_and_rpc_latency(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    ports = {"paris": free_port(), "berlin": free_port()}
    c = make_cluster(
        node_factory,
        archive_key,
        tmp_path,
        names=("paris", "berlin"),
        replicas=2,
        scrub_interval=1,
        per_node={n: {"metrics_listen": f"127.0.0.1:{p}"} for n, p in ports.items()},
    )
    snapshot_id = c.push(make_tree(tmp_path / "src"))
    c.wait_complete()
    code, _, err = run_cli("status", "--cluster", c.file)
    assert code == 0, err

    paris, berlin = c.node("paris"), c.node("berlin")
    samples, families = scrape(ports["berlin"])
    status = berlin.status()
    for family in (
        "samizdat_chunks_stored",
        "samizdat_bytes_stored",
        "samizdat_snapshot_missing_chunks",
        "samizdat_pulled_chunks",
        "samizdat_pulled_bytes",
        "samizdat_bad_chunks_received",
        "samizdat_scrub_position_fraction",
        "samizdat_scrub_checked_bytes",
        "samizdat_scrub_passes",
        "samizdat_rpc_seconds",
        "samizdat_peer_last_sync_timestamp_seconds",
    ):
        assert family in families, family
    assert value(samples, "samizdat_chunks_stored") == status.chunks_stored > 0
    assert value(samples, "samizdat_bytes_stored") == status.bytes_stored
    snap = {"snapshot": snapshot_id[:12], "archive": archive_key.archive_id[:12]}
    assert value(samples, "samizdat_snapshot_missing_chunks", **snap) == 0
    assert (
        value(samples, "samizdat_snapshot_chunks_held", **snap) == status.snapshots[0].chunks_total
    )
    peer = {"peer": paris.node_id[:12]}
    assert value(samples, "samizdat_pulled_chunks_total", **peer) == status.chunks_stored
    assert value(samples, "samizdat_pulled_bytes_total", **peer) == status.bytes_stored
    assert value(samples, "samizdat_scrub_passes_total") >= 1
    assert value(samples, "samizdat_scrub_enabled") == 1
    assert value(samples, "samizdat_scrub_verified_since_timestamp_seconds") > 0
    assert value(samples, "samizdat_peer_last_sync_timestamp_seconds", **peer) > 0
    # What the alerting rules (deploy/prometheus) compare against.
    assert value(samples, "samizdat_disk_size_bytes") >= value(samples, "samizdat_disk_free_bytes")
    assert value(samples, "samizdat_sync_interval_seconds") > 0
    assert value(samples, "samizdat_scrub_interval_seconds") == 1
    assert value(samples, "samizdat_scrub_pass_started_timestamp_seconds") >= 0
    assert value(samples, "samizdat_replication_last_round_timestamp_seconds") > 0
    # RPC latencies: the status call above, and the peer's pulls from this node.
    get_status = value(samples, "samizdat_rpc_seconds_count", method="GetStatus", outcome="ok")
    assert get_status >= 1
    assert (
        value(samples, "samizdat_rpc_seconds_bucket", method="GetStatus", outcome="ok", le="+Inf")
        == get_status
    )
    # Paris lists berlin's snapshots in each of its rounds; its first round may have found
    # berlin not yet up, so wait for the next one.
    listed = ("samizdat_rpc_seconds_count", (("method", "ListSnapshots"), ("outcome", "ok")))
    deadline = time.monotonic() + 30
    while listed not in samples and time.monotonic() < deadline:
        time.sleep(0.2)
        samples, _ = scrape(ports["berlin"])
    assert samples.get(listed, 0) >= 1

    samples, _ = scrape(ports["paris"])
    assert value(samples, "samizdat_chunks_written_total") == paris.status().chunks_stored
    assert value(samples, "samizdat_rpc_seconds_count", method="PutChunks", outcome="ok") >= 1
    assert value(samples, "samizdat_rpc_seconds_count", method="GetChunks", outcome="ok") >= 1
    # A refused call is timed too, as an error.
    client = paris.client()  # no token: reading chunks is refused
    try:
        with pytest.raises(AccessDenied):
            list(client.get_chunks([b"\0" * 32]))
    finally:
        client.close()
    samples, _ = scrape(ports["paris"])
    assert value(samples, "samizdat_rpc_seconds_count", method="GetChunks", outcome="error") >= 1

"""The cost of a no-op replication round, measured from outside a real node process.

A node whose archive is complete still runs one pull round per peer every `sync_interval`
seconds: it lists the peer's snapshot records after its last known position and finds
nothing new. DESIGN.md §5 wants such a round to cost < 50 ms and < 16 KiB per peer whatever
the archive size. Here:

- time per round: the node's own histogram `samizdat_replication_round_seconds` (its _sum
  and _count over the measuring window, from the Prometheus endpoint `metrics_listen`);
- bytes per round: everything that crossed the puller's TCP connection to the peer, both
  directions (TLS records included), counted by a loopback proxy (tests.netfaults) put
  between the puller and the peer, divided by the rounds counted in the same window.

Used by bench/bench.py (the bench archive) and bench/status_scale.py (a million chunks).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class NoopCost:
    rounds: int
    ms_per_round: float
    bytes_per_round: float


def round_totals(metrics_port: int, peer: str = "") -> tuple[float, float]:
    """(rounds, seconds) from the node's round-duration histogram: with that one peer (a node
    id; its first 12 characters label the metric) or summed over every peer."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    count = total = 0.0
    for line in text.splitlines():
        if peer and f'peer="{peer[:12]}"' not in line:
            continue
        if line.startswith("samizdat_replication_round_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith("samizdat_replication_round_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
    return count, total


def measure_noop(
    metrics_port: int,
    reset_bytes: Callable[[], int],
    peer: str = "",
    seconds: float = 5.0,
    settle: float = 1.0,
) -> NoopCost:
    """Measure over `seconds` after `settle`. `reset_bytes()` returns and zeroes the byte
    counter of the puller's connection to `peer` (every peer if empty)."""
    time.sleep(settle)
    reset_bytes()
    c0, s0 = round_totals(metrics_port, peer)
    time.sleep(seconds)
    nbytes = reset_bytes()
    c1, s1 = round_totals(metrics_port, peer)
    rounds = int(c1 - c0)
    if rounds <= 0:
        raise RuntimeError(f"no replication round in {seconds:.0f} s (is sync_interval short?)")
    return NoopCost(rounds, (s1 - s0) / rounds * 1000, nbytes / rounds)

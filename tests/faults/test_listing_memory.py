"""A client's memory against nodes whose listings lie (review R5).

Two nodes list junk as long as every bound of a whole listing allows (tests/netfaults.py,
"bulky": 20,000 forged records carrying 3 KiB of unknown fields each, ~60 MiB as received;
"many": 99,000 forged records). `samizdat status` verifies each page as it arrives and keeps
a count of the junk, so its peak RSS stays near the honest figure: measured 69 MiB against
the honest node alone, 100 MiB ("bulky") and 93 MiB ("many") against the two liars as well;
261 and 212 MiB when it held every node's whole listing until all had answered. The liars
are named (`forged_records`, every record counted) and the honest node's health is reported
as if they had listed nothing. Peak RSS is the kernel's high-water mark of the CLI process
(tests/nodeproc.py, `run_cli_peak_rss`), not a timing: it does not depend on the load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.faults.test_hostile_calls import push_text
from tests.netfaults import JUNK_PAGES, EvilPeer
from tests.nodeproc import run_cli_peak_rss

pytestmark = pytest.mark.timeout(120)

# Peak RSS of `samizdat status` against one honest node and two liars: twice the honest
# figure and 50 MiB above the measured one, 60 MiB below the figure without the fix.
PEAK_RSS_BOUND = 150 << 20


@pytest.mark.parametrize("mode", ["bulky", "many"])
def test_status_memory_stays_bounded_against_two_nodes_listing_junk(
    node_factory, archive_key: KeyFile, tmp_path: Path, mode: str
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "the real one\n")
    liars = [EvilPeer(tmp_path / f"evil{i}", honest.address, mode).start() for i in (1, 2)]
    try:
        nodes = ["--node", honest.address]
        for evil in liars:
            nodes += ["--node", f"{evil.node_id}@{evil.hostport}"]
        code, out, err, peak = run_cli_peak_rss(
            "status", "--json", "--replicas", "1", *nodes, rss_file=tmp_path / "rss"
        )
        assert out.strip(), err
        doc = json.loads(out)
        assert peak < PEAK_RSS_BOUND, f"status peaked at {peak >> 20} MiB"
        assert code == 1, err  # degraded: the liars' forged records
        assert all(evil.served_bad == JUNK_PAGES[mode] for evil in liars)  # read to the end

        by_id = {n["node_id"]: n for n in doc["nodes"]}
        for evil in liars:
            assert by_id[evil.node_id]["reachable"]
            assert by_id[evil.node_id]["forged_records"] == JUNK_PAGES[mode] * 1000
        forged = {f["node"] for f in doc["findings"] if f["code"] == "forged_records"}
        assert forged == {by_id[evil.node_id]["name"] for evil in liars}

        honest_doc = by_id[honest.address.split("@")[0]]
        assert honest_doc["forged_records"] == 0
        [snapshot] = doc["snapshots"]  # the honest one, held in full by the honest node
        holdings = {h["name"]: h for h in snapshot["nodes"]}
        assert holdings[honest_doc["name"]]["complete"]
        assert snapshot["replication"]["complete_copies"] == 1
        assert snapshot["replication"]["chunks_lost"]["max"] == 0
    finally:
        for evil in liars:
            evil.stop()


def test_snapshots_memory_stays_bounded_against_two_nodes_listing_junk(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """`samizdat snapshots` (and restore's choice of snapshot: the same listing) likewise:
    measured 87 MiB against the two "bulky" liars, 241 MiB when it held every whole listing."""
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "the real one\n")
    liars = [EvilPeer(tmp_path / f"evil{i}", honest.address, "bulky").start() for i in (1, 2)]
    try:
        nodes = []
        for evil in liars:
            nodes += ["--node", f"{evil.node_id}@{evil.hostport}"]
        code, out, err, peak = run_cli_peak_rss(
            "snapshots", *nodes, "--node", honest.address, rss_file=tmp_path / "rss"
        )
        assert code == 0, err
        assert peak < PEAK_RSS_BOUND, f"snapshots peaked at {peak >> 20} MiB"
        for evil in liars:  # three named, the rest counted
            assert f"{evil.node_id[:8]}@{evil.hostport} offers 19997 more forged" in err, err
        rows = [line for line in out.splitlines() if archive_key.archive_id[:12] in line]
        assert len(rows) == 1 and honest.node_id[:8] in rows[0]
    finally:
        for evil in liars:
            evil.stop()

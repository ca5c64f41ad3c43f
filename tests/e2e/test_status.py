"""`samizdat status` against real node processes: healthy, node down, usage errors, scrub
repair of a flipped byte on disk, and an audit exposing a node that claims what it lacks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import KeyFile
from tests.damage import flip_on_disk
from tests.healthcluster import SCHEMA_PATH, Cluster, make_cluster, make_tree, read_chunk
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(120)
SCHEMA = json.loads(SCHEMA_PATH.read_text())
Factory = Callable[..., NodeProcess]


@pytest.fixture
def cluster(node_factory: Factory, archive_key: KeyFile, tmp_path: Path) -> Cluster:
    """Three nodes in FR, DE, NO holding one snapshot completely."""
    c = make_cluster(node_factory, archive_key, tmp_path, scrub_interval=1)
    c.push(make_tree(tmp_path / "src"))
    c.wait_complete()
    return c


def findings(doc: dict, code: str) -> list[dict]:  # type: ignore[type-arg]
    return [f for f in doc["findings"] if f["code"] == code]


def test_healthy_cluster_exits_0_with_every_snapshot_complete_everywhere(cluster: Cluster) -> None:
    started = time.monotonic()
    code, out, err = cluster.status()
    elapsed = time.monotonic() - started
    assert code == 0, out + err
    assert "HEALTHY" in out and cluster.snapshot_id[:16] in out
    assert elapsed < 20  # the honest figure is in the bench script; this guards regressions

    code, doc = cluster.status_json()
    jsonschema.validate(doc, SCHEMA)
    assert (code, doc["status"], doc["exit_code"]) == (0, "healthy", 0)
    assert [f for f in doc["findings"] if f["severity"] == "degraded"] == []
    assert doc["summary"]["nodes_reachable"] == 3
    [snap] = doc["snapshots"]
    assert snap["snapshot_id"] == cluster.snapshot_id
    assert [n["name"] for n in snap["nodes"]] == ["paris", "berlin", "oslo"]
    assert all(
        n["complete"] and n["chunks_held"] == n["chunks_total"] == snap["chunks_total"]
        for n in snap["nodes"]
    )
    rep = snap["replication"]
    assert (rep["complete_copies"], rep["jurisdictions"]) == (3, 3)
    assert rep["copies_per_jurisdiction"] == {"DE": 1, "FR": 1, "NO": 1}
    assert rep["chunks_below_target"] == {"min": 0, "max": 0, "exact": True}
    assert rep["chunks_at_risk"]["max"] == 0
    for node in doc["nodes"]:
        assert node["reachable"] and node["chunks_stored"] >= snap["chunks_total"]
        assert node["scrub"]["enabled"] and node["scrub"]["passes_completed"] >= 1
        assert {p["name"] for p in node["peers"]} == {"paris", "berlin", "oslo"} - {node["name"]}
        assert all(p["last_success_unix"] for p in node["peers"])

    # The same cluster named node by node.
    nodes = [a for n in cluster.nodes for a in ("--node", n.address)]
    code, out, err = run_cli("status", *nodes, "--json")
    assert code == 0, err
    assert json.loads(out)["policy"]["replicas"] == 3


def test_stopped_node_is_named_with_the_snapshots_below_target(cluster: Cluster) -> None:
    cluster.node("berlin").stop()
    code, out, err = cluster.status()
    assert code == 1, out + err
    assert "DEGRADED" in out
    assert "node berlin is unreachable" in out
    assert f"snapshot {cluster.snapshot_id[:16]}" in out and "below target" in out

    code, doc = cluster.status_json()
    jsonschema.validate(doc, SCHEMA)
    assert (code, doc["status"]) == (1, "degraded")
    [down] = findings(doc, "node_unreachable")
    assert down["node"] == "berlin" and down["severity"] == "degraded"
    assert [f["snapshot_id"] for f in findings(doc, "snapshot_below_target")] == [
        cluster.snapshot_id
    ]
    berlin = next(n for n in doc["nodes"] if n["name"] == "berlin")
    assert berlin["reachable"] is False and berlin["error"]
    rep = doc["snapshots"][0]["replication"]
    assert rep["complete_copies"] == 2
    assert rep["chunks_below_target"]["min"] == doc["snapshots"][0]["chunks_total"]
    assert doc["summary"]["snapshots_below_target"] == 1

    # With a target of two copies in two jurisdictions the remaining nodes suffice, but the
    # node that is down still degrades the cluster.
    code, _, _ = cluster.status("--replicas", "2", "--min-jurisdictions", "2")
    assert code == 1
    cluster.node("berlin").start()
    code, out, _ = cluster.status("--replicas", "2")
    assert code == 0, out


def test_usage_and_connection_errors_exit_2(node: NodeProcess, archive_key: KeyFile) -> None:
    code, _, err = run_cli("status")
    assert code == 2 and "--node" in err
    code, _, err = run_cli("status", "--node", node.address, "--audit", "5")
    assert code == 2 and "--key" in err
    code, _, err = run_cli("status", "--node", node.address, "--verified-within", "soon")
    assert code == 2 and "duration" in err
    nobody = f"{node.node_id}@127.0.0.1:{free_port()}"
    code, out, err = run_cli("status", "--node", nobody, "--json")
    assert code == 2
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["status"] == "error" and doc["nodes"][0]["reachable"] is False
    code, out, err = run_cli("status", "--help")
    assert code == 0 and "Exit codes: 0 healthy" in out and "--audit needs" not in out
    assert "needs --key" in " ".join(out.split())


def test_scrub_finds_flipped_byte_repairs_it_from_a_peer(cluster: Cluster) -> None:
    berlin = cluster.node("berlin")
    victim_id, size = next((cid, size) for cid, size in cluster.chunks() if size > 100_000)
    blob = read_chunk(berlin, cluster.key, victim_id)
    berlin.stop()
    damaged = flip_on_disk(berlin.data_dir, blob[size // 2 : size // 2 + 64])
    assert damaged.suffix == ".pack"
    berlin.start()

    deadline = time.monotonic() + 60
    while True:
        scrub = berlin.status().scrub
        if scrub.repaired >= 1:
            break
        assert time.monotonic() < deadline, f"not repaired in time: {scrub}"
        time.sleep(0.3)
    [finding] = [f for f in scrub.findings if f.chunk_id == victim_id]
    assert finding.repaired_unix >= finding.found_unix > 0
    assert finding.detail.startswith("scrub:")  # found by the scrub, not by a read
    assert scrub.corrupt_found == 1 and scrub.pending_repair == 0
    assert read_chunk(berlin, cluster.key, victim_id) == blob

    cluster.wait_complete()
    code, doc = cluster.status_json()
    assert code == 0, doc["findings"]
    berlin_doc = next(n for n in doc["nodes"] if n["name"] == "berlin")
    assert berlin_doc["scrub"]["corrupt_found"] == 1 and berlin_doc["scrub"]["repaired"] == 1
    assert berlin_doc["scrub"]["findings"][0]["chunk_id"] == victim_id.hex()
    peers_pulled = {p["name"]: p["chunks_pulled"] for p in berlin_doc["peers"]}
    assert sum(peers_pulled.values()) >= 1
    code, out, _ = cluster.status()
    assert code == 0 and "1 corrupt found, 1 repaired" in out
    assert victim_id.hex()[:16] in out and "repaired" in out  # the findings table


def test_audit_exposes_a_node_claiming_chunks_it_does_not_hold(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    # oslo never scrubs, so nothing but an audit can find out what happened to its disk.
    c = make_cluster(
        node_factory,
        archive_key,
        tmp_path,
        scrub_interval=1,
        per_node={"oslo": {"scrub_rate_mb": 0}},
    )
    c.push(make_tree(tmp_path / "src"))
    c.wait_complete()
    oslo = c.node("oslo")
    victims = [(cid, read_chunk(oslo, c.key, cid)) for cid, size in c.chunks() if size > 100_000]
    assert len(victims) >= 3
    oslo.stop()
    for _, blob in victims:  # its index (and so every counter) still claims them
        flip_on_disk(oslo.data_dir, blob[1000:1064])
    oslo.start()

    code, doc = c.status_json()  # the node's word: complete, but only claimed
    assert code == 0, doc["findings"]
    holders = {n["name"]: n for n in doc["snapshots"][0]["nodes"]}
    assert holders["oslo"]["complete"] and holders["oslo"]["verified_by"] == []
    assert holders["paris"]["verified_by"] == ["scrub"]
    assert doc["snapshots"][0]["replication"]["verified_copies"] == 2

    code, doc = c.status_json("--audit", "1000", "--key", c.key)
    jsonschema.validate(doc, SCHEMA)
    assert code == 1
    audits = {n["name"]: n["audit"] for n in doc["nodes"]}
    assert audits["paris"]["passed"] and audits["berlin"]["passed"]
    assert audits["paris"]["ok"] == audits["paris"]["sampled"] >= len(victims)
    assert not audits["oslo"]["passed"]
    assert set(audits["oslo"]["missing"]) | set(audits["oslo"]["corrupt"]) == {
        cid.hex() for cid, _ in victims
    }
    [failed] = findings(doc, "audit_failed")
    assert failed["node"] == "oslo" and failed["severity"] == "degraded"
    holders = {n["name"]: n for n in doc["snapshots"][0]["nodes"]}
    assert "audit" in holders["paris"]["verified_by"] and holders["oslo"]["verified_by"] == []

    # The audit's reads made oslo quarantine what it served wrong; once its scrubber has
    # lowered its counters it no longer claims the snapshot, and says so itself.
    code, out, _ = c.status("--audit", "1000", "--key", c.key)
    assert code == 1
    assert "node oslo failed the audit" in out or "node oslo: " in out and "awaiting repair" in out

    c.wait_complete(timeout=60)  # and it refetches the chunks from its peers
    code, doc = c.status_json("--audit", "1000", "--key", c.key)
    assert code == 0 and all(n["audit"]["passed"] for n in doc["nodes"])

"""Custody on a real cluster (issue #12): writer keys push, reader keys restore, revocations
signed by the archive key reach every node through its peers and are enforced by all."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from samizdat.core.errors import AccessDenied
from samizdat.core.keys import load_key
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.identity import load_identity
from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, file_entry, upload
from tests.healthcluster import SCHEMA_PATH, make_cluster, make_tree
from tests.jsonschemas import json_object
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree

pytestmark = pytest.mark.timeout(150)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def push(key: Path | KeyFile, node: NodeProcess, src: Path) -> tuple[int, str, str]:
    return run_cli("push", "--key", key, "--node", node.address, src)


def snapshot_of(out: str) -> str:
    return re.search(r"snapshot ([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]


def custody_kinds(node: NodeProcess) -> list[str]:
    from samizdat.v1 import records_pb2 as pb

    return sorted(
        str(pb.CustodyRecord.FromString(r.record).WhichOneof("body"))
        for r in node.status().custody_records
    )


def listed(node: NodeProcess) -> set[str]:
    return {s.snapshot_id.hex() for s in node.status().snapshots}


def test_writer_key_pushes_reader_restores_revocation_reaches_every_node(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    cluster = make_cluster(node_factory, archive_key, tmp_path)
    paris, berlin, oslo = cluster.nodes
    writer_file, reader_file = tmp_path / "amal.key", tmp_path / "reader.key"
    code, out, err = run_cli(
        "key", "delegate", archive_key, "--name", "amal", "--out", writer_file,
        "--node", paris.address, "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json_object(out, "custody")
    writer_id = doc["writer_id"]
    assert [s["already_present"] for s in doc["stored_on"]] == [False] and not doc["failed"]
    assert load_key(writer_file).member_key.hex() == writer_id
    code, _, err = run_cli("key", "reader", archive_key, "--out", reader_file)
    assert code == 0, err

    # The writer pushes; the snapshot replicates and restores with the archive key and with
    # the reader key.
    src = make_tree(tmp_path / "src")
    code, out, err = push(writer_file, paris, src)
    assert code == 0, err
    first = snapshot_of(out)
    cluster.wait_complete()
    for key, via, dest in ((archive_key, berlin, "by-archive"), (reader_file, oslo, "by-reader")):
        code, _, err = run_cli("restore", "--key", key, "--node", via.address, tmp_path / dest)
        assert code == 0, err
        assert_same_tree(src, tmp_path / dest)
    code, _, err = run_cli("verify", "--key", reader_file, "--cluster", cluster.file)
    assert code == 0, err
    # Every node learned the writer's certificate (from the push or from its peers).
    wait_for(
        "certificates everywhere",
        lambda: all(custody_kinds(n) == ["certificate"] for n in cluster.nodes),
    )

    # A reader key cannot push.
    code, _, err = push(reader_file, berlin, make_tree(tmp_path / "src-r", seed=5))
    assert code != 0 and "reader key" in err

    # Revoke the writer at paris only; berlin and oslo learn it from their peers.
    code, out, err = run_cli(
        "key", "revoke-writer", archive_key, writer_id, "--node", paris.address, "--json"
    )
    assert code == 0, err
    record = json_object(out, "custody")["records"][0]
    assert record["kind"] == "key_revocation"
    wait_for(
        "revocation on every node",
        lambda: all("key_revocation" in custody_kinds(n) for n in (berlin, oslo)),
    )
    src2 = make_tree(tmp_path / "src2", seed=2)
    for node in cluster.nodes:
        code, _, err = push(writer_file, node, src2)
        assert code == 1, (node.name, err)
        assert "revoked" in err, err
    # The writer's earlier snapshot stays, everywhere, and still restores.
    assert all(first in listed(n) for n in cluster.nodes)
    code, _, err = run_cli(
        "restore", "--key", reader_file, "--node", oslo.address, tmp_path / "again"
    )
    assert code == 0, err

    # A stolen writer key cannot back-date: a snapshot it signs with an old sequence is
    # refused, even when a valid writer (the archive key itself) uploads it.
    stolen = load_key(writer_file)
    backdated = craft_snapshot(stolen, [file_entry(b"planted.txt", b"forged evidence")], sequence=1)
    client = berlin.client(archive_key.key)
    try:
        with pytest.raises(AccessDenied, match="revoked"):
            upload(client, backdated)
    finally:
        client.close()
    assert backdated.id_hex not in listed(berlin)

    # The archive key still pushes.
    code, _, err = push(archive_key, oslo, src2)
    assert code == 0, err


def test_node_revoked_at_one_node_is_cut_off_by_all(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    cluster = make_cluster(
        node_factory, archive_key, tmp_path, names=("paris", "berlin", "oslo", "bern")
    )
    paris, berlin, oslo, bern = cluster.nodes
    cluster.push(make_tree(tmp_path / "src"))
    cluster.wait_complete()

    code, out, err = run_cli(
        "node", "revoke", "--key", archive_key, bern.node_id, "--node", paris.address,
        "--reason", "seized", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json_object(out, "custody")["records"][0]["subject"] == f"node:{bern.node_id}"

    def revoked_at(node: NodeProcess) -> bool:
        return any(p.revoked and p.node_id == bern.node_id for p in node.status().peers)

    # berlin and oslo learn it from paris in their next round, and refuse bern at once.
    wait_for("revocation learned from a peer", lambda: revoked_at(berlin) and revoked_at(oslo))
    seized_key = load_identity(bern.directory).key
    for node in (paris, berlin, oslo):
        client = NodeClient(NodeAddress.parse(node.address), tokens=peer_tokens(seized_key))
        try:
            with pytest.raises(AccessDenied, match="revoked"):
                client.list_snapshots()
            with pytest.raises(AccessDenied, match="revoked"):
                list(client.get_chunks([bytes(32)]))
        finally:
            client.close()
    # ... and bern's own replication is refused by each of them.
    wait_for(
        "bern refused by every peer",
        lambda: all("revoked" in p.last_error for p in bern.status().peers if not p.revoked),
    )

    # status names the revoked node; its copies no longer count.
    code, doc = cluster.status_json()
    assert code == 0, doc["findings"]
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert [n["name"] for n in doc["nodes"] if n["revoked"]] == ["bern"]
    assert doc["custody"]["revoked_nodes"] == [
        {
            "node_id": bern.node_id,
            "name": "bern",
            "archive_id": archive_key.archive_id,
            "reason": "seized",
        }
    ]
    code, doc = cluster.status_json("--replicas", "4")
    assert code == 1
    assert any("revoked" in f["message"] for f in doc["findings"]), doc["findings"]
    code, out, _ = cluster.status()
    assert "revoked" in out

    # A snapshot pushed afterwards reaches the others, never bern.
    later = cluster.push(make_tree(tmp_path / "src2", seed=2), to="berlin")
    cluster.wait_complete([paris, berlin, oslo])
    wait_for(
        "bern tried again after the push",
        lambda: all("revoked" in p.last_error for p in bern.status().peers if not p.revoked),
    )
    assert later not in listed(bern)


def test_node_rejects_records_not_signed_by_its_archive_key_and_ignores_replays(
    node: NodeProcess, archive_key: KeyFile, other_key: KeyFile, tmp_path: Path
) -> None:
    from samizdat.core.custody import sign_custody_record
    from samizdat.core.errors import NotHosted, SignatureError
    from samizdat.core.signing import ed25519_sign
    from samizdat.v1 import records_pb2 as pb

    writer_file = tmp_path / "w.key"
    code, out, err = run_cli(
        "key", "delegate", archive_key, "--name", "w", "--out", writer_file, "--node", node.address
    )
    assert code == 0, err
    writer_id = out.strip()
    code, out, err = push(writer_file, node, make_tree(tmp_path / "src"))
    assert code == 0, err
    first = snapshot_of(out)
    before = custody_kinds(node)

    revocation = pb.CustodyRecord(
        version=1,
        archive_id=archive_key.key.archive_id,
        serial=2**62,
        node_revocation=pb.NodeRevocation(node_id=node.node_id),
    )
    raw = revocation.SerializeToString()
    writer = load_key(writer_file)
    forgeries = [
        pb.SignedCustodyRecord(
            record=raw, signature=ed25519_sign(writer.member_seed, "custody record", raw)
        ),
        pb.SignedCustodyRecord(record=raw, signature=other_key.key.sign("custody record", raw)),
    ]
    client = node.client()
    try:
        for forged in forgeries:
            with pytest.raises(SignatureError):
                client.put_custody_record(forged)
        garbage = pb.SignedCustodyRecord(record=b"\xff garbage", signature=bytes(64))
        # The node's own error class reaches the client by its reason code (it was a
        # UsageError when clients mapped by status and by the message's wording).
        with pytest.raises(SignatureError, match="malformed"):
            client.put_custody_record(garbage)
        theirs = sign_custody_record(
            other_key.key, pb.CustodyRecord(serial=1, node_revocation=revocation.node_revocation)
        )
        with pytest.raises(NotHosted):
            client.put_custody_record(theirs.signed)
    finally:
        client.close()
    assert custody_kinds(node) == before
    assert first in listed(node)

    # An older revocation (keeping the first snapshot), signed offline, is replayed after a
    # newer one (keeping nothing): the newer one still decides.
    old = tmp_path / "old.rec"
    code, _, err = run_cli(
        "key", "revoke-writer", archive_key, writer_id, "--keep", first, "--out", old
    )
    assert code == 0, err
    code, _, err = run_cli(
        "key", "revoke-writer", archive_key, writer_id, "--keep-through", "0",
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err
    assert first not in listed(node)
    code, out, err = run_cli("key", "publish", old, "--node", node.address, "--json")
    assert code == 0, err
    assert json_object(out, "custody")["stored_on"][0]["already_present"] is False
    assert custody_kinds(node).count("key_revocation") == 2
    assert first not in listed(node)
    code, out, _ = run_cli("snapshots", "--node", node.address)
    assert first[:16] not in out

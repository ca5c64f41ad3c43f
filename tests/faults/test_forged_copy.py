"""A seized node serving an honest snapshot record with its signature or certificate altered,
beside nodes serving it intact: `samizdat status` counts the forged copy against that node,
whichever node answers first, and does not count that node as holding the snapshot (the
client verifies each distinct signed record by its bytes, not once per snapshot id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samizdat.core.records import Snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import store_snapshot
from samizdat.v1 import records_pb2 as pb
from tests.conftest import make_key_file
from tests.crafted import craft_snapshot, file_entry
from tests.nodeproc import NodeProcess, run_cli


def altered(snap: Snapshot, what: str) -> Snapshot:
    signed = pb.SignedSnapshot()
    signed.CopyFrom(snap.signed)
    if what == "signature":
        signed.signature = bytes(64)
    else:
        signed.certificate.signature = bytes(64)
    return Snapshot(snap.id, signed, snap.record)


@pytest.mark.parametrize("what", ["signature", "certificate"])
def test_status_counts_a_forged_copy_against_its_node(tmp_path: Path, what: str) -> None:
    key_file = make_key_file(tmp_path / "archive.key")
    writer, _ = key_file.key.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)
    crafted = craft_snapshot(writer, [file_entry(b"note", b"every node holds this")])
    snap = crafted.snapshot
    names = ["first", "liar", "last"]  # the liar answers between two honest nodes
    nodes = [NodeProcess(tmp_path / n) for n in names]
    try:
        for node in nodes:
            node.init()
            node.host(key_file.archive_id)
            store = ChunkStore(node.data_dir)  # as a seized disk would hold it
            try:
                store.put_chunks(crafted.blobs)
                copy = altered(snap, what) if node.name == "liar" else snap
                store_snapshot(store, copy, require_complete=True)
            finally:
                store.close()
            node.start()
        cluster = tmp_path / "cluster.toml"
        cluster.write_text(
            "replicas = 2\n"
            + "".join(
                f'\n[[node]]\nname = "{n.name}"\naddress = "{n.hostport}"\nid = "{n.node_id}"\n'
                for n in nodes
            )
        )
        # the liar does list the altered copy (a node does not check its own store again)
        client = nodes[1].client(key_file.key)
        try:
            [listed] = client.all_snapshots()
        finally:
            client.close()
        assert listed.snapshot == altered(snap, what).signed != snap.signed
        code, out, err = run_cli("status", "--cluster", cluster, "--json")
        assert code == 1, err  # degraded: a forged record
        doc = json.loads(out)
        forged = {n["name"]: n["forged_records"] for n in doc["nodes"]}
        assert forged == {"first": 0, "liar": 1, "last": 0}
        [entry] = doc["snapshots"]
        assert entry["snapshot_id"] == snap.id.hex()
        total = entry["chunks_total"]
        held = {h["name"]: h["chunks_held"] for h in entry["nodes"]}
        assert total > 0 and held == {"first": total, "liar": 0, "last": total}
        assert entry["replication"]["complete_copies"] == 2
    finally:
        for node in nodes:
            node.stop()

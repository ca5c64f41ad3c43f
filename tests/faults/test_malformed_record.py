"""A signed record that names a chunk id of the wrong size: a writer (a seized custodian
laptop) can sign one. A node refuses it, and one such record already in a node's store (kept
by an older version, which accepted it) stops only its own snapshot from filling, never the
replication of every later one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samizdat.core.errors import SignatureError
from samizdat.core.records import sign_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import store_snapshot
from samizdat.v1 import records_pb2 as pb
from tests.conftest import make_key_file
from tests.crafted import craft_snapshot, file_entry, upload
from tests.healthcluster import configure
from tests.nodeproc import NodeProcess

DEADLINE = 60.0


def test_malformed_record_is_refused_and_a_stored_one_stalls_nothing(tmp_path: Path) -> None:
    key_file = make_key_file(tmp_path / "key")
    key = key_file.key
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    for node in (a, b):
        node.init()
        node.host(key_file.archive_id)
    a.peer_add(b)
    b.peer_add(a)
    first = craft_snapshot(key, [file_entry(b"one", b"first file")], 1)
    record = pb.SnapshotRecord()
    record.CopyFrom(first.snapshot.record)
    record.sequence = 2
    record.chunk_list_ids.append(b"\x01" * 31)
    record.totals.chunks = 0
    malformed = sign_snapshot(key, record)
    # b kept it before this version refused such records: put it straight into b's store
    store = ChunkStore(b.data_dir)
    try:
        store_snapshot(store, malformed, require_complete=False)
    finally:
        store.close()
    for node in (a, b):
        configure(node, sync_interval=0.3)
        node.start()
    client = a.client(key)
    try:
        upload(client, first)
        with pytest.raises(SignatureError, match="a chunk id is not 32 bytes"):
            client.put_snapshot(malformed.signed)
        later = craft_snapshot(key, [file_entry(b"three", b"a later snapshot")], 3)
        upload(client, later)
        wanted = {first.id_hex, later.id_hex}
        deadline = time.monotonic() + DEADLINE
        while True:
            held = {
                s.snapshot_id.hex()
                for s in b.status().snapshots
                if s.chunks_total and s.chunks_held == s.chunks_total
            }
            if wanted <= held:
                break
            assert time.monotonic() < deadline, f"b never completed {wanted - held}"
            time.sleep(0.2)
        assert "cannot be filled" in b.logs()
        assert "replication round failed" not in b.logs()
    finally:
        client.close()
        a.stop()
        b.stop()

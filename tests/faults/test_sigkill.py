"""SIGKILL in the middle of a push: of the CLI, or of the node. The node comes back
consistent, the next push completes and reuses what was stored; an acknowledged snapshot
survives a crash."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import blake3
import pytest

from samizdat.client.ingest import push as push_tree
from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import PeerUnavailable
from samizdat.core.peer import Peer
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import stored_snapshot
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_single_node import assert_restores
from tests.healthcluster import configure
from tests.netfaults import TcpLink
from tests.nodeproc import NodeProcess, run_cli, spawn_cli

pytestmark = pytest.mark.timeout(150)

UPLOADED = re.compile(r"uploaded (\d+) chunks, ([\d.]+) (B|KiB|MiB|GiB)")
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def big_source(root: Path, files: int = 3, size: int = 16 << 20) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"video-{i}.bin").write_bytes(os.urandom(size))
    (root / "notes.txt").write_text("notes\n" * 100)
    return root


def kill_push_midway(
    node: NodeProcess, key: KeyFile, src: Path, kill_node: bool = False, after: int = 1
) -> subprocess.Popen[bytes]:
    """Start a push over a slow link (so it cannot finish first however fast the machine);
    SIGKILL the CLI (or the node) once the node has stored `after` new chunks. Returns the
    (finished) CLI process."""
    client = node.client()
    link = TcpLink(node.port, rate=16e6)
    try:
        base = client.status(timeout=5).chunks_stored
        address = f"{node.node_id}@127.0.0.1:{link.port}"
        proc = spawn_cli("push", "--key", key.path, "--node", address, src)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(
                    f"push finished ({proc.returncode}) before it could be killed; "
                    f"use more data. {err.decode()}"
                )
            if client.status(timeout=5).chunks_stored >= base + after:
                break
            time.sleep(0.01)
        else:
            proc.kill()
            pytest.fail("the node never received a chunk")
        if kill_node:
            node.kill()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail("push hangs after its node died")
        else:
            proc.kill()
            proc.wait(10)
    finally:
        client.close()
        link.close()
    return proc


def check_complete_snapshots_durable(store: ChunkStore) -> None:
    """Every chunk of every snapshot the store shows complete is in its index (the store was
    just opened: its write buffer is empty, so `has_chunks` reads the index alone)."""
    for _pos, snapshot_id, signed in store.iter_snapshot_log(0):
        held, total, _ = store.snapshot_state(snapshot_id)
        if total == 0 or held < total:
            continue
        lists = list(stored_snapshot(signed).record.chunk_list_ids)
        ids = list(lists)
        for list_id in lists:
            blob = store.get_chunk(list_id)
            assert blob is not None, f"snapshot {snapshot_id.hex()[:12]} shown complete"
            ids += [cid for cid, _ in decode_chunk_list(list_id, blob)]
        lost = sum(not have for have in store.has_chunks(ids))
        assert lost == 0, f"snapshot {snapshot_id.hex()[:12]} shown complete, {lost} lost"


def check_store_consistent(node: NodeProcess) -> int:
    """With the node stopped: every indexed chunk is readable and matches its id, the
    counters match the contents, and every snapshot shown complete has all its chunks
    indexed. Returns the chunk count."""
    store = ChunkStore(node.data_dir)
    try:
        check_complete_snapshots_durable(store)
        count = nbytes = 0
        for chunk_id, size in store.iter_chunk_ids():
            blob = store.read_raw(chunk_id)
            assert blob is not None, f"indexed chunk {chunk_id.hex()[:12]} has no blob"
            assert blake3.blake3(blob).digest() == chunk_id
            assert len(blob) == size
            count, nbytes = count + 1, nbytes + size
        assert (store.chunk_count, store.chunk_bytes) == (count, nbytes)
        assert store.quarantined_count() == 0
        return count
    finally:
        store.close()


def uploaded_bytes(out: str) -> tuple[int, int]:
    m = UPLOADED.search(out)
    assert m, out
    return int(m.group(1)), int(float(m.group(2)) * UNITS[m.group(3)])


def test_push_killed_midway_then_next_push_reuses_stored_chunks(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = big_source(tmp_path / "src")
    proc = kill_push_midway(node, archive_key, src)
    assert proc.returncode == -9

    assert list(node.status().snapshots) == []  # still serving; no half snapshot acknowledged
    # The node may still be storing what the killed push had sent when it died: count once it
    # has stopped, then check the counters it starts with again.
    node.stop()
    count = check_store_consistent(node)
    node.start()
    status = node.status()
    assert status.chunks_stored == count and list(status.snapshots) == []
    stored_before = status.bytes_stored
    assert stored_before > 0

    code, out, err = run_cli("push", "--key", archive_key.path, "--node", node.address, src)
    assert code == 0, err
    status = node.status()
    (snap,) = status.snapshots
    assert snap.chunks_held == snap.chunks_total
    total = status.bytes_stored  # = every byte the snapshot references (one snapshot)
    new = status.bytes_stored - stored_before
    assert new < total, "nothing from the killed push was reused"
    _, sent = uploaded_bytes(out)
    assert sent < 0.99 * total and abs(sent - new) <= 0.01 * total + 1024, (sent, new, total)

    assert_restores(archive_key, node, src, tmp_path / "dest")


def test_node_killed_mid_push_restarts_consistent(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = big_source(tmp_path / "src")
    proc = kill_push_midway(node, archive_key, src, kill_node=True)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode not in (0, None, -9), err
    assert "Traceback" not in err, err
    assert "unreachable" in err or "failed" in err, err

    count = check_store_consistent(node)  # node is down: open its store directly
    node.start()
    status = node.status()
    assert list(status.snapshots) == [] and status.chunks_stored == count

    code, out, err = run_cli("push", "--key", archive_key.path, "--node", node.address, src)
    assert code == 0, err
    assert_restores(archive_key, node, src, tmp_path / "dest")
    code, _, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, err


def test_acknowledged_snapshot_survives_node_sigkill(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code == 0, err
    node.kill()  # immediately: no clean shutdown, no final flush
    node.start()
    (snap,) = node.status().snapshots
    assert snap.chunks_held == snap.chunks_total
    assert_restores(archive_key, node, sample_tree, tmp_path / "dest")


def test_node_killed_at_random_points_of_pushes_loses_no_acknowledged_snapshot(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    """Seeded rounds: a push of new data is cut by SIGKILL of the node after a random share
    of its chunks arrived (1 MiB packs: chunks buffered, a pack being written or indexed); the
    node restarts, every snapshot acknowledged before is still there and complete, and every
    indexed chunk hashes to its id (what scrub checks). Then the round's push completes, is
    acknowledged, and the node is killed at once: that snapshot survives too."""
    node.stop()
    configure(node, pack_mb=1)  # packs written and indexed all through each push
    node.start()
    rnd = random.Random(15)
    src = tmp_path / "src"
    src.mkdir()
    acknowledged: set[bytes] = set()
    for round_ in range(3):
        for i in range(2):  # ~8 MiB of new chunks per round, in files of random sizes
            size = rnd.randrange(3 << 20, 5 << 20)
            (src / f"round{round_}-{i}.bin").write_bytes(rnd.randbytes(size))
        new_chunks = 8 << 20 >> 18  # a lower bound: chunks average 256 KiB at most
        proc = kill_push_midway(
            node, archive_key, src, kill_node=True, after=rnd.randrange(1, new_chunks // 2)
        )
        assert proc.returncode not in (0, None, -9)
        check_store_consistent(node)
        node.start()
        snaps = {bytes(s.snapshot_id): s for s in node.status().snapshots}
        assert acknowledged <= snaps.keys(), "an acknowledged snapshot was lost"
        assert all(snaps[s].chunks_held == snaps[s].chunks_total for s in acknowledged)

        code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, src)
        assert code == 0, err
        acknowledged |= {bytes(s.snapshot_id) for s in node.status().snapshots}
        node.kill()
        check_store_consistent(node)
        node.start()
        snaps = {bytes(s.snapshot_id): s for s in node.status().snapshots}
        assert snaps.keys() == acknowledged
        assert all(s.chunks_held == s.chunks_total for s in snaps.values())
    assert len(acknowledged) == 3
    code, _, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, err
    assert_restores(archive_key, node, src, tmp_path / "dest")


class _DiesBeforeSnapshot:
    """A push whose client dies after its chunks arrived, before PutSnapshot."""

    def __init__(self, inner: Peer) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put_snapshot(self, signed: object) -> None:
        raise PeerUnavailable("client died before PutSnapshot")


def test_record_learned_over_buffered_chunks_is_complete_only_once_durable(
    tmp_path: Path, archive_key: KeyFile
) -> None:
    """B holds a push's chunks only in its write buffer (the push died before PutSnapshot),
    then learns the snapshot's record from A: the record may say complete only once those
    chunks are durable, so after SIGKILL every snapshot B shows complete is in its index."""
    a, b = NodeProcess(tmp_path / "a").init(), NodeProcess(tmp_path / "b").init()
    for n in (a, b):
        n.host(archive_key.archive_id)
        configure(n, sync_interval=1)
    a.peer_add(b)  # A lets B list; B learns of A only later
    a.start()
    b.start()
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "data.bin").write_bytes(random.Random(7).randbytes(3 << 20))
        code, out, err = run_cli("push", "--key", archive_key.path, "--node", a.address, src)
        assert code == 0, err
        client = b.client(archive_key.key)
        try:
            peer = GrpcPeer(client, has_role=pb.ROLE_WRITER)
            with pytest.raises(PeerUnavailable):
                push_tree(archive_key.key, _DiesBeforeSnapshot(peer), str(src), use_cache=False)  # type: ignore[arg-type]
        finally:
            client.close()
        b.peer_add(a)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGHUP)  # reload: B now lists A's records
        snapshot_id = re.search(r"snapshot ([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while True:
            snaps = {s.snapshot_id.hex(): s for s in b.status().snapshots}
            got = snaps.get(snapshot_id)
            if got is not None and got.chunks_held == got.chunks_total:
                break
            assert time.monotonic() < deadline, f"B never learned the record: {b.logs()[-3000:]}"
            time.sleep(0.1)
        b.kill()
        check_store_consistent(b)
    finally:
        a.stop()
        b.kill()

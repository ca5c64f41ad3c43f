"""Replication in process, over the Peer protocol: a real node runtime (store, peer book,
custody) pulls from real stores on disk (LocalPeer) that lie, stall or cut streams short.

No gRPC and no node process: what the e2e tests show through real processes
(tests/e2e/test_replication.py, tests/faults/test_lying_peer.py) is shown here on the
replication logic alone."""

from __future__ import annotations

import base64
import errno
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from samizdat.core.peer import ChunkPart, Peer, SnapshotPage
from samizdat.server.replication import Replicator
from samizdat.server.runtime import NodeRuntime
from samizdat.store import packs
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.localpeer import LocalPeer
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.crafted import CraftedSnapshot, craft_snapshot, file_entry
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(60)


class Wrapped:
    """A LocalPeer with one behaviour changed; everything else passes through."""

    def __init__(self, inner: LocalPeer) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    @property
    def label(self) -> str:
        return f"{type(self).__name__}:{self.inner.label}"


class Flipping(Wrapped):
    """Serves every blob with one byte flipped."""

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        for part in self.inner.get_chunks(ids):
            flipped = [(c, b[:-1] + bytes([b[-1] ^ 1])) for c, b in part.chunks]
            yield ChunkPart(flipped, part.missing)


class Truncating(Wrapped):
    """Ends every stream cleanly after the first chunk, reporting nothing missing."""

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        chunks = [c for part in self.inner.get_chunks(ids) for c in part.chunks]
        yield ChunkPart(chunks[:1])


class Repeating(Wrapped):
    """Sends each chunk twice in its answer (every byte still verifies): were it not an
    offence, one small chunk would keep a whole answer alive in the buffer and count twice."""

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        for part in self.inner.get_chunks(ids):
            yield ChunkPart([c for c in part.chunks for _ in range(2)], part.missing)


class Slow(Wrapped):
    """Answers every chunk call only once `go` is set (or after 0.2 s): a slow link."""

    def __init__(self, inner: LocalPeer) -> None:
        super().__init__(inner)
        self.go = threading.Event()
        self.calls = 0

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        self.calls += 1
        self.go.wait(0.2)
        yield from self.inner.get_chunks(ids)


class Forging(Wrapped):
    """Lists its records with their signatures zeroed."""

    def list_page(self, archive_id: bytes, after: int, max_count: int = 0) -> SnapshotPage:
        page = self.inner.list_page(archive_id, after, max_count)
        forged = []
        for item in page.snapshots:
            signed = pb.SignedSnapshot()
            signed.CopyFrom(item.signed)
            signed.signature = bytes(64)
            forged.append(
                type(item)(
                    signed, item.chunks_held, item.chunks_total, item.position, item.snapshot_id
                )
            )
        return SnapshotPage(forged, page.last_position, page.more)


def random_node_id() -> str:
    return base64.b32encode(os.urandom(32)).decode().rstrip("=").lower()


def source_store(path: Path, snap: CraftedSnapshot) -> LocalPeer:
    """A real store on disk holding `snap` completely."""
    peer = LocalPeer(ChunkStore(path), owns_store=True)
    peer.put_chunks(bytes(snap.snapshot.archive_id), [snap.blobs])
    peer.put_snapshot(snap.snapshot.signed)
    return peer


@pytest.fixture
def snapshot(archive_key: KeyFile) -> CraftedSnapshot:
    files = [file_entry(f"f{i}".encode(), os.urandom(2000 + i)) for i in range(12)]
    return craft_snapshot(archive_key.key, files)


@pytest.fixture
def make_puller(
    tmp_path: Path, archive_key: KeyFile, snapshot: CraftedSnapshot
) -> Iterator[object]:
    """make(*wrappers) -> (runtime, replicator, states by wrapper name): a node runtime whose
    peers are stores holding `snapshot`, one per wrapper (None: honest)."""
    opened: list[object] = []

    def make(*wrappers: type[Wrapped] | None) -> tuple[NodeRuntime, Replicator, list[str]]:
        proc = NodeProcess(tmp_path / "puller")
        proc.init()
        proc.host(archive_key.archive_id)
        peers: dict[str, Peer] = {}
        for index, wrapper in enumerate(wrappers):
            node_id = random_node_id()
            proc.peer_add(node_id, f"127.0.0.1:{9000 + index}")
            inner = source_store(tmp_path / f"peer{index}", snapshot)
            opened.append(inner)
            peers[node_id] = inner if wrapper is None else wrapper(inner)  # type: ignore[assignment]
        runtime = NodeRuntime(proc.directory)
        opened.append(runtime)
        return runtime, Replicator(runtime, lambda cfg: peers[cfg.node_id]), list(peers)

    yield make
    for item in reversed(opened):
        item.close()  # type: ignore[attr-defined]


def held(runtime: NodeRuntime, snap: CraftedSnapshot) -> tuple[int, int]:
    held, total, _ = runtime.store.snapshot_state(bytes(snap.snapshot.id))
    return held, total


def test_honest_peer_fills_the_snapshot(make_puller, snapshot) -> None:  # type: ignore[no-untyped-def]
    runtime, replicator, ids = make_puller(None)
    replicator.run_round()
    assert held(runtime, snapshot) == (len(snapshot.blobs), len(snapshot.blobs))
    assert runtime.store.has_chunks([c for c, _ in snapshot.blobs]) == [True] * len(snapshot.blobs)
    state = replicator.book.state(next(p for p in runtime.peers() if p.node_id == ids[0]))
    assert state.offences == 0 and state.chunks_pulled == len(snapshot.blobs)


@pytest.mark.parametrize(
    ("liar", "offence"),
    [
        (Flipping, "served a bad chunk"),
        (Truncating, "neither sent nor reported missing"),
        (Repeating, "twice"),
    ],
)
def test_lying_peer_is_an_offence_and_the_honest_one_fills(  # type: ignore[no-untyped-def]
    make_puller, snapshot, liar, offence
) -> None:
    runtime, replicator, ids = make_puller(liar, None)
    replicator.run_round()
    assert held(runtime, snapshot) == (len(snapshot.blobs), len(snapshot.blobs))
    states = {p.node_id: replicator.book.state(p) for p in runtime.peers()}
    assert offence in states[ids[0]].last_offence
    assert states[ids[0]].offences == 1 and states[ids[1]].offences == 0
    assert not replicator.book.usable(states[ids[0]])  # backed off


def test_a_liar_alone_stores_nothing_wrong(make_puller, snapshot) -> None:  # type: ignore[no-untyped-def]
    runtime, replicator, _ = make_puller(Flipping)
    replicator.run_round()
    held_now, total = held(runtime, snapshot)
    assert total > 0 and held_now < total
    for chunk_id, _ in snapshot.blobs:
        blob = runtime.store.get_chunk(chunk_id)
        assert blob is None or blob == dict(snapshot.blobs)[chunk_id]


def test_forged_records_are_an_offence_and_not_stored(make_puller, snapshot) -> None:  # type: ignore[no-untyped-def]
    runtime, replicator, ids = make_puller(Forging)
    replicator.run_round()
    assert not runtime.store.has_snapshot(bytes(snapshot.snapshot.id))
    state = replicator.book.state(next(iter(runtime.peers())))
    assert state.bad_records == 1 and "forged" in state.last_offence


def test_a_slow_peer_still_delivers(make_puller, snapshot) -> None:  # type: ignore[no-untyped-def]
    runtime, replicator, ids = make_puller(Slow)
    slow = replicator._peer(next(iter(runtime.peers())))
    assert isinstance(slow, Slow)
    replicator.run_round()
    assert slow.calls > 0
    assert held(runtime, snapshot) == (len(snapshot.blobs), len(snapshot.blobs))
    assert replicator.book.state(next(iter(runtime.peers()))).offences == 0


@pytest.mark.parametrize("pack_bytes", [1, 32 << 20])  # full at every batch / at the end
def test_own_full_disk_ends_the_round_and_is_no_peer_fault(  # type: ignore[no-untyped-def]
    make_puller, snapshot, monkeypatch: pytest.MonkeyPatch, pack_bytes: int
) -> None:
    """Every pack write here fails ENOSPC: the round ends without blaming the peer (no
    offence, not unreachable) and the snapshot is not counted complete; with room again,
    the next round fills it."""
    runtime, replicator, ids = make_puller(None)
    runtime.store._pack_bytes = pack_bytes  # the buffer as full as the case needs

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packs.os, "write", disk_full)
    monkeypatch.setattr(packs.os, "writev", disk_full)
    replicator.run_round()  # ends the round, raises nothing
    state = replicator.book.state(next(iter(runtime.peers())))
    assert state.last_error == "" and state.offences == 0 and replicator.book.usable(state)
    held_now, total = held(runtime, snapshot)
    assert held_now < total
    monkeypatch.undo()
    replicator.run_round()
    assert held(runtime, snapshot) == (len(snapshot.blobs), len(snapshot.blobs))

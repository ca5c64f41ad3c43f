"""Nobody without credentials can stop a node, nor a peer gone rogue (issue 9, item 1).

While 200 calls of each hostile kind are held open against node A (tests/hostile.py: health
Watch streams and unary calls whose request never comes, from strangers; PutChunks streams
that never send, with a self-minted token; GetChunks streams never read, from a configured
peer), `status`, push, restore and replication into node B all still work, and A's RSS stays
under the 300 MiB bound. Before admission control, 16 Watch streams held all 16 threads.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.records import verify_snapshot
from samizdat.core.tokens import node_token
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.admission import LIMITS, STRANGER
from samizdat.server.identity import create_identity
from tests.conftest import KeyFile
from tests.e2e.test_replication import make_tree, push, wait_complete
from tests.healthcluster import configure
from tests.hostile import KINDS, HoldCalls
from tests.nodeproc import run_cli

pytestmark = pytest.mark.timeout(240)

HELD = 200
RSS_BOUND = 300 << 20


def chunk_ids(client: NodeClient) -> list[bytes]:
    """Every chunk id of the node's first snapshot (its lists read as a peer would)."""
    item = client.all_snapshots()[0]
    snap = verify_snapshot(item.snapshot)
    out = list(snap.record.chunk_list_ids)
    for response in client.get_chunks(out[:]):
        for chunk in response.chunks:
            out += [cid for cid, _ in decode_chunk_list(chunk.id, chunk.data)]
    return out[:4096]


def test_held_hostile_calls_leave_members_served_and_memory_bounded(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    rogue = create_identity(_mkdir(tmp_path / "rogue"))  # a configured peer, gone rogue
    a.peer_add(rogue.node_id, "127.0.0.1:9")
    a.peer_add(b)
    b.peer_add(a)
    configure(b, sync_interval=0.5)
    a.start()
    b.start()
    first = push(archive_key, a, make_tree(tmp_path / "s1", 12 << 20, seed=31))
    wait_complete([b], {first})
    rogue_client = NodeClient(NodeAddress.parse(a.address), tokens=peer_tokens(rogue.key))
    try:
        ids = chunk_ids(rogue_client)
    finally:
        rogue_client.close()
    before = a.rss()

    hold = HoldCalls(a.address)
    try:
        started = time.monotonic()
        for kind in KINDS:
            if kind == "unread_get":
                hold.start(kind, HELD, token=node_token(rogue.key, a.node_id), ids=ids)
            else:
                hold.start(kind, HELD)
        # Wait until the node has refused most of what it refuses (at most a cap's worth of
        # each stream kind is admitted; every self-minted PutChunks is refused).
        deadline = time.monotonic() + 90
        while True:
            outcomes = hold.outcomes()
            refused = {k: HELD - outcomes[k]["open"] for k in KINDS}
            if (
                refused["silent_put"] == HELD
                and min(refused["watch"], refused["unread_get"]) >= HELD // 2
            ):
                break
            assert time.monotonic() < deadline, outcomes
            time.sleep(0.2)
        opened = time.monotonic() - started

        timings = {}
        t = time.monotonic()
        code, _, err = run_cli("status", "--node", a.address, "--node", b.address)
        timings["status"] = time.monotonic() - t
        assert code in (0, 1), err  # answered (2 would be a node unreachable)

        t = time.monotonic()
        src = make_tree(tmp_path / "s2", 4 << 20, seed=32)
        second = push(archive_key, a, src)
        timings["push"] = time.monotonic() - t

        t = time.monotonic()
        dest = tmp_path / "restored"
        code, _, err = run_cli("restore", "--key", archive_key, "--node", a.address, dest)
        timings["restore"] = time.monotonic() - t
        assert code == 0, err
        assert (dest / "videos" / "v0.bin").read_bytes() == (src / "videos" / "v0.bin").read_bytes()

        t = time.monotonic()
        wait_complete([b], {first, second})
        timings["replication"] = time.monotonic() - t

        during = a.rss()
        outcomes = hold.outcomes()
    finally:
        hold.close()
    print(
        f"\n{HELD} held per kind, opened in {opened:.1f}s; outcomes {dict(outcomes)}\n"
        + " ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        + f"\nnode A RSS {before / 2**20:.0f} MiB before, {during / 2**20:.0f} MiB while held"
    )
    assert during < RSS_BOUND
    assert outcomes["silent_put"]["open"] == 0  # refused before a message was awaited
    assert outcomes["watch"]["RESOURCE_EXHAUSTED"] >= HELD // 2
    assert outcomes["unread_get"]["RESOURCE_EXHAUSTED"] >= HELD // 2
    assert outcomes["watch"]["open"] <= HELD // 2 and LIMITS[STRANGER].streams < HELD // 2


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path

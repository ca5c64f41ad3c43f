"""Replication between real node processes over mutually authenticated TLS (issue #3)."""

from __future__ import annotations

import filecmp
import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.healthcluster import configure
from tests.netfaults import EvilPeer, TcpLink
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(150)


def make_tree(root: Path, size: int, seed: int, notes: int = 20) -> Path:
    rng = __import__("random").Random(seed)
    (root / "videos").mkdir(parents=True)
    (root / "notes").mkdir()
    for i in range(max(1, size // (4 << 20))):
        (root / "videos" / f"v{i}.bin").write_bytes(rng.randbytes(min(size, 4 << 20)))
    for i in range(notes):
        (root / "notes" / f"n{i}.txt").write_text(f"note {seed}-{i}\n" * 50)
    return root


def push(key: KeyFile, node: NodeProcess, src: Path) -> str:
    code, out, err = run_cli("push", "--key", key, "--node", node.address, src)
    assert code == 0, err
    return re.search(r"snapshot ([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]


def holdings(node: NodeProcess) -> dict[str, tuple[int, int]]:
    return {s.snapshot_id.hex(): (s.chunks_held, s.chunks_total) for s in node.status().snapshots}


def wait_complete(nodes: list[NodeProcess], snapshot_ids: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {n.name: holdings(n) for n in nodes}
        if all(
            set(h) >= snapshot_ids and all(h[s][0] == h[s][1] for s in snapshot_ids)
            for h in states.values()
        ):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no convergence in {timeout}s: {states}")
        time.sleep(0.2)


def mesh(nodes: list[NodeProcess]) -> None:
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.peer_add(b)


def assert_restores(key: KeyFile, node: NodeProcess, src: Path, dest: Path) -> None:
    code, _, err = run_cli("restore", "--key", key, "--node", node.address, dest)
    assert code == 0, err
    cmp = filecmp.dircmp(src, dest)
    assert not (cmp.left_only or cmp.right_only or cmp.diff_files)
    for sub in ("videos", "notes"):
        names = os.listdir(src / sub)
        _, mismatch, errors = filecmp.cmpfiles(src / sub, dest / sub, names, shallow=False)
        assert not mismatch and not errors


Factory = Callable[..., NodeProcess]


def cluster(
    node_factory: Factory, key: KeyFile, names: list[str], **config: object
) -> list[NodeProcess]:
    nodes = [
        node_factory(n, host=[key.archive_id], start=False, jurisdiction=j)
        for n, j in zip(names, ["FR", "DE", "NO", "CH"], strict=False)
    ]
    mesh(nodes)
    for n in nodes:
        configure(n, **config)
        n.start()
    return nodes


def test_push_to_one_node_reaches_every_peer(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    # A long interval: only the push hint can make B and C pull within the test's time.
    a, b, c = cluster(node_factory, archive_key, ["a", "b", "c"], sync_interval=120)
    time.sleep(0.5)  # let the start-up rounds pass
    src = make_tree(tmp_path / "src", 6 << 20, seed=1)
    first = push(archive_key, a, src)
    wait_complete([a, b, c], {first}, timeout=30)
    src2 = make_tree(tmp_path / "src2", 4 << 20, seed=2)
    second = push(archive_key, b, src2)
    wait_complete([a, b, c], {first, second}, timeout=30)
    assert_restores(archive_key, c, src2, tmp_path / "restored")


def test_sigkill_mid_replication_then_convergence(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    a, b, c = cluster(node_factory, archive_key, ["a", "b", "c"], sync_interval=0.5)
    for n in (b, c):  # slow pulls down so that the kill lands mid-transfer
        configure(n, bandwidth_limit_mb=3)
        n.restart()
    src = make_tree(tmp_path / "src", 16 << 20, seed=3)
    snap = push(archive_key, a, src)
    deadline = time.monotonic() + 30
    while True:
        held = [holdings(n).get(snap, (0, 1)) for n in (b, c)]
        if any(0 < h < t for h, t in held):
            break
        assert time.monotonic() < deadline, f"replication never started: {held}"
        time.sleep(0.1)
    a.kill()
    partial = [holdings(n).get(snap, (0, 1)) for n in (b, c)]
    assert any(h < t for h, t in partial), partial
    for n in (b, c):
        configure(n, bandwidth_limit_mb=0)
        n.restart()
    time.sleep(2)  # B and C exchange what each already pulled
    a.start()
    assert holdings(a)[snap][0] == holdings(a)[snap][1], "acknowledged snapshot lost on A"
    wait_complete([a, b, c], {snap}, timeout=60)
    assert_restores(archive_key, c, src, tmp_path / "restored")


def test_empty_node_backfills_whole_archive(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    a, b = cluster(node_factory, archive_key, ["a", "b"], sync_interval=1)
    snaps = {
        push(archive_key, a, make_tree(tmp_path / f"s{i}", 3 << 20, seed=10 + i)) for i in range(2)
    }
    wait_complete([a, b], snaps)
    d = node_factory("d", host=[archive_key.archive_id], start=False, jurisdiction="CH")
    d.peer_add(b)
    configure(d, sync_interval=1)
    b.peer_add(d)  # B accepts D's pulls (SIGHUP reload)
    d.start()
    wait_complete([d], snaps, timeout=60)
    assert_restores(archive_key, d, tmp_path / "s1", tmp_path / "restored")


@pytest.mark.parametrize(
    ("mode", "offence"),
    [
        ("flip", "bad chunk"),
        ("swap", "bad chunk"),
        # GetChunks streams that end early without an error (a truncated stream)
        ("truncate", "neither sent nor reported missing"),
    ],
)
def test_misbehaving_peer_is_worked_around_and_recorded(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path, mode: str, offence: str
) -> None:
    """The receiver rejects what the peer gets wrong, records the offence, gets the chunks
    from the honest peer and converges."""
    honest = node_factory("honest", host=[archive_key.archive_id], start=False)
    receiver = node_factory("receiver", host=[archive_key.archive_id], start=False)
    configure(receiver, sync_interval=0.5)
    evil = EvilPeer(tmp_path / "evil", honest.address, mode).start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)  # lets the proxy read from honest
        honest.peer_add(receiver)
        receiver.peer_add(evil.node_id, evil.hostport)
        receiver.peer_add(honest)
        honest.start()
        src = make_tree(tmp_path / "src", 8 << 20, seed=4)
        snap = push(archive_key, honest, src)
        receiver.start()
        wait_complete([receiver], {snap}, timeout=60)
        assert evil.served_bad > 0, "the evil peer was never asked"
        peers = {p.node_id: p for p in receiver.status(archive_key.key).peers}
        if mode != "truncate":  # a truncation serves no bad bytes, only too few
            assert peers[evil.node_id].bad_chunks_received > 0
        assert offence in peers[evil.node_id].last_offence
        assert peers[honest.node_id].bad_chunks_received == 0
        assert not peers[honest.node_id].last_offence
        assert_restores(archive_key, receiver, src, tmp_path / "restored")
    finally:
        evil.stop()


def test_forged_snapshot_records_never_stored_or_propagated(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    honest = node_factory("honest", host=[archive_key.archive_id], start=False)
    receiver = node_factory("receiver", host=[archive_key.archive_id], start=False)
    downstream = node_factory("downstream", host=[archive_key.archive_id], start=False)
    evil = EvilPeer(tmp_path / "evil", honest.address, "forge").start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)
        receiver.peer_add(evil.node_id, evil.hostport)  # receiver learns only via evil
        receiver.peer_add(downstream)
        downstream.peer_add(receiver)
        for n in (receiver, downstream):
            configure(n, sync_interval=0.3)
        for n in (honest, receiver, downstream):
            n.start()
        push(archive_key, honest, make_tree(tmp_path / "src", 1 << 20, seed=5))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert holdings(receiver) == {}, "a forged record was stored"
            assert holdings(downstream) == {}, "a forged record was propagated"
            time.sleep(0.3)
        peers = {p.node_id: p for p in receiver.status(archive_key.key).peers}
        assert "forged snapshot record" in peers[evil.node_id].last_offence
        assert peers[evil.node_id].bad_records_received >= 2
    finally:
        evil.stop()


def test_revoked_node_is_refused_by_every_peer(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    a, b, c = cluster(node_factory, archive_key, ["a", "b", "c"], sync_interval=0.5)
    first = push(archive_key, a, make_tree(tmp_path / "s1", 1 << 20, seed=6))
    wait_complete([a, b, c], {first})
    a.peer_revoke(c)  # SIGHUP: the running nodes reload their config
    b.peer_revoke(c)
    time.sleep(1)
    second = push(archive_key, a, make_tree(tmp_path / "s2", 1 << 20, seed=7))
    wait_complete([a, b], {first, second})
    # C is refused at its first call: it never learns the new snapshot.
    time.sleep(2)
    assert second not in holdings(c)
    errors = [p.last_error for p in c.status().peers if p.node_id in (a.node_id, b.node_id)]
    assert errors and all("revoked" in e for e in errors), errors
    # Nothing C holds is accepted: a snapshot pushed to C never reaches A or B.
    from_c = push(archive_key, c, make_tree(tmp_path / "s3", 1 << 20, seed=8))
    time.sleep(3)
    assert from_c not in holdings(a) and from_c not in holdings(b)
    revoked = [p for p in a.status().peers if p.revoked]
    assert [p.node_id for p in revoked] == [c.node_id]


def _rounds(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith("samizdat_replication_round_seconds_count"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_noop_round_cost_does_not_grow_with_archive(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    a = node_factory("a", host=[archive_key.archive_id], start=True)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    proxy = TcpLink(a.port)
    metrics_port = free_port()
    try:
        a.peer_add(b)
        b.peer_add(a.node_id, f"127.0.0.1:{proxy.port}")
        configure(b, sync_interval=0.1, metrics_listen=f"127.0.0.1:{metrics_port}")
        b.start()

        def per_round() -> float:
            time.sleep(1.0)  # let any catch-up finish
            proxy.reset()
            r0 = _rounds(metrics_port)
            time.sleep(3.0)
            rounds = _rounds(metrics_port) - r0
            assert rounds >= 5, rounds
            return proxy.reset() / rounds

        small = push(archive_key, a, make_tree(tmp_path / "small", 2 << 20, seed=9, notes=0))
        wait_complete([b], {small})
        small_cost = per_round()
        big = push(archive_key, a, make_tree(tmp_path / "big", 40 << 20, seed=10, notes=0))
        wait_complete([b], {small, big}, timeout=60)
        big_chunks = holdings(b)[big][1]
        # chunk counts vary with the (random) chunker seed: 20x the bytes, at least 8x the chunks
        assert big_chunks >= 8 * holdings(b)[small][1]
        big_cost = per_round()
        print(f"no-op round: {small_cost:.0f} B (small archive), {big_cost:.0f} B (20x archive)")
        assert small_cost < 16 * 1024 and big_cost < 16 * 1024
        assert big_cost < small_cost * 1.5 + 200
    finally:
        proxy.close()


def test_peer_whose_link_goes_silent_mid_backfill_is_routed_around(
    node_factory: Factory, archive_key: KeyFile, tmp_path: Path
) -> None:
    """A black hole, not a closed connection: a peer's traffic stops mid-transfer with
    nothing reset (a seized node behind a firewall). The puller gives up on the silent call
    after STALL_SECONDS, asks nothing more of that peer in this round, and gets the chunks
    it was assigned from the other peer (before: a keepalive timeout per call, then a unary
    deadline in the next round before the rest was asked of anyone: 80 s instead of 15)."""
    a, b = cluster(node_factory, archive_key, ["a", "b"], sync_interval=0.5)
    src = make_tree(tmp_path / "src", 12 << 20, seed=12)
    snap = push(archive_key, a, src)
    wait_complete([a, b], {snap}, timeout=60)
    link = TcpLink(a.port, rate=2e6)
    try:
        d = node_factory("d", host=[archive_key.archive_id], start=False)
        d.peer_add(a.node_id, f"127.0.0.1:{link.port}")
        d.peer_add(b)
        a.peer_add(d)
        b.peer_add(d)
        configure(d, sync_interval=0.5)
        d.start()
        deadline = time.monotonic() + 30
        while holdings(d).get(snap, (0, 1))[0] == 0:
            assert time.monotonic() < deadline, "back-fill never started"
            time.sleep(0.05)
        link.freeze()
        wait_complete([d], {snap}, timeout=60)
        assert "sent nothing for" in d.logs(), d.logs()
    finally:
        link.close()
    assert_restores(archive_key, d, src, tmp_path / "restored")

"""A lying peer cannot stall replication (issue 9, item 2).

One receiver pulls from an honest node and from one EvilPeer per way of answering wrongly
(tests/netfaults.py, LYING_MODES). Every wrong answer must be an offence recorded against that
peer (status, metrics), back it off, and never stop the round for the others: the receiver
still gets everything from the honest node. Before the peer book, one flag too few from one
peer failed every round for all of them.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest

from samizdat.rpc.remote import NodeClient, peer_tokens
from tests.conftest import KeyFile
from tests.e2e.test_replication import holdings, make_tree, push, wait_complete
from tests.healthcluster import configure
from tests.netfaults import FORGED_CUSTODY, LYING_MODES, EvilPeer
from tests.nodeproc import free_port

pytestmark = pytest.mark.timeout(150)


def _metric_lines(port: int, name: str) -> list[str]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


def test_every_lie_is_an_offence_and_the_round_goes_on(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id], start=False)
    receiver = node_factory("receiver", host=[archive_key.archive_id], start=False)
    metrics_port = free_port()
    configure(receiver, sync_interval=0.5, metrics_listen=f"127.0.0.1:{metrics_port}")
    liars = {
        mode: EvilPeer(tmp_path / f"evil-{mode}", honest.address, mode).start()
        for mode in LYING_MODES
    }
    try:
        for evil in liars.values():
            honest.peer_add(evil.node_id, evil.hostport)  # lets the proxy read from honest
            receiver.peer_add(evil.node_id, evil.hostport)
        receiver.peer_add(honest)
        honest.peer_add(receiver)
        honest.start()
        first = push(archive_key, honest, make_tree(tmp_path / "s1", 3 << 20, seed=21))
        receiver.start()
        wait_complete([receiver], {first}, timeout=60)

        deadline = time.monotonic() + 60
        while True:
            peers = {p.node_id: p for p in receiver.status(archive_key.key).peers}
            pending = {
                mode: peers[evil.node_id].last_offence
                for mode, evil in liars.items()
                if LYING_MODES[mode] not in peers[evil.node_id].last_offence
            }
            if not pending:
                break
            assert time.monotonic() < deadline, f"lies not recorded as offences: {pending}"
            time.sleep(0.3)
        now = time.time()
        for mode, evil in liars.items():
            p = peers[evil.node_id]
            assert evil.served_bad > 0, mode
            assert p.offences >= 1 and p.backed_off_until_unix > now - 5, (mode, p)
        assert peers[honest.node_id].offences == 0 and not peers[honest.node_id].last_offence

        # Backed off, the liars stall nothing: a second snapshot arrives from the honest node.
        second = push(archive_key, honest, make_tree(tmp_path / "s2", 1 << 20, seed=22))
        wait_complete([receiver], {first, second}, timeout=60)
        assert set(holdings(receiver)) == {first, second}

        offences = _metric_lines(metrics_port, "samizdat_peer_offences_total")
        kinds = {re.search(r'kind="(\w+)"', line).group(1) for line in offences}  # type: ignore[union-attr]
        assert kinds == {"bad_answer"}, offences
        assert len(offences) == len(LYING_MODES)
    finally:
        for evil in liars.values():
            evil.stop()


def test_a_flood_of_hints_starts_no_more_rounds(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """NotifySnapshots from a configured peer wakes replication, but rounds start at most once
    a second however many hints arrive (each round lists every peer)."""
    receiver = node_factory("receiver", host=[archive_key.archive_id], start=False)
    flooder = EvilPeer(tmp_path / "flooder", receiver.address, "replay").start()
    metrics_port = free_port()
    configure(receiver, sync_interval=60, metrics_listen=f"127.0.0.1:{metrics_port}")
    try:
        receiver.peer_add(flooder.node_id, flooder.hostport)
        receiver.start()
        client = NodeClient(
            _address(receiver), tokens=peer_tokens(flooder.identity.key)
        )  # the flooder's own identity: a configured peer
        try:

            def rounds() -> float:
                lines = _metric_lines(metrics_port, "samizdat_replication_round_seconds_count")
                return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

            before = rounds()
            started = time.monotonic()
            hints = 0
            while time.monotonic() - started < 3.0:
                client.notify_snapshots(b"", timeout=5)
                hints += 1
            elapsed = time.monotonic() - started
            # Every round that starts lists the flooder once; at most one per second.
            assert rounds() - before <= elapsed / 1.0 + 2, (hints, rounds() - before)
            assert hints > 20
        finally:
            client.close()
    finally:
        flooder.stop()


def _address(node):  # type: ignore[no-untyped-def]
    from samizdat.rpc.address import NodeAddress

    return NodeAddress.parse(node.address)


def test_a_page_of_forged_custody_records_is_one_offence(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A peer listing hundreds of custody records its archive key never signed commits one
    offence per listing, like a page of forged snapshot records, not one (a warning, a
    metric, a write of its state) per record; the round goes on with the others."""
    honest = node_factory("honest", host=[archive_key.archive_id], start=False)
    receiver = node_factory("receiver", host=[archive_key.archive_id], start=False)
    configure(receiver, sync_interval=0.5)
    evil = EvilPeer(tmp_path / "evil", honest.address, "custody_forge", archive_key.key).start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)
        receiver.peer_add(evil.node_id, evil.hostport)
        receiver.peer_add(honest)
        honest.peer_add(receiver)
        honest.start()
        first = push(archive_key, honest, make_tree(tmp_path / "s1", 1 << 20, seed=3))
        receiver.start()
        wait_complete([receiver], {first}, timeout=60)
        deadline = time.monotonic() + 60
        while not (peer := _peer(receiver, evil.node_id, archive_key)).last_offence:
            assert time.monotonic() < deadline, "forged custody records not an offence"
            time.sleep(0.1)
        assert "forged custody record" in peer.last_offence
        assert peer.offences == 1, peer
        assert peer.bad_records_received == FORGED_CUSTODY, peer
        assert not receiver.status().custody_records  # none of them was kept
    finally:
        evil.stop()


def _peer(node, node_id: str, key: KeyFile):  # type: ignore[no-untyped-def]
    """`node_id` as `node`'s status shows it to a member (the texts, not their category)."""
    return next(p for p in node.status(key.key).peers if p.node_id == node_id)

"""A stranger's GetStatus does not tell where the node's peers are (review R20).

GetStatus is public; for a caller without a member's token it blanked `peers[].address`, but
`peers[].last_error` was the text of the last failed call to that peer, which named it as its
client labels it, NODE_ID@HOST:PORT (and gRPC's own details name the address too): whoever
reached one node's port learnt where its peers are as soon as one was unreachable once. The
peer book's texts now name peers by node id only, and a stranger sees only categories (the
error's reason code, the offence's kind); a member still sees the text, and the address in its
own field.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient
from samizdat.server.peerbook import PeerState, unnamed
from tests.conftest import KeyFile
from tests.healthcluster import configure

pytestmark = pytest.mark.timeout(120)


def test_a_strangers_status_names_no_peer_address_and_a_members_still_explains(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    a.peer_add(b)
    configure(a, sync_interval=1)
    a.start()  # b is not running: a's pulls from it fail
    hostport = b.address.split("@", 1)[1]
    port = hostport.rsplit(":", 1)[1]
    deadline = time.monotonic() + 60
    while not [p for p in a.status().peers if p.last_error]:  # no key: a stranger's call
        assert time.monotonic() < deadline, "a never recorded a failed pull from b"
        time.sleep(0.2)
    (peer,) = a.status().peers
    assert peer.address == "" and peer.last_error == "peer_unavailable", peer
    member = NodeClient(NodeAddress.parse(a.address), archive_key.key)
    try:
        (seen,) = member.status().peers
    finally:
        member.close()
    print("stranger:", peer.last_error, "| member:", seen.address, seen.last_error)
    assert seen.address == hostport
    assert b.node_id[:8] in seen.last_error and "unreachable" in seen.last_error
    assert port not in seen.last_error and "127.0.0.1" not in seen.last_error


@pytest.mark.parametrize(
    ("address", "text", "expected"),
    [
        (
            "127.0.0.1:7700",
            "node abcd1234@127.0.0.1:7700 is unreachable or failed: ipv4:127.0.0.1:7700: refused",
            "node abcd1234 is unreachable or failed: ipv4:<peer address>: refused",
        ),
        (
            "[fd00::1]:7700",
            "node abcd1234@[fd00::1]:7700 is busy: connect to fd00::1 port 7700 failed",
            "node abcd1234 is busy: connect to <peer host> port 7700 failed",
        ),
        (
            "peer.example.org:7700",
            "resolving peer.example.org failed",
            "resolving <peer host> failed",
        ),
        ("node:7700", "node abcd1234@node:7700 sent junk", "node abcd1234 sent junk"),
    ],
)
def test_the_peer_books_texts_name_peers_by_node_id(address: str, text: str, expected: str) -> None:
    assert unnamed(text, PeerState("abcd1234" * 7, address=address)) == expected

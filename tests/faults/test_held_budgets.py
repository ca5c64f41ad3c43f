"""Budgets that a seized member key or a stranger cannot hold against a revocation (review
R15, R19).

- Every holder of an archive's keys shared one budget per node (32 calls, 16 streams): a
  seized writer key holding 16 Watch streams and 16 GetStatus calls whose request never comes
  (re-opened as the node ends them) kept its own revocation out (`key revoke-writer` with the
  archive key: "node busy"), and every other custodian of the archive out too (R15). The
  archive key and each member key now have budgets of their own.
- The keyless publishing lane (4 calls, what `samizdat key publish` sends from the online
  machine of the offline ceremony) was held the same way by anyone: PutCustodyRecord calls
  whose request never comes, re-opened every REQUEST_WAIT (R19). In a full stranger lane a new
  call now ends the lane's oldest call still waiting for its request, so a caller that sends
  its request with its headers always gets in.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samizdat.core.errors import NodeBusy
from samizdat.core.keys import load_key
from samizdat.core.tokens import archive_token
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient
from samizdat.server.admission import (
    LIMITS,
    MEMBER,
    MEMBERS,
    PUBLISHER,
    REQUEST_WAIT,
    STRANGER,
)
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.hostile import HoldCalls
from tests.nodeproc import run_cli

pytestmark = pytest.mark.timeout(150)


def delegate(command: str, archive_key: KeyFile, name: str, out: Path, node: str) -> str:
    """Certify a member key (`command`: "delegate" a writer, "reader"); its key id."""
    code, out_text, err = run_cli(
        "key", command, archive_key, "--name", name, "--out", out, "--node", node
    )
    assert code == 0, err
    return out_text.strip().splitlines()[-1]


def bodies(address: str) -> list[str]:
    """The kinds of the custody records the node holds (the body each carries)."""
    client = NodeClient(NodeAddress.parse(address))
    try:
        records = client.all_custody_records()
    finally:
        client.close()
    return [r.kind for r in records]


def busy(address: str, key_path: Path | None) -> bool:
    """Whether a GetStatus with `key_path`'s key (or none) is refused as busy."""
    client = NodeClient(NodeAddress.parse(address), load_key(key_path) if key_path else None)
    try:
        client.status()
    except NodeBusy:
        return True
    finally:
        client.close()
    return False


def test_a_seized_writer_key_fills_only_its_own_budget_and_is_revoked_meanwhile(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("a", host=[archive_key.archive_id])
    seized_id = delegate("delegate", archive_key, "laptop", tmp_path / "w.key", node.address)
    delegate("reader", archive_key, "auditor", tmp_path / "r.key", node.address)
    token = archive_token(load_key(tmp_path / "w.key"), pb.ROLE_WRITER, node.node_id)
    hold = HoldCalls(node.address)
    try:
        limits = LIMITS[MEMBER]
        hold.start("watch_loop", limits.streams, token)
        hold.start("withheld", limits.calls - limits.streams, token)
        deadline = time.monotonic() + 30
        while not busy(node.address, tmp_path / "w.key"):  # the seized key's budget is full
            assert time.monotonic() < deadline, hold.ended()
            time.sleep(0.1)
        # Another member key of the archive is served, and the archive key revokes the seized
        # one (listing its snapshots, then sending the record with its token).
        assert not busy(node.address, tmp_path / "r.key")
        code, _, err = run_cli(
            "key", "revoke-writer", archive_key, seized_id, "--reason", "seized",
            "--node", node.address, "--out", tmp_path / "r.rec",
        )  # fmt: skip
        assert code == 0, (err, hold.ended())
        ended = hold.ended()
    finally:
        hold.close()
    print("held calls ended:", dict(ended))
    assert bodies(node.address).count("key_revocation") == 1


def test_strangers_withholding_requests_keep_out_no_published_record_nor_status(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("a", host=[archive_key.archive_id])
    bystander = node_factory("b", start=False)
    # At the offline machine: the revocation, written to a file.
    code, _, err = run_cli(
        "node", "revoke", "--key", archive_key, bystander.node_id, "--out", tmp_path / "r.rec"
    )
    assert code == 0, err
    hold = HoldCalls(node.address)
    try:
        hold.start("withheld_put", LIMITS[PUBLISHER].calls + 4)  # more than the lane holds
        hold.start("withheld", LIMITS[STRANGER].calls + 4)
        deadline = time.monotonic() + 30
        while not all(
            hold.ended()[f"{k}:RESOURCE_EXHAUSTED"] for k in ("withheld_put", "withheld")
        ):
            assert time.monotonic() < deadline, hold.ended()  # the lanes are full
            time.sleep(0.1)
        # At the online machine, as a patient custodian would: tries past the node's ending of
        # the held calls (REQUEST_WAIT) and their re-opening.
        tries: list[tuple[int, str]] = []
        tried_until = time.monotonic() + REQUEST_WAIT + 5
        while not tries or (tries[-1][0] != 0 and time.monotonic() < tried_until):
            code, _, err = run_cli("key", "publish", tmp_path / "r.rec", "--node", node.address)
            tries.append((code, err.strip()[-120:]))
        assert tries[-1][0] == 0, (tries, hold.ended())
        statuses, deadline = 1, time.monotonic() + REQUEST_WAIT + 5
        while busy(node.address, None):  # a stranger's status gets in as well
            statuses += 1
            assert time.monotonic() < deadline, hold.ended()
        ended = hold.ended()
    finally:
        hold.close()
    print(f"publish: {len(tries)} tries, status: {statuses}; held calls ended:", dict(ended))
    assert ended["withheld_put:RESOURCE_EXHAUSTED"] > 0  # the lane was held and displaced
    assert bodies(node.address) == ["node_revocation"]


def test_member_keys_together_hold_at_most_their_archives_share_and_never_the_keys(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("a", host=[archive_key.archive_id])
    paths = [tmp_path / f"w{i}.key" for i in range(3)]
    for i, path in enumerate(paths):
        delegate("delegate", archive_key, f"laptop {i}", path, node.address)
    own, together = LIMITS[MEMBER].calls, LIMITS[MEMBERS].calls
    holders = together // own  # seized keys that fill the archive's member share
    assert holders < len(paths)
    hold = HoldCalls(node.address)
    try:
        for path in paths[:holders]:
            token = archive_token(load_key(path), pb.ROLE_WRITER, node.node_id)
            hold.start("withheld", own, token)
        refusal, deadline = "", time.monotonic() + 30
        while not refusal:  # until the member keys' share is full
            assert time.monotonic() < deadline, hold.ended()
            client = NodeClient(NodeAddress.parse(node.address), load_key(paths[-1]))
            try:
                client.status()
                time.sleep(0.1)
            except NodeBusy as e:
                refusal = str(e)
            finally:
                client.close()
        assert not busy(node.address, archive_key.path)  # the archive key's budget is its own
    finally:
        hold.close()
    assert MEMBERS in refusal, refusal

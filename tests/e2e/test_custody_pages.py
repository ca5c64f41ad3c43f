"""Restore reads every page of each node's custody log (review R17).

ListCustodyRecords answers 3 MiB pages ("three fit a page" of the 1 MiB revocations that keep
~30,000 snapshots) and the log is in arrival order, so the revocation made after a seizure is
the one past the first page. Restore read page one only: the seized node's snapshot signed by
the stolen (revoked) writer key was restored as `latest`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from samizdat.core.custody import next_serial, sign_custody_record
from samizdat.core.keys import ArchiveKey
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_custody_cluster import push, snapshot_of
from tests.nodeproc import NodeProcess, run_cli

pytestmark = pytest.mark.timeout(150)

KEPT_IDS = 30_000  # ~1.02 MB a revocation, under the node's 1 MiB record limit


def old_revocation(root: ArchiveKey, serial: int) -> pb.SignedCustodyRecord:
    """A revocation of some earlier writer that kept its (many) snapshots: about 1 MB."""
    body = pb.KeyRevocation(
        member_key=secrets.token_bytes(32),
        last_sequence=KEPT_IDS,
        kept_snapshot_ids=sorted(secrets.token_bytes(32) for _ in range(KEPT_IDS)),
        reason="left the group",
    )
    return sign_custody_record(root, pb.CustodyRecord(serial=serial, key_revocation=body)).signed


def test_restore_honours_a_revocation_past_the_first_custody_page(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    honest = node_factory("honest", host=[archive_key.archive_id])
    seized = node_factory("seized", host=[archive_key.archive_id])
    code, out, err = run_cli(
        "key", "delegate", archive_key, "--name", "laptop", "--out", tmp_path / "w.key",
        "--node", honest.address, "--node", seized.address,
    )  # fmt: skip
    assert code == 0, err
    writer_id = out.strip().splitlines()[-1]
    good = tmp_path / "good"
    good.mkdir()
    (good / "letter.txt").write_text("the real one\n")
    for node in (honest, seized):
        code, out, err = push(tmp_path / "w.key", node, good)
        assert code == 0, err
    # The archive's custody log grew over the years: four revocations of ~1 MB each.
    client = honest.client(archive_key.key)
    try:
        for i in range(4):
            client.put_custody_record(old_revocation(archive_key.key, next_serial([]) + i))
        assert client.list_custody_records(0).more
    finally:
        client.close()
    # The laptop is seized: the thief pushes its own version to the node it also seized.
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "letter.txt").write_text("the forged one\n")
    code, out, err = push(tmp_path / "w.key", seized, evil)
    assert code == 0, err
    forged = snapshot_of(out)
    # The custodian revokes the stolen key at the honest node (the seized one is lost).
    code, out, err = run_cli(
        "key", "revoke-writer", archive_key, writer_id, "--reason", "seized",
        "--node", honest.address,
    )  # fmt: skip
    assert code == 0, err
    dest = tmp_path / "restored"
    code, out, err = run_cli(
        "restore", "--key", archive_key, "--node", honest.address, "--node", seized.address,
        "--snapshot", "latest", dest,
    )  # fmt: skip
    assert code == 0, err
    assert (dest / "letter.txt").read_text() == "the real one\n", f"restored {forged[:16]}"
    code, out, err = run_cli(  # ls refuses to list it by id, as not among the verified ones
        "ls", "--key", archive_key, "--node", honest.address, "--node", seized.address, forged,
    )  # fmt: skip
    assert code != 0 and "no snapshot matches" in err, (code, out, err)

"""What a stolen writer key leaves behind once the archive key revokes it (issue #12): its
snapshots that the revocation does not keep count for nothing, not even for the sequence of the
next push; and `key revoke-writer` keeps every snapshot of the writer the nodes list, not only
those of the listing's first page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from samizdat.core.keys import load_key
from samizdat.core.peer import LIST_PAGE_RECORDS
from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, file_entry, upload
from tests.e2e.test_many_snapshots import fill_store
from tests.nodeproc import NodeProcess, run_cli

pytestmark = pytest.mark.timeout(150)

LAST_SEQUENCE = 2**64 - 1  # SnapshotRecord.sequence is a uint64


def test_a_revoked_writers_snapshot_at_the_last_sequence_does_not_block_pushes(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    node = node_factory("n", host=[archive_key.archive_id])
    writer_file = tmp_path / "amal.key"
    code, _, err = run_cli(
        "key", "delegate", archive_key, "--name", "amal", "--out", writer_file,
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("legitimate\n")
    code, _, err = run_cli("push", "--key", writer_file, "--node", node.address, src)
    assert code == 0, err

    # The key is stolen: the thief signs a snapshot with the last sequence number there is,
    # and uploads it before the custodians revoke the key.
    stolen = load_key(writer_file)
    planted = craft_snapshot(stolen, [file_entry(b"planted.txt", b"forged\n")], LAST_SEQUENCE)
    client = node.client(stolen)
    try:
        upload(client, planted)
    finally:
        client.close()
    code, _, err = run_cli(
        "key", "revoke-writer", archive_key, stolen.member_key.hex(), "--keep-through", "1",
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err

    # The node still holds the planted record (the log is grow-only), but nobody counts it:
    # the next push gets a sequence after the kept ones, and it is what `latest` restores.
    (src / "a.txt").write_text("after the revocation\n")
    code, _, err = run_cli("push", "--key", archive_key, "--node", node.address, src)
    assert code == 0, err
    dest = tmp_path / "restored"
    code, _, err = run_cli("restore", "--key", archive_key, "--node", node.address, dest)
    assert code == 0, err
    assert (dest / "a.txt").read_text() == "after the revocation\n"
    assert not (dest / "planted.txt").exists()


def test_revoke_writer_keeps_the_writers_snapshots_beyond_the_first_listing_page(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    node = node_factory("n", host=[archive_key.archive_id], start=False)
    fill_store(node, archive_key, LIST_PAGE_RECORDS + 1)  # more than one page before it
    node.start()
    writer_file = tmp_path / "amal.key"
    code, _, err = run_cli(
        "key", "delegate", archive_key, "--name", "amal", "--out", writer_file,
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("the writer's legitimate push\n")
    code, _, err = run_cli("push", "--key", writer_file, "--node", node.address, src)
    assert code == 0, err

    # Revoked with the default: every snapshot of the writer that the node lists is kept.
    writer_id = load_key(writer_file).member_key.hex()
    code, _, err = run_cli("key", "revoke-writer", archive_key, writer_id, "--node", node.address)
    assert code == 0, err
    dest = tmp_path / "restored"
    code, _, err = run_cli("restore", "--key", archive_key, "--node", node.address, dest)
    assert code == 0, err
    assert (dest / "a.txt").read_text() == "the writer's legitimate push\n"

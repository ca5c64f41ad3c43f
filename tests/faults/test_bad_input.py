"""Bad input from clients or a seized node: wrong keys, forged or foreign snapshot records,
chunks whose bytes do not match their id. Each is refused with a clear error; nothing of the
archive is lost or altered."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from samizdat.core.errors import (
    AccessDenied,
    IncompleteSnapshot,
    IntegrityError,
    NotHosted,
    SignatureError,
    UsageError,
)
from samizdat.core.keys import ArchiveKey, save_key
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile, make_key_file
from tests.crafted import craft_snapshot, file_entry, put_blobs, upload
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree

pytestmark = pytest.mark.timeout(90)


def pushed(node: NodeProcess, key: KeyFile, src: Path) -> None:
    code, _, err = run_cli("push", "--key", key.path, "--node", node.address, src)
    assert code == 0, err


def snapshot_ids(node: NodeProcess) -> set[bytes]:
    return {s.snapshot_id for s in node.status().snapshots}


# ------------------------------------------------------------------ wrong archive key


def test_restore_and_verify_with_an_unrelated_key_fail_cleanly(
    node: NodeProcess,
    archive_key: KeyFile,
    other_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    pushed(node, archive_key, sample_tree)
    dest = tmp_path / "dest"
    for command in (["restore", dest], ["verify"], ["ls", "latest"]):
        code, out, err = run_cli(
            command[0], "--key", other_key.path, "--node", node.address, *command[1:]
        )
        assert code == 2, (command, code, err)  # nothing to read with this key here
        assert "does not host the archive of the presented key" in err, err
        assert "Traceback" not in err
    assert not dest.exists()
    # The node also refuses to serve chunks to that key (it does not host its archive).
    client = node.client(other_key.key)
    try:
        with pytest.raises(NotHosted, match="does not host the archive"):
            client.has_chunks([bytes(32)])
    finally:
        client.close()


def test_restore_with_a_damaged_key_of_the_same_archive_writes_nothing(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    """Same signing key (same archive id, so the node serves it), other master secret:
    every chunk fails authentication; the error says so and no file is written."""
    pushed(node, archive_key, sample_tree)
    wrong = ArchiveKey(archive_key.key.signing_seed, os.urandom(32))
    save_key(wrong, tmp_path / "wrong.key")
    dest = tmp_path / "dest"
    code, _, err = run_cli("restore", "--key", tmp_path / "wrong.key", "--node", node.address, dest)
    assert code == 1
    assert "does not decrypt under this archive key (wrong key?)" in err, err
    assert "Traceback" not in err
    assert not dest.exists() or list(dest.iterdir()) == []
    code, _, err = run_cli("verify", "--key", tmp_path / "wrong.key", "--node", node.address)
    assert code == 1 and "wrong key" in err
    # The right key still restores everything.
    code, _, err = run_cli(
        "restore", "--key", archive_key.path, "--node", node.address, tmp_path / "ok"
    )
    assert code == 0, err
    assert_same_tree(sample_tree, tmp_path / "ok")


def test_passphrase_protected_key(node_factory, tmp_path: Path, sample_tree: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"SAMIZDAT_PASSPHRASE": "correct horse battery"}
    code, out, err = run_cli("key", "new", tmp_path / "p.key", env=env)
    assert code == 0, err
    archive_id = out.strip()
    node = node_factory("np", host=[archive_id])
    code, _, err = run_cli(
        "push", "--key", tmp_path / "p.key", "--node", node.address, sample_tree, env=env
    )
    assert code == 0, err
    code, _, err = run_cli(
        "restore",
        "--key",
        tmp_path / "p.key",
        "--node",
        node.address,
        tmp_path / "dest",
        env={"SAMIZDAT_PASSPHRASE": "wrong"},
    )
    assert code == 1 and "wrong passphrase" in err
    assert not (tmp_path / "dest").exists()
    code, _, err = run_cli(
        "restore", "--key", tmp_path / "p.key", "--node", node.address, tmp_path / "dest"
    )
    assert code == 1 and "protected by a passphrase" in err
    code, _, err = run_cli("key", "new", tmp_path / "p.key", env=env)
    assert code == 2 and "refusing to overwrite" in err


# ------------------------------------------------------------- forged snapshot records


def test_snapshot_with_a_bad_signature_is_rejected(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    pushed(node, archive_key, sample_tree)
    before = snapshot_ids(node)
    crafted = craft_snapshot(archive_key.key, [file_entry(b"a.txt", b"forged content")])
    client = node.client(archive_key.key)
    try:
        put_blobs(client, bytes(archive_key.key.archive_id), crafted.blobs)
        signed = crafted.snapshot.signed
        record = pb.SnapshotRecord.FromString(signed.record)
        record.sequence = 1000  # altered after signing
        altered = pb.SignedSnapshot(
            record=record.SerializeToString(deterministic=True), signature=signed.signature
        )
        with pytest.raises(SignatureError, match="does not verify"):
            client.put_snapshot(altered)
        flipped = bytearray(signed.signature)
        flipped[10] ^= 0x01
        with pytest.raises(SignatureError, match="does not verify"):
            client.put_snapshot(pb.SignedSnapshot(record=signed.record, signature=bytes(flipped)))
        # signed by an impostor key but naming our archive
        impostor = ArchiveKey.generate()
        raw = signed.record
        with pytest.raises(SignatureError):
            forged = impostor.sign("snapshot record", raw)
            client.put_snapshot(pb.SignedSnapshot(record=raw, signature=forged))
        # INVALID_ARGUMENT either way; the client maps it by its wording
        with pytest.raises((SignatureError, UsageError), match="record is malformed"):
            client.put_snapshot(pb.SignedSnapshot(record=b"\xff\x00garbage", signature=b""))
    finally:
        client.close()
    assert snapshot_ids(node) == before
    code, out, err = run_cli("snapshots", "--node", node.address)
    assert code == 0 and out.count(archive_key.archive_id[:12]) == 1, out


def test_snapshot_for_an_archive_the_node_does_not_host_is_rejected(
    node: NodeProcess, archive_key: KeyFile, other_key: KeyFile
) -> None:
    crafted = craft_snapshot(other_key.key, [file_entry(b"a.txt", b"not hosted here")])
    # with the foreign archive's own writer token
    foreign = node.client(other_key.key)
    try:
        with pytest.raises(NotHosted, match="does not host archive"):
            upload(foreign, crafted)
        with pytest.raises(NotHosted, match="does not host archive"):
            foreign.put_snapshot(crafted.snapshot.signed)
    finally:
        foreign.close()
    # with a writer token of a hosted archive: still not that archive's writer
    ours = node.client(archive_key.key)
    try:
        with pytest.raises(AccessDenied, match="writer token signed by this archive"):
            ours.put_snapshot(crafted.snapshot.signed)
        with pytest.raises(AccessDenied):
            put_blobs(ours, bytes(other_key.key.archive_id), crafted.blobs)
    finally:
        ours.close()
    status = node.status()
    assert list(status.snapshots) == [] and status.chunks_stored == 0


def test_writes_without_a_token_or_with_a_reader_token_are_refused(
    node: NodeProcess, archive_key: KeyFile
) -> None:
    crafted = craft_snapshot(archive_key.key, [file_entry(b"a.txt", b"x")])
    anonymous = node.client(None)
    try:
        with pytest.raises(AccessDenied, match="needs an authentication token"):
            anonymous.put_snapshot(crafted.snapshot.signed)
    finally:
        anonymous.close()
    reader = node.client(archive_key.key)
    try:
        reader.metadata(pb.ROLE_READER)  # mint a reader token and present it for a write
        reader._tokens[pb.ROLE_WRITER] = reader._tokens[pb.ROLE_READER]
        with pytest.raises(AccessDenied):
            reader.put_snapshot(crafted.snapshot.signed)
    finally:
        reader.close()
    assert node.status().chunks_stored == 0


def test_snapshot_referencing_missing_chunks_is_rejected(
    node: NodeProcess, archive_key: KeyFile
) -> None:
    crafted = craft_snapshot(archive_key.key, [file_entry(b"a.txt", os.urandom(5000))])
    client = node.client(archive_key.key)
    try:
        with pytest.raises(IncompleteSnapshot, match="missing"):
            client.put_snapshot(crafted.snapshot.signed)  # no chunks uploaded at all
        put_blobs(client, bytes(archive_key.key.archive_id), crafted.blobs[1:])
        with pytest.raises(IncompleteSnapshot, match="1 of"):
            client.put_snapshot(crafted.snapshot.signed)
        assert list(node.status().snapshots) == []
        upload(client, crafted)  # complete now: accepted
    finally:
        client.close()
    assert snapshot_ids(node) == {bytes(crafted.snapshot.id)}


# --------------------------------------------------------- chunks that lie about their id


def test_chunk_whose_bytes_do_not_match_its_id_is_rejected_on_put(
    node: NodeProcess, archive_key: KeyFile
) -> None:
    archive_id = bytes(archive_key.key.archive_id)
    good = os.urandom(4000)
    good_id = blake3.blake3(good).digest()
    lie = os.urandom(4000)
    lie_id = blake3.blake3(os.urandom(4000)).digest()
    client = node.client(archive_key.key)
    try:
        with pytest.raises(IntegrityError, match=f"chunk {lie_id.hex()[:12]} is corrupt"):
            put_blobs(client, archive_id, [(good_id, good), (lie_id, lie)])
        # Nothing of the refused batch was stored.
        assert client.has_chunks([good_id, lie_id], role=pb.ROLE_WRITER) == [False, False]
        # A lie cannot overwrite a chunk that is already there either.
        put_blobs(client, archive_id, [(good_id, good)])
        with pytest.raises(IntegrityError, match="do not match the id"):
            put_blobs(client, archive_id, [(good_id, lie)])
        blobs = [c for r in client.get_chunks([good_id]) for c in r.chunks]
        assert [(c.id, c.data) for c in blobs] == [(good_id, good)]
        with pytest.raises(IntegrityError, match="is corrupt"):  # a 5-byte id
            put_blobs(client, archive_id, [(b"short", good)])
    finally:
        client.close()
    status = node.status()
    assert (status.chunks_stored, status.bytes_stored) == (1, len(good))


def test_node_keeps_serving_after_refusals(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    client = node.client(archive_key.key)
    try:
        for _ in range(3):
            with pytest.raises(IntegrityError):
                put_blobs(client, bytes(archive_key.key.archive_id), [(bytes(32), b"junk")])
    finally:
        client.close()
    pushed(node, archive_key, sample_tree)
    code, _, err = run_cli(
        "restore", "--key", archive_key.path, "--node", node.address, tmp_path / "dest"
    )
    assert code == 0, err
    assert_same_tree(sample_tree, tmp_path / "dest")
    assert make_key_file  # re-exported helper stays importable for other suites

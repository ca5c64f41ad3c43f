"""A flipped byte on the node's disk: restore and verify name the damaged file (exit 3) and
restore everything else, never write wrong bytes under a final name, and the node
quarantines and reports the chunk."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import ExitCode
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import verify_snapshot
from samizdat.core.tree import iter_tree
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.damage import flip_on_disk
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import read_tree

pytestmark = pytest.mark.timeout(120)

BIG = "évidence/日本語 ディレクトリ/動画.bin"  # 3 MiB, incompressible: several chunks
SMALL = "Привет/run.sh"  # 18 bytes: one small chunk


def file_chunks(
    data_dir: Path, key: ArchiveKey
) -> tuple[pb.SnapshotRecord, dict[str, list[bytes]]]:
    """Decode the stored snapshot's tree (with the key) from a stopped node's store; return
    the record and path -> chunk ids."""
    store = ChunkStore(data_dir)
    try:
        ((_, _, signed_bytes),) = list(store.iter_snapshot_log())
        snap = verify_snapshot(pb.SignedSnapshot.FromString(signed_bytes))
        codec = ChunkCodec(key)
        tree = b"".join(
            codec.decode(cid, store.get_chunk(cid))  # type: ignore[arg-type]
            for cid in snap.record.tree_chunk_ids
        )
        return snap.record, {
            e.path.decode("utf-8", "replace"): [r.id for r in e.chunks]
            for e in iter_tree(io.BytesIO(tree))
        }
    finally:
        store.close()


def stored_blob(data_dir: Path, chunk_id: bytes) -> bytes:
    store = ChunkStore(data_dir)
    try:
        blob = store.read_raw(chunk_id)
        assert blob is not None
        return bytes(blob)
    finally:
        store.close()


def assert_no_wrong_file(src: Path, dest: Path) -> None:
    """Every file under a final name in `dest` is byte-identical to the source; no partial
    file is left behind."""
    if not dest.exists():
        return
    source = read_tree(src)
    for rel, node in read_tree(dest).items():
        name = rel.decode("utf-8", "replace")
        assert b"samizdat-partial" not in rel, f"partial file left behind: {name}"
        if node.kind == "file":
            assert rel in source and source[rel].content == node.content, (
                f"wrong bytes under a final name: {name}"
            )


@pytest.mark.parametrize("victim", [BIG, SMALL], ids=["large-file", "small-file"])
def test_flipped_byte_on_disk_fails_restore_and_verify_naming_the_file(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path, victim: str
) -> None:
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code == 0, err
    node.stop()
    record, chunks = file_chunks(node.data_dir, archive_key.key)
    target = chunks[victim][len(chunks[victim]) // 2]
    blob = stored_blob(node.data_dir, target)
    damaged = flip_on_disk(node.data_dir, blob[len(blob) // 2 : len(blob) // 2 + 16])
    assert damaged.suffix == ".pack", damaged
    node.start()

    dest = tmp_path / "dest"
    code, out, err = run_cli("restore", "--key", archive_key.path, "--node", node.address, dest)
    # Should the flip hit the tree chunk itself, no file can be named: the restore fails
    # (exit 1) and the error must name the tree's chunk instead.
    tree_ids = [c.hex()[:12] for c in record.tree_chunk_ids]
    named = (code == ExitCode.INCOMPLETE and victim in err) or (
        victim == SMALL and code == 1 and any(t in err for t in tree_ids)
    )
    assert named, f"error names neither {victim!r} nor the tree chunk: {code} {err}"
    assert "Traceback" not in err
    assert not (dest / victim).exists() and not (dest / victim).is_symlink()
    assert_no_wrong_file(sample_tree, dest)

    code, out, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code in (1, ExitCode.INCOMPLETE), (code, out, err)
    assert (victim in err or any(t in err for t in tree_ids)) and "Traceback" not in err

    # The node does not return the damaged chunk: it reports it missing.
    client = node.client(archive_key.key)
    try:
        responses = list(client.get_chunks([target]))
    finally:
        client.close()
    assert [c.id for r in responses for c in r.chunks] == []
    assert [i for r in responses for i in r.missing_ids] == [target]

    status = node.status()
    assert status.quarantined_chunks >= 1  # detected and reported by the node
    (snap,) = status.snapshots
    assert snap.chunks_held < snap.chunks_total or status.quarantined_chunks >= 1
    assert "quarantined" in node.logs() or "corrupt" in node.logs().lower()

    if victim not in err:  # the tree itself was in the damaged block: nothing to restore
        return
    # Restoring the other files still works (nothing else was lost).
    others = [p for p in ("top level.txt", "évidence/notes — résumé.txt") if p != victim]
    code, _, err = run_cli(
        "restore",
        "--key",
        archive_key.path,
        "--node",
        node.address,
        *others,
        tmp_path / "partial-restore",
    )
    assert code == 0, err
    for p in others:
        assert (tmp_path / "partial-restore" / p).read_bytes() == (sample_tree / p).read_bytes()


def test_store_failure_tells_the_caller_no_node_path(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    """The node's store cannot write a pack (its packs directory is taken by a file): the
    push fails with the store's reason and a generic message; the node's own paths stay in
    the node's log, never in what a caller (perhaps a stranger) is told."""
    packs = node.data_dir / "packs"
    if packs.is_dir():
        packs.rmdir()  # a fresh node has no pack yet: empty
    packs.write_bytes(b"")
    code, out, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code != 0, out
    assert "store" in err and "Traceback" not in err, err
    assert str(node.directory) not in err + out, err
    assert str(node.data_dir) in node.logs()

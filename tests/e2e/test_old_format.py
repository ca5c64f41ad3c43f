"""Snapshots written before the version 2 format step (version 1 blobs and chunk lists) stay
readable: restore and verify through a real node, next to a new push of the same tree in
version 2 (which stores everything again: no id is shared between the formats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, dir_entry, file_entry, upload
from tests.e2e.test_single_node import push, restore
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import all_files_bytes


def files_under(root: Path) -> list[tuple[str, bytes]]:
    return sorted((str(Path(p).relative_to(root)), data) for p, data in all_files_bytes(root))


pytestmark = pytest.mark.timeout(90)

FILES = {
    b"notes/a.txt": b"a note that compresses well. " * 200,
    b"notes/b.txt": b"short",
    b"video.bin": bytes(range(256)) * 3000 + b"tail",
}


def test_a_version_1_snapshot_restores_and_verifies_beside_a_version_2_one(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    entries: list[tuple[pb.TreeEntry, bytes | None]] = [dir_entry(b"notes")]
    entries += [file_entry(path, data) for path, data in sorted(FILES.items())]
    old = craft_snapshot(archive_key.key, entries, legacy=True)
    assert all(blob[0] == 1 or blob.startswith(b"SZCL\x08\x01") for _, blob in old.blobs)
    client = node.client(archive_key.key)
    try:
        upload(client, old)
    finally:
        client.close()

    expected = sorted((p.decode(), d) for p, d in FILES.items())
    restore(archive_key, node, tmp_path / "old", "--snapshot", old.id_hex)
    assert files_under(tmp_path / "old") == expected
    code, out, err = run_cli(
        "verify", "--key", archive_key.path, "--node", node.address, "--snapshot", old.id_hex
    )
    assert code == 0, err

    new_id, uploaded = push(archive_key, node, tmp_path / "old")  # the same tree, pushed now
    assert uploaded >= len(old.blobs)  # nothing deduplicated against version 1 blobs
    restore(archive_key, node, tmp_path / "new", "--snapshot", new_id)
    assert files_under(tmp_path / "new") == expected
    restore(archive_key, node, tmp_path / "old-again", "--snapshot", old.id_hex)
    assert files_under(tmp_path / "old-again") == expected

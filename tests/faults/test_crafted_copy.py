"""A copied node store carried to the restorer is as untrusted as a node (restore/verify
--store): one crafted so that its logs do not read is an unusable source, named, and the
other sources serve; one that does not even open is a clear one-line error, never a
traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from samizdat.store.chunkstore import _COUNT_KEY, ChunkStore
from tests.conftest import KeyFile
from tests.faults.test_hostile_calls import push_text
from tests.nodeproc import NodeProcess, run_cli

pytestmark = pytest.mark.timeout(120)


def copy_of(node: NodeProcess, where: Path) -> Path:
    """A copy of a stopped node's data directory, as carried across a border."""
    shutil.copytree(node.data_dir, where)
    return where


def test_a_copy_whose_logs_do_not_read_is_left_out_and_the_node_serves(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "the real one\n")
    honest.stop()
    copy = copy_of(honest, tmp_path / "copy")
    honest.start()
    store = ChunkStore(copy)
    try:  # a snapshot log key and a custody log key of the wrong length
        (_, snapshot_id, _), *_ = store.iter_snapshot_log(0)
        store._cf["snapshot_log"].put(b"\xff\xff\xff", snapshot_id)
        store._cf["custody"].put(b"\xff", b"")
    finally:
        store.close()
    for command in ("restore", "verify"):
        dest = () if command == "verify" else (tmp_path / "restored",)
        code, _, err = run_cli(
            command, "--key", archive_key, "--store", copy, "--node", honest.address, *dest
        )
        assert code == 0, err
        assert "Traceback" not in err and "is damaged" in err and str(copy) in err
    assert (tmp_path / "restored" / "a.txt").read_text() == "the real one\n"


def test_a_copy_that_does_not_open_is_a_clear_error(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("n", host=[archive_key.archive_id])
    push_text(archive_key, node, tmp_path / "src", "x\n")
    node.stop()
    copy = copy_of(node, tmp_path / "copy")
    store = ChunkStore(copy)
    try:  # the chunk counters, a value of the wrong length
        store._cf["chunk_index"].put(_COUNT_KEY, b"\x01")
    finally:
        store.close()
    temp = tmp_path / "tmp"  # where the CLI's read-only shadow of the copy goes
    temp.mkdir()
    code, _, err = run_cli(
        "restore", "--key", archive_key, "--store", copy, tmp_path / "dest",
        env={"TMPDIR": str(temp)},
    )  # fmt: skip
    assert code == 2, err
    assert "Traceback" not in err and "damaged" in err and str(copy) in err
    assert not list(temp.iterdir())  # the failed open left no shadow directory behind

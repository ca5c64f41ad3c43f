"""The client's files cache (samizdat.client.filescache) against a real node: unchanged files
are not read, and no wrong, stale, tampered or foreign cache entry ends up in a snapshot."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import pytest

from samizdat.client import filescache
from samizdat.client.filescache import FilesCache
from samizdat.client.ingest import FileRange, PushStats, _read_range, push
from samizdat.core.chunker import ChunkerParams
from samizdat.core.errors import StaleFilesCache
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_single_node import assert_restores
from tests.nodeproc import NodeProcess
from tests.trees import build_deep_tree, build_sample_tree


def writer(client) -> GrpcPeer:  # type: ignore[no-untyped-def]
    """The node behind `client` as a Peer that pushes (HasChunks asked as a writer)."""
    return GrpcPeer(client, has_role=pb.ROLE_WRITER)


pytestmark = pytest.mark.timeout(90)


def cache_file(key: KeyFile) -> Path:
    return Path(os.environ["SAMIZDAT_CACHE_DIR"]) / key.archive_id / "files"


def wait_past(changed_ns: int) -> None:
    """Wait until a change at `changed_ns` is older than the racy window (a condition on the
    clock, with a deadline): only then may the files cache record the file."""
    deadline = time.monotonic() + 30
    while time.time_ns() <= changed_ns + filescache.RACY_NS + 10_000_000:
        assert time.monotonic() < deadline, "the clock does not advance"
        time.sleep(0.05)


def wait_until_settled(root: Path) -> None:
    """Wait until every file under `root` may be recorded by the files cache."""
    wait_past(max(os.lstat(p).st_ctime_ns for p in root.rglob("*")))


def file_count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def settled_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sample tree whose files the cache may record (never modified by a test)."""
    root = build_sample_tree(tmp_path_factory.mktemp("settled") / "src")
    wait_until_settled(root)
    yield root


def push_in_process(
    key: KeyFile, node: NodeProcess, src: Path, force_rehash: bool = False
) -> PushStats:
    client = node.client(key.key)
    try:
        return push(key.key, writer(client), str(src), force_rehash=force_rehash)
    finally:
        client.close()


def test_unchanged_files_are_taken_from_the_cache(
    node: NodeProcess, archive_key: KeyFile, settled_tree: Path, tmp_path: Path
) -> None:
    files = file_count(settled_tree)
    first = push_in_process(archive_key, node, settled_tree)
    assert first.files == files and first.files_cached == 0
    assert cache_file(archive_key).is_file()

    second = push_in_process(archive_key, node, settled_tree)
    assert second.files_cached == files
    assert second.uploaded_chunks == 0  # same tree, same chunks: the node holds them all
    assert second.snapshot is not None and first.snapshot is not None
    assert second.snapshot.record.tree_chunk_ids == first.snapshot.record.tree_chunk_ids
    assert_restores(archive_key, node, settled_tree, tmp_path / "restored")

    rehashed = push_in_process(archive_key, node, settled_tree, force_rehash=True)
    assert rehashed.files_cached == 0 and rehashed.files == files
    assert push_in_process(archive_key, node, settled_tree).files_cached == files


def test_changed_file_is_read_again(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = build_sample_tree(tmp_path / "src")
    wait_until_settled(src)
    push_in_process(archive_key, node, src)
    # Same size, mtime put back: only the ctime (which no user can set) tells.
    target = src / "top level.txt"
    st = target.stat()
    target.write_bytes(b"y" * st.st_size)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    second = push_in_process(archive_key, node, src)
    assert second.files_cached == file_count(src) - 1
    assert_restores(archive_key, node, src, tmp_path / "restored")


def test_file_changed_right_after_its_read_is_not_recorded(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    """A change within the file system's timestamp granularity could leave size and times
    as they were: a file read within RACY_NS of its last change is never recorded."""
    src = build_sample_tree(tmp_path / "src")  # just written: inside the racy window
    first = push_in_process(archive_key, node, src)
    assert first.files_cached == 0
    second = push_in_process(archive_key, node, src)
    assert second.files_cached == 0  # nothing was recorded, so everything is read again


def test_tampered_cache_is_ignored(
    node: NodeProcess, archive_key: KeyFile, settled_tree: Path, tmp_path: Path
) -> None:
    push_in_process(archive_key, node, settled_tree)
    path = cache_file(archive_key)
    original = path.read_bytes()
    for tamper in (
        lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:],  # one bit of an entry
        lambda b: b[:-40] + b[-32:],  # an entry cut short
        lambda b: b[:-1],  # the MAC cut
        lambda b: b"",
    ):
        path.write_bytes(tamper(original))
        stats = push_in_process(archive_key, node, settled_tree)
        assert stats.files_cached == 0
        assert path.read_bytes() != tamper(original)  # rewritten by the push
    assert_restores(archive_key, node, settled_tree, tmp_path / "restored")


def test_cache_of_another_archive_is_ignored(
    node_factory: Callable[..., NodeProcess],
    archive_key: KeyFile,
    other_key: KeyFile,
    settled_tree: Path,
    tmp_path: Path,
) -> None:
    node = node_factory("n", host=[archive_key.archive_id, other_key.archive_id])
    push_in_process(archive_key, node, settled_tree)
    cache_file(other_key).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cache_file(archive_key), cache_file(other_key))
    stats = push_in_process(other_key, node, settled_tree)
    assert stats.files_cached == 0
    assert_restores(other_key, node, settled_tree, tmp_path / "restored")


def test_cache_of_other_chunker_parameters_is_ignored(
    node: NodeProcess, archive_key: KeyFile, settled_tree: Path
) -> None:
    push_in_process(archive_key, node, settled_tree)
    client = node.client(archive_key.key)
    try:
        params = ChunkerParams(min_size=32 << 10, avg_size=128 << 10, max_size=512 << 10)
        stats = push(archive_key.key, writer(client), str(settled_tree), params=params)
    finally:
        client.close()
    assert stats.files_cached == 0


def test_chunks_the_node_lacks_are_read_again_from_the_files(
    first_and_fresh: tuple[NodeProcess, NodeProcess],
    archive_key: KeyFile,
    settled_tree: Path,
    tmp_path: Path,
) -> None:
    first, fresh = first_and_fresh
    pushed = push_in_process(archive_key, first, settled_tree)
    stats = push_in_process(archive_key, fresh, settled_tree)
    assert stats.files_cached == file_count(settled_tree)
    assert stats.uploaded_chunks == pushed.uploaded_chunks
    assert_restores(archive_key, fresh, settled_tree, tmp_path / "restored")


def test_files_deeper_than_path_max_are_read_again_for_a_node_that_lacks_them(
    first_and_fresh: tuple[NodeProcess, NodeProcess],
    archive_key: KeyFile,
    tmp_path: Path,
) -> None:
    """A cache hit's chunks are re-read component by component from the root, as the walk
    reads them: a path longer than PATH_MAX is no reason to blame the cache."""
    src = tmp_path / "deep"
    deepest = build_deep_tree(src)
    assert len(deepest) > 4096
    wait_past(time.time_ns())  # every file was changed before now (lstat cannot reach them)
    first, fresh = first_and_fresh
    pushed = push_in_process(archive_key, first, src)
    stats = push_in_process(archive_key, fresh, src)
    assert stats.files_cached == pushed.files > 0
    assert stats.uploaded_chunks == pushed.uploaded_chunks
    assert_restores(archive_key, fresh, src, tmp_path / "restored")


def test_a_fifo_in_a_cached_files_place_is_not_read(tmp_path: Path) -> None:
    """A file swapped for a FIFO after the cache recorded it: reading its chunk again must
    neither block (no writer will ever come) nor return anything."""
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "dir" / "video.bin")
    where = FileRange(os.fsencode(tmp_path), b"dir/video.bin", 0, 4096)
    assert _read_range(where) == b""
    (tmp_path / "dir" / "link").symlink_to(tmp_path / "dir" / "video.bin")
    assert _read_range(where._replace(rel=b"dir/link")) == b""


def test_entry_naming_a_chunk_the_file_does_not_hold_stops_the_push(
    first_and_fresh: tuple[NodeProcess, NodeProcess],
    archive_key: KeyFile,
    settled_tree: Path,
    tmp_path: Path,
) -> None:
    """Even an authenticated entry (written with the archive key) is checked where it can
    be: a chunk the node lacks must encode, from the file, to the recorded id."""
    first, fresh = first_and_fresh
    push_in_process(archive_key, first, settled_tree)
    path = cache_file(archive_key)
    body = bytearray(path.read_bytes()[:-32])
    id_at = filescache._HEADER.size + filescache._ENTRY.size  # first chunk of first entry
    body[id_at : id_at + 32] = bytes(32)
    mac_key = blake3.blake3(filescache.MAC_KEY_CONTEXT, key=archive_key.key.nonce_key).digest()
    path.write_bytes(bytes(body) + blake3.blake3(bytes(body), key=mac_key).digest())

    with pytest.raises(StaleFilesCache, match="run the push again"):
        push_in_process(archive_key, fresh, settled_tree)
    assert not path.exists()
    assert not fresh.status().snapshots  # no snapshot record was stored
    stats = push_in_process(archive_key, fresh, settled_tree)  # the rerun reads every file
    assert stats.files_cached == 0
    assert_restores(archive_key, fresh, settled_tree, tmp_path / "restored")


def test_paths_are_not_in_the_cache_file(
    node: NodeProcess, archive_key: KeyFile, settled_tree: Path
) -> None:
    push_in_process(archive_key, node, settled_tree)
    data = cache_file(archive_key).read_bytes()
    assert "résumé".encode() not in data and b"top level" not in data
    assert FilesCache  # the module's class is what the CLI uses (import kept explicit)

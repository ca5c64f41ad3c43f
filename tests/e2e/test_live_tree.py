"""Pushing a tree that changes during the push (issue 9): entries vanish, change type or turn
unreadable after the walk listed them. Push warns, saves the rest and exits 3.

Deterministic, not a race: the test holds a write lease (fcntl F_SETLEASE) on the first file
of the tree, so the push's open() of it blocks inside the kernel after the directory was
listed; the test changes the tree while it waits, then lets go.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_single_node import SNAPSHOT_LINE, restore
from tests.nodeproc import NodeProcess, spawn_cli
from tests.trees import read_tree

pytestmark = pytest.mark.timeout(90)

# Root reads any file whatever its mode; without these capabilities it obeys the mode bits.
DROP_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def unreadable_wrapper() -> list[str] | None:
    """How to run the CLI so that a mode-000 file is unreadable to it; None if impossible."""
    if os.geteuid() != 0:
        return []
    return DROP_DAC if shutil.which("setpriv") else None


@contextmanager
def write_lease(path: Path) -> Iterator[int]:
    """Hold a write lease on `path`: another process's open() of it blocks until released."""
    previous = signal.signal(signal.SIGIO, lambda signum, frame: None)  # the break notice
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as e:
            pytest.skip(f"file leases are not available here ({e.strerror})")
        yield fd
    finally:
        os.close(fd)  # releases the lease
        signal.signal(signal.SIGIO, previous)


def wait_for_break(fd: int, timeout: float = 60.0) -> None:
    """Until another process has tried to open the leased file."""
    deadline = time.monotonic() + timeout
    while fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_WRLCK:
        assert time.monotonic() < deadline, "the push never opened the leased file"
        time.sleep(0.01)


def test_push_of_a_changing_tree_saves_the_rest_and_exits_3(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    wrapper = unreadable_wrapper()
    src = tmp_path / "src"
    (src / "e-unreadable-dir").mkdir(parents=True)
    (src / "e-unreadable-dir" / "inside.txt").write_bytes(b"never read\n")
    (src / "g-gone-dir").mkdir()
    (src / "g-gone-dir" / "x").write_bytes(b"x\n")
    held = src / "a-held.bin"
    held.write_bytes(os.urandom(50_000))
    for name in ("b-vanishes.txt", "c-becomes-dir", "d-unreadable.txt", "f-kept.txt"):
        (src / name).write_bytes(name.encode() * 100)

    with write_lease(held) as lease:
        proc = spawn_cli(
            "push",
            "--key",
            archive_key.path,
            "--node",
            node.address,
            src,
            wrapper=wrapper or [],
        )
        try:
            wait_for_break(lease)
            # The push has listed src and waits to read a-held.bin. Change what follows.
            (src / "b-vanishes.txt").unlink()
            (src / "c-becomes-dir").unlink()
            (src / "c-becomes-dir").mkdir()
            (src / "c-becomes-dir" / "new.txt").write_bytes(b"new\n")
            shutil.rmtree(src / "g-gone-dir")
            if wrapper is not None:
                os.chmod(src / "d-unreadable.txt", 0)
                os.chmod(src / "e-unreadable-dir", 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    out_b, err_b = proc.communicate(timeout=60)
    out, err = out_b.decode(), err_b.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 3, (proc.returncode, out, err)
    assert SNAPSHOT_LINE.search(out), out
    warned = {line.split(": ")[2] for line in err.splitlines() if "not saved: " in line}
    lost = {"b-vanishes.txt", "g-gone-dir"}
    if wrapper is not None:
        lost |= {"d-unreadable.txt", "e-unreadable-dir"}
    assert warned == lost, err
    assert f"{len(lost)} entries could not be read" in err
    client = node.client(archive_key.key)
    try:
        listing = client.list_snapshots(bytes(archive_key.key.archive_id))
    finally:
        client.close()
    record = pb.SnapshotRecord.FromString(listing.snapshots[-1].snapshot.record)
    assert record.totals.not_saved == len(lost)

    if wrapper is not None:  # let the test's cleanup and the comparison read them again
        os.chmod(src / "d-unreadable.txt", 0o644)
        os.chmod(src / "e-unreadable-dir", 0o755)
    dest = tmp_path / "dest"
    restore(archive_key, node, dest)
    restored = read_tree(dest)
    original = read_tree(src)
    saved = {p for p in original if p.split(b"/")[0].decode() not in lost}
    assert set(restored) == saved
    for p in saved:
        assert restored[p].content == original[p].content, p
    assert restored[b"c-becomes-dir"].kind == "dir"

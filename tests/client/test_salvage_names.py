"""--salvage-partial copies beside a file's name: kept, replaced and removed only when they
are the restore's own, never a file of the snapshot that happens to have such a name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from samizdat.client.damage import DamagedFile, LostChunk, sidecar_bytes
from samizdat.client.salvage import keep_salvage, remove_salvage

PATH = b"videos/clip.bin"


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield tmp_path, fd
    finally:
        os.close(fd)


def sidecar(path: bytes = PATH) -> bytes:
    lost = LostChunk(1, "ab" * 32, 100, 50, "missing", "chunk abab is not available")
    return sidecar_bytes("cd" * 32, DamagedFile(path, 300, 3, [lost]), b"\x01" * 32)


def partial(root: Path, data: bytes = b"salvaged bytes") -> bytes:
    (root / ".clip.bin.samizdat-partial").write_bytes(data)
    return b".clip.bin.samizdat-partial"


def test_keep_then_remove_after_a_complete_restore(folder: tuple[Path, int]) -> None:
    root, fd = folder
    names = keep_salvage(fd, b"clip.bin", partial(root), sidecar(), PATH)
    assert names == (b"clip.bin.samizdat-salvaged", b"clip.bin.samizdat-salvaged.json")
    assert (root / "clip.bin.samizdat-salvaged").read_bytes() == b"salvaged bytes"
    assert not (root / ".clip.bin.samizdat-partial").exists()
    # A second damaged run replaces its own earlier copy.
    assert keep_salvage(fd, b"clip.bin", partial(root, b"newer"), sidecar(), PATH) == names
    assert (root / "clip.bin.samizdat-salvaged").read_bytes() == b"newer"
    remove_salvage(fd, b"clip.bin", PATH)
    assert sorted(os.listdir(root)) == []


@pytest.mark.parametrize("occupant", ["file", "sidecar-of-another", "symlinked-sidecar"])
def test_a_file_of_the_snapshot_with_such_a_name_is_never_replaced_or_removed(
    folder: tuple[Path, int], occupant: str
) -> None:
    root, fd = folder
    real = root / "clip.bin.samizdat-salvaged"
    real.write_bytes(b"a real file of the snapshot")
    if occupant == "sidecar-of-another":
        (root / "clip.bin.samizdat-salvaged.json").write_bytes(sidecar(b"other/clip.bin"))
    elif occupant == "symlinked-sidecar":
        (root / "elsewhere.json").write_bytes(sidecar())
        (root / "clip.bin.samizdat-salvaged.json").symlink_to(root / "elsewhere.json")
    before = {p.name: p.read_bytes() for p in root.iterdir() if not p.is_symlink()}
    assert keep_salvage(fd, b"clip.bin", partial(root), sidecar(), PATH) is None
    assert not (root / ".clip.bin.samizdat-partial").exists()  # the partial file is gone
    remove_salvage(fd, b"clip.bin", PATH)
    after = {p.name: p.read_bytes() for p in root.iterdir() if not p.is_symlink()}
    assert after == before

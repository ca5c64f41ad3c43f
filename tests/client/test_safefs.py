"""SafeDest in process: what another process does to DEST while a file is being written can
neither redirect the write outside DEST nor make a file replace a directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from samizdat.client.safefs import PARTIAL_PREFIX, SafeDest, partial_name
from samizdat.core.errors import UnsafePath

MTIME_NS = 1_234_567_890_123_456_789


def write_file(dest: SafeDest, path: bytes, data: bytes, mode: int = 0o640) -> None:
    """What restore does for one file: partial file, write, seal, close, rename."""
    parent_fd, name, fd = dest.open_partial(path)
    try:
        os.write(fd, data)
        dest.seal(fd, mode, MTIME_NS, path)
        os.close(fd)
        dest.commit(parent_fd, name)
    finally:
        os.close(parent_fd)


def test_a_sealed_file_gets_its_mode_and_time_even_read_only(tmp_path: Path) -> None:
    dest = SafeDest(str(tmp_path / "dest"))
    try:
        dest.make_dir(b"d")
        write_file(dest, b"d/f", b"content", mode=0o444)
    finally:
        dest.close()
    st = os.lstat(tmp_path / "dest" / "d" / "f")
    assert stat.S_IMODE(st.st_mode) == 0o444 and st.st_mtime_ns == MTIME_NS
    assert (tmp_path / "dest" / "d" / "f").read_bytes() == b"content"
    assert not (tmp_path / "dest" / "d" / partial_name(b"f").decode()).exists()


def test_a_directory_planted_under_the_final_name_is_never_replaced(tmp_path: Path) -> None:
    dest = SafeDest(str(tmp_path / "dest"))
    try:
        parent_fd, name, fd = dest.open_partial(b"f")
        try:
            os.write(fd, b"content")
            dest.seal(fd, 0o600, MTIME_NS, b"f")
            os.close(fd)
            planted = tmp_path / "dest" / "f"
            planted.mkdir()  # another process, between the write and the rename
            (planted / "keep").write_bytes(b"theirs")
            with pytest.raises(UnsafePath):
                dest.commit(parent_fd, name)
            (planted / "keep").unlink()
            with pytest.raises(UnsafePath):  # an empty directory is not replaced either
                dest.commit(parent_fd, name)
            dest.discard(parent_fd, name)
        finally:
            os.close(parent_fd)
    finally:
        dest.close()
    assert (tmp_path / "dest" / "f").is_dir()
    assert os.listdir(tmp_path / "dest") == ["f"]


def test_a_parent_swapped_for_a_symlink_does_not_redirect_writes(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = SafeDest(str(tmp_path / "dest"))
    try:
        dest.make_dir(b"d")
        write_file(dest, b"d/first", b"1")  # the directory's descriptor is now held
        real = tmp_path / "dest" / "d"
        real.rename(tmp_path / "dest" / "moved")
        real.symlink_to(outside)  # DEST/d now points outside DEST
        write_file(dest, b"d/second", b"2")
    finally:
        dest.close()
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path / "dest" / "moved")) == ["first", "second"]


def test_started_empty_tells_a_fresh_destination_from_one_with_content(tmp_path: Path) -> None:
    fresh = SafeDest(str(tmp_path / "new"))
    fresh.close()
    assert fresh.started_empty
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / ".hidden").write_bytes(b"")
    used = SafeDest(str(tmp_path / "used"))
    used.close()
    assert not used.started_empty


def _partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(PARTIAL_PREFIX.decode())]


def test_close_removes_the_partial_file_an_interrupt_left(tmp_path: Path) -> None:
    """Ctrl-C raises KeyboardInterrupt wherever it lands, e.g. just after the partial file
    was created and before the code that would remove it runs: closing DEST removes it."""
    dest = SafeDest(str(tmp_path / "dest"))
    parent_fd, _name, fd = dest.open_partial(b"d/f")  # ... and here the interrupt landed
    os.close(fd)
    os.close(parent_fd)
    assert _partials(tmp_path / "dest")
    dest.close()
    assert not _partials(tmp_path / "dest")


def test_close_removes_a_link_partial_an_interrupt_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = SafeDest(str(tmp_path / "dest"))
    write_file(dest, b"first", b"content")
    real_rename = os.rename

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # between link(2) of the partial name and its rename

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dest.link(b"first", b"second")
    monkeypatch.setattr(os, "rename", real_rename)
    assert _partials(tmp_path / "dest")
    dest.close()
    assert not _partials(tmp_path / "dest")
    assert (tmp_path / "dest" / "first").read_bytes() == b"content"


def test_close_keeps_committed_files(tmp_path: Path) -> None:
    dest = SafeDest(str(tmp_path / "dest"))
    write_file(dest, b"d/f", b"content")
    dest.close()
    assert (tmp_path / "dest" / "d" / "f").read_bytes() == b"content"

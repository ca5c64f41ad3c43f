"""A hostile local user who can write in DEST swaps a restored directory for a symlink to a
file outside DEST while the restorer sets the directory's recorded mode and mtime.

The swap is made deterministic: `safefs`'s view of `os` is wrapped so that right after the
first system call that names the directory, it is renamed away and replaced by the symlink.
Whatever order of calls `set_dir_meta` uses, a later call by name would follow the link.
Before the fix, `set_meta` lstat'ed the name and then chmod'ed it by name, and the victim
became 0777."""

from __future__ import annotations

import os
import stat
import types
from pathlib import Path
from typing import Any

import pytest

from samizdat.client import safefs
from samizdat.core.errors import UnsafePath


class SwappingOs(types.SimpleNamespace):
    """`os`, except that the first call naming `name` is followed by the attacker's swap."""

    def __init__(self, dest: Path, victim: Path, name: bytes) -> None:
        super().__init__()
        self._dest, self._victim, self._name, self.swapped = dest, victim, name, False

    def __getattr__(self, attr: str) -> Any:
        real = getattr(os, attr)
        if not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if not self.swapped and args and args[0] in (self._name, os.fsdecode(self._name)):
                self.swapped = True
                os.rename(self._dest / "d", self._dest / "d.real")
                os.symlink(self._victim, self._dest / "d")
            return result

        return call


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_directory_mode_never_follows_a_swapped_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("secret")
    victim.chmod(0o600)
    before = victim.stat()
    safe = safefs.SafeDest(str(dest))
    try:
        safe.make_dir(b"d")
        swapping = SwappingOs(dest, victim, b"d")
        monkeypatch.setattr(safefs, "os", swapping)
        try:
            safe.set_dir_meta(b"d", mode, 123_000_000_000)
        except UnsafePath:
            pass  # refusing is fine; following the link is not
        monkeypatch.undo()
        assert swapping.swapped, "the test never got to swap the directory"
    finally:
        safe.close()
    after = victim.stat()
    assert stat.S_IMODE(after.st_mode) == 0o600, "chmod followed a symlink out of DEST"
    assert after.st_mtime_ns == before.st_mtime_ns, "utime followed a symlink out of DEST"
    assert stat.S_IMODE((dest / "d.real").stat().st_mode) == mode  # the real one got it


def test_a_symlink_in_place_of_a_directory_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("secret")
    victim.chmod(0o600)
    safe = safefs.SafeDest(str(dest))
    try:
        (dest / "d").symlink_to(victim)
        with pytest.raises(UnsafePath):
            safe.set_dir_meta(b"d", 0o777, 0)
    finally:
        safe.close()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600

"""The push's walk and entry maker against a tree changed at controlled points between the
walk's steps (the generator is paused between entries): nothing raises past them, every
lost entry is reported once with its reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from samizdat.client.treeentry import EntryMaker
from samizdat.client.walk import SourceGone, iter_source


def make(root: Path, *names: str) -> None:
    root.mkdir()
    for name in names:
        (root / name).write_bytes(name.encode())


def test_entries_vanishing_after_listing_are_reported_and_skipped(tmp_path: Path) -> None:
    root = tmp_path / "src"
    make(root, "a", "b", "c")
    (root / "d").mkdir()
    (root / "d" / "x").write_bytes(b"x")
    skipped: list[tuple[bytes, str]] = []
    walk = iter_source(str(root), lambda path, reason: skipped.append((path, reason)))
    assert next(walk).path == b"a"  # the root is listed: a, b, c, d
    (root / "b").unlink()
    (root / "d" / "x").unlink()
    (root / "d").rmdir()
    assert [e.path for e in walk] == [b"c"]
    assert skipped == [
        (b"b", "it vanished while the tree was being read"),
        (b"d", "it vanished while the tree was being read"),
    ]


@pytest.mark.parametrize(
    "swap",
    [
        lambda p: (p.unlink(), os.mkfifo(p)),
        lambda p: (p.unlink(), p.mkdir()),
        lambda p: (p.unlink(), os.symlink("/etc/hostname", p)),
        lambda p: p.unlink(),
    ],
    ids=["fifo", "directory", "symlink", "gone"],
)
def test_a_file_that_changes_between_lstat_and_open_is_refused(tmp_path: Path, swap) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "src"
    make(root, "a", "b")
    walk = iter_source(str(root), lambda path, reason: None)
    maker = EntryMaker()
    first = next(walk)  # lstat of a done: a regular file
    swap(root / "a")
    with pytest.raises(SourceGone, match="changed type|vanished"):
        maker.make(first)
    entry, f = maker.make(next(walk))
    assert f is not None
    with f:
        assert f.read() == b"b"
    assert entry.path == b"b"


def test_hard_links_share_a_group_and_others_get_none(tmp_path: Path) -> None:
    root = tmp_path / "src"
    make(root, "a", "c")
    os.link(root / "a", root / "b")
    maker = EntryMaker()
    groups = {}
    for src in iter_source(str(root)):
        entry, f = maker.make(src)
        if f is not None:
            f.close()
        groups[entry.path] = entry.link_group
    assert groups == {b"a": 1, b"b": 1, b"c": 0}


def test_an_unreadable_root_is_a_usage_error(tmp_path: Path) -> None:
    from samizdat.core.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        list(iter_source(str(tmp_path / "missing")))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(UsageError, match="not a directory"):
        list(iter_source(str(tmp_path / "file")))

"""The tree comparison the e2e tests rely on notices every kind of difference."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.trees import assert_same_tree, build_sample_tree


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_tree(tmp_path_factory.mktemp("t") / "src", big_size=10_000)


def copy(original: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(original, dest, symlinks=True)
    for root, dirs, files in os.walk(original):
        for name in dirs + files:
            src = os.path.join(root, name)
            st = os.lstat(src)
            os.utime(
                os.path.join(dest, os.path.relpath(src, original)),
                ns=(st.st_atime_ns, st.st_mtime_ns),
                follow_symlinks=False,
            )
    os.utime(dest, ns=(os.stat(original).st_atime_ns, os.stat(original).st_mtime_ns))
    return dest


def test_identical_copy_passes(original: Path, tmp_path: Path) -> None:
    assert_same_tree(original, copy(original, tmp_path))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "top level.txt").write_bytes(b"y" * 5000),
        lambda d: os.chmod(d / "top level.txt", 0o644),
        lambda d: os.utime(
            d / "top level.txt", ns=(0, os.lstat(d / "top level.txt").st_mtime_ns + 1)
        ),
        lambda d: os.utime(d / "empty", ns=(0, 5)),
        lambda d: os.utime(d / "dangling", ns=(0, 5), follow_symlinks=False),
        lambda d: (os.unlink(d / "dangling"), os.symlink(b"elsewhere", d / "dangling")),
        lambda d: os.rmdir(d / "empty" / "nested-empty"),
        lambda d: (d / "extra").write_bytes(b""),
        lambda d: os.chmod(d / "Привет", 0o700),
    ],
    ids=[
        "content",
        "mode",
        "mtime-ns",
        "dir-mtime",
        "symlink-mtime",
        "symlink-target",
        "missing-empty-dir",
        "extra-file",
        "dir-mode",
    ],
)
def test_every_difference_is_caught(original: Path, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    dest = copy(original, tmp_path)
    damage(dest)
    with pytest.raises(AssertionError, match="restored tree differs"):
        assert_same_tree(original, dest)

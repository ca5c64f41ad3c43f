"""The tree comparison the e2e tests rely on notices every kind of difference."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.trees import (
    assert_same_tree,
    build_fidelity_tree,
    build_sample_tree,
    xattrs_supported,
)


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


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("f")
    return build_fidelity_tree(root / "src", xattrs=xattrs_supported(root))


def cp_a(src: Path, tmp_path: Path) -> Path:
    """A faithful copy: hard links, xattrs, holes and times kept (GNU cp -a)."""
    dest = tmp_path / "copy"
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dest)], check=True)
    return dest


def test_faithful_copy_of_links_xattrs_and_holes_passes(fidelity: Path, tmp_path: Path) -> None:
    assert_same_tree(fidelity, cp_a(fidelity, tmp_path))


def _unlink_hard(d: Path) -> None:
    data = (d / "hard" / "b-link.bin").read_bytes()
    (d / "hard" / "b-link.bin").unlink()
    (d / "hard" / "b-link.bin").write_bytes(data)


def _fill_holes(d: Path) -> None:
    data = (d / "sparse.img").read_bytes()
    st = os.stat(d / "sparse.img")
    (d / "sparse.img").write_bytes(data)
    os.utime(d / "sparse.img", ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize(
    "damage",
    [
        _unlink_hard,
        _fill_holes,
        lambda d: os.removexattr(d / "single.txt", "user.comment"),
        lambda d: os.setxattr(d / "other", "user.directory", b"no"),
    ],
    ids=["hard-link-broken", "holes-filled", "xattr-missing", "dir-xattr-changed"],
)
def test_every_fidelity_difference_is_caught(
    fidelity: Path, tmp_path: Path, damage, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    if "xattr" in request.node.callspec.id and not xattrs_supported(tmp_path):
        pytest.skip(f"{tmp_path} has no user.* xattr support")
    dest = cp_a(fidelity, tmp_path)
    os.utime(dest / "other", ns=(0, os.stat(fidelity / "other").st_mtime_ns))
    damage(dest)
    os.utime(dest / "hard", ns=(0, os.stat(fidelity / "hard").st_mtime_ns))
    with pytest.raises(AssertionError, match="restored tree differs"):
        assert_same_tree(fidelity, dest)

"""Trees Linux allows that backup tools must save and restore exactly (issue 9): 255-byte and
multibyte names, trees deeper than PATH_MAX, hard links, user.* xattrs, sparse files. Real
node process, real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from samizdat.client.safefs import PARTIAL_PREFIX, partial_name
from tests.conftest import KeyFile
from tests.e2e.test_single_node import push, restore
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import (
    assert_same_tree,
    build_deep_tree,
    build_fidelity_tree,
    build_long_names,
    read_tree,
    xattrs_supported,
)

pytestmark = pytest.mark.timeout(90)


def test_names_up_to_name_max_restore_and_resume(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = build_long_names(tmp_path / "src")
    push(archive_key, node, src)
    dest = tmp_path / "dest"
    out = restore(archive_key, node, dest)
    assert "restored snapshot" in out and ": 6 files" in out, out
    assert_same_tree(src, dest)

    # An interrupted restore leaves a partial file under its short name; the rerun replaces
    # it and completes the file.
    long_dir = "é".encode() * 127 + b"d"
    os.unlink(os.path.join(os.fsencode(dest), long_dir, b"c" * 255))
    stale = os.path.join(os.fsencode(dest), long_dir, partial_name(b"c" * 255))
    with open(stale, "wb") as f:
        f.write(b"the first half of an interrupted write")
    out = restore(archive_key, node, dest)
    assert "5 files already complete" in out, out
    assert_same_tree(src, dest)
    assert not os.path.exists(stale)
    assert not [p for p in read_tree(dest) if PARTIAL_PREFIX in p]


def test_tree_deeper_than_path_max_round_trips(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    deepest = build_deep_tree(src)
    assert len(deepest) > 4096
    push(archive_key, node, src)
    dest = tmp_path / "dest"
    restore(archive_key, node, dest)
    assert_same_tree(src, dest)
    assert read_tree(dest)[deepest + b"/bottom-link"].content == b"bottom.bin"


def test_hard_links_xattrs_and_sparse_files_are_restored(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    with_xattrs = xattrs_supported(tmp_path)
    src = build_fidelity_tree(tmp_path / "src", xattrs=with_xattrs)
    push(archive_key, node, src)
    dest = tmp_path / "dest"
    out = restore(archive_key, node, dest)
    assert "warning" not in out
    assert_same_tree(src, dest)  # links, xattrs and sparseness included
    allocated = os.stat(dest / "sparse.img").st_blocks * 512
    assert allocated < 1 << 20, f"sparse.img takes {allocated} bytes on disk"
    if not with_xattrs:
        pytest.skip(f"{tmp_path} has no user.* xattr support: links and holes checked only")

    # A rerun keeps everything and links nothing twice; restoring one name alone gives a
    # plain file with the content and attributes.
    out = restore(archive_key, node, dest)
    assert ": 0 files (0 B)" in out and "6 files already complete" in out, out
    assert_same_tree(src, dest)
    alone = tmp_path / "alone"
    restore(archive_key, node, alone, "other/c-link.bin")
    tree = read_tree(alone)
    assert tree[b"other/c-link.bin"].content == (src / "hard" / "a.bin").read_bytes()
    assert tree[b"other/c-link.bin"].xattrs == (("user.linked", b"shared by three names"),)
    assert tree[b"other/c-link.bin"].links == ()


def test_verify_counts_hard_links_once_fetched(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = build_fidelity_tree(tmp_path / "src", xattrs=False)
    push(archive_key, node, src)
    code, out, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, err
    assert ": 6 files" in out, out


def test_names_the_destination_cannot_link_are_restored_as_copies(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    # An immutable file cannot get another link (EPERM), as on a file system without hard
    # links (FAT, exFAT): the later names become copies, with a warning.
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr to make a file immutable")
    src = build_fidelity_tree(tmp_path / "src", xattrs=False)
    push(archive_key, node, src)
    dest = tmp_path / "dest"
    restore(archive_key, node, dest, "hard/a.bin")
    first = dest / "hard" / "a.bin"
    if subprocess.run(["chattr", "+i", first], capture_output=True).returncode != 0:
        pytest.skip(f"{tmp_path} does not support the immutable flag")
    try:
        code, out, err = run_cli("restore", "--key", archive_key.path, "--node", node.address, dest)
    finally:
        subprocess.run(["chattr", "-i", first], check=True)
    assert code == 0, err
    assert "refused 2 hard link(s); those names were restored as copies" in err
    tree = read_tree(dest)
    for name in (b"hard/b-link.bin", b"other/c-link.bin"):
        assert tree[name].content == (src / "hard" / "a.bin").read_bytes()
        assert tree[name].links == ()
        assert tree[name].mtime_ns == tree[b"hard/a.bin"].mtime_ns

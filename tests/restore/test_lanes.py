"""Restore's two lanes (samizdat.client.restore): large files written by the bulk lane while
the main lane creates directories, symlinks, hard links and small files, against one real
node. Whatever the two lanes' relative timing, the tree must come back whole: contents,
modes, times of files and of the directories both lanes wrote into, hard links (main lane)
to large files, holes, resume and PATH selection."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from samizdat.client import restore as restore_mod
from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree, read_tree

pytestmark = pytest.mark.timeout(120)

BIG = restore_mod.BULK_MIN + 12_345  # large enough for the bulk lane


def build_two_lane_tree(root: Path) -> Path:
    """Large files in a read-only directory, at the end of a deep new chain, in the last
    directory of the tree and behind hard links; small files and directories around them."""
    rng = random.Random(7)
    files = {
        "a-read-only/big.bin": rng.randbytes(BIG),
        "a-read-only/small.txt": b"small\n",
        "deep/x/y/z/clip.bin": rng.randbytes(BIG + 1),
        "links/one.bin": rng.randbytes(BIG + 2),
        "sparse/disk.img": None,  # a hole, then data
        "zz/last-1.bin": rng.randbytes(2 * BIG),
        "zz/last-2.bin": rng.randbytes(2 * BIG),
    }
    files.update({f"notes/{i:02d}/n{j}.txt": rng.randbytes(300) for i in range(20) for j in (0, 1)})
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            if data is None:
                f.truncate(2 * BIG)
                f.seek(2 * BIG)
                f.write(rng.randbytes(5000))
            else:
                f.write(data)
    os.link(root / "links/one.bin", root / "links/two.bin")
    (root / "other").mkdir()
    os.link(root / "links/one.bin", root / "other/three.bin")
    os.symlink("../zz/last-1.bin", root / "links/to-last")
    os.chmod(root / "zz/last-2.bin", 0o640)
    t = 1_600_000_000_000_000_000
    dirs = sorted(
        (p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()),
        key=lambda p: -len(p.parts),
    )
    for i, path in enumerate(p for p in root.rglob("*") if not p.is_dir()):
        os.utime(path, ns=(t + i, t + i), follow_symlinks=False)
    for i, path in enumerate(dirs):  # deepest first: children do not touch them afterwards
        os.chmod(path, 0o555 if path.name == "a-read-only" else 0o750)
        os.utime(path, ns=(t + 10_000 + i, t + 10_000 + i))
    return root


def cli_ok(*args: object) -> str:
    code, out, err = run_cli(*args)
    assert code == 0, f"{args[0]} failed ({code}): {err}"
    return out


def test_both_lanes_restore_the_whole_tree(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    source = build_two_lane_tree(tmp_path / "source")
    cli_ok("push", "--key", archive_key.path, "--node", node.address, source)
    dest = tmp_path / "restored"
    out = cli_ok("restore", "--key", archive_key.path, "--node", node.address, dest)
    files = sum(1 for n in read_tree(source).values() if n.kind == "file")
    assert f": {files} files" in out, out
    assert_same_tree(source, dest)

    # Rerun into the same DEST: every file is already complete, nothing is fetched again.
    out = cli_ok("restore", "--key", archive_key.path, "--node", node.address, dest)
    assert ": 0 files (0 B)" in out and f"{files} files already complete" in out, out
    assert_same_tree(source, dest)

    # Only PATHs: a large file deep down and the directory of the hard links.
    part = tmp_path / "part"
    cli_ok("restore", "--key", archive_key.path, "--node", node.address, "deep/x", "zz", part)
    got = {p.relative_to(part).as_posix() for p in part.rglob("*") if p.is_file()}
    assert got == {"deep/x/y/z/clip.bin", "zz/last-1.bin", "zz/last-2.bin"}, got
    for rel in got:
        assert (part / rel).read_bytes() == (source / rel).read_bytes(), rel

    out = cli_ok("verify", "--key", archive_key.path, "--node", node.address)
    assert f": {files} files" in out, out

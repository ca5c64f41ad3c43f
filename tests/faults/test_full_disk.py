"""A full disk on restore (ENOSPC from a real, small tmpfs as DEST): clear error, and no
partial file left looking complete.

Mounting needs root, or an unprivileged user+mount namespace (`unshare -rm`); without
either the test is skipped with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, entry_point, run_cli
from tests.trees import assert_same_tree, read_tree

pytestmark = pytest.mark.timeout(90)

LIST_SCRIPT = """
import base64, json, os, sys
root = os.fsencode(sys.argv[1])
out = {}
for d, dirs, files in os.walk(root):
    for n in files:
        full = os.path.join(d, n)
        rel = os.path.relpath(full, root)
        if not os.path.islink(full):
            out[base64.b64encode(rel).decode()] = base64.b64encode(open(full, "rb").read()).decode()
print(json.dumps(out))
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return (
            subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def restore_into_small_fs(
    size: str, dest: Path, args: list[str]
) -> tuple[int, str, dict[bytes, bytes]]:
    """Run `samizdat restore ARGS DEST` with DEST a fresh tmpfs of `size`; return (exit code,
    stderr, {relative path: content} of the regular files left in DEST)."""
    dest.mkdir()
    samizdat = entry_point("samizdat")
    if os.geteuid() == 0:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(dest)], check=True
        )
        try:
            code, _, err = run_cli("restore", *args, dest)
            listing = {p: n.content for p, n in read_tree(dest).items() if n.kind == "file"}
        finally:
            subprocess.run(["umount", "-l", str(dest)], check=False)
        return code, err, listing
    if not _unshare_works():
        pytest.skip("cannot mount a small filesystem here: not root and no user namespaces")
    script = (
        f'mount -t tmpfs -o size={size} tmpfs "$1" || exit 99; shift; '
        f'"$@" 2>"$ERR"; rc=$?; {sys.executable} -c \'{LIST_SCRIPT}\' "$DEST"; exit $rc'
    )
    err_file = dest.parent / "restore.stderr"
    proc = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            script,
            "sh",
            str(dest),
            samizdat,
            "restore",
            *args,
            str(dest),
        ],
        capture_output=True,
        timeout=60,
        env={**os.environ, "ERR": str(err_file), "DEST": str(dest)},
    )
    if proc.returncode == 99:
        pytest.skip(f"cannot mount tmpfs in a user namespace: {proc.stderr.decode()}")
    listing = {
        base64.b64decode(k): base64.b64decode(v)
        for k, v in json.loads(proc.stdout.decode().strip().splitlines()[-1]).items()
    }
    return proc.returncode, err_file.read_text(), listing


def test_restore_onto_a_full_disk_fails_cleanly(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code == 0, err
    code, err, files = restore_into_small_fs(
        "1m", tmp_path / "dest", ["--key", str(archive_key.path), "--node", node.address]
    )
    assert code == 1, err
    assert "full" in err and "Traceback" not in err, err
    big = "évidence/日本語 ディレクトリ/動画.bin".encode()
    assert big not in files, "a file that did not fit was left under its final name"
    assert not [p for p in files if b"samizdat-partial" in p], f"partial files left: {files}"
    source = read_tree(sample_tree)
    for rel, content in files.items():
        assert source[rel].content == content, f"wrong bytes in {rel!r}"
    # it got going: the disk filled while a file was being written (with two restore lanes,
    # whether a small file was finished before the large one filled the disk is a race)
    assert re.search(r"destination is full \(writing '[^']+'\)", err), err
    assert re.search(r"\b(\d+) files? restored so far", err), err


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as a node's data dir needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_node_disk_full_refuses_the_push_and_recovers(
    node_factory: Callable[..., NodeProcess],
    archive_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    node = node_factory("full", host=[archive_key.archive_id], start=False)
    with small_tmpfs(node.data_dir, "8m"):
        node.start()
        src = tmp_path / "big"
        src.mkdir()
        (src / "video.bin").write_bytes(os.urandom(20 << 20))
        code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, src)
        assert code == 1, err
        assert "node disk is full" in err and "Traceback" not in err, err
        assert list(node.status().snapshots) == []  # nothing half-stored was acknowledged
        assert node.stop() == 0  # a clean stop even though the flush cannot complete
        assert "Traceback" not in node.logs() and "stopped cleanly" in node.logs()

        node.start()  # unflushed chunks are gone, the store is consistent and writable
        status = node.status()
        assert list(status.snapshots) == [] and status.bytes_stored < 8 << 20
        code, _, err = run_cli(
            "push", "--key", archive_key.path, "--node", node.address, sample_tree
        )
        assert code == 0, err
        code, _, err = run_cli(
            "restore", "--key", archive_key.path, "--node", node.address, tmp_path / "dest"
        )
        assert code == 0, err
        assert_same_tree(sample_tree, tmp_path / "dest")
        node.stop()

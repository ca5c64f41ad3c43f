"""Restore faults on a fresh machine with a three-node cluster: a node whose disk serves
corrupted bytes, a full disk, hostile paths in a (signed) tree, existing files in DEST.

Hostile trees are hand-built with the real core API (tests.crafted), signed with the archive
key and pushed as new snapshots; the honest snapshot stays reachable by its id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from samizdat.core.errors import ExitCode
from tests.conftest import make_key_file
from tests.crafted import craft_snapshot, dir_entry, file_entry, symlink_entry, upload
from tests.damage import pack_files
from tests.healthcluster import configure
from tests.restore.cluster import (
    Cluster,
    FreshMachine,
    assert_nothing_wrong_in_dest,
    build_archive,
    start_cluster,
    wait_for,
)
from tests.trees import assert_same_tree, read_tree

pytestmark = pytest.mark.timeout(240)
PAYLOAD = b"attacker controlled bytes\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("faults")
    key = make_key_file(base / "archive.key")
    c = start_cluster(base, key, build_archive(base / "archive"))
    yield c
    c.stop()


@pytest.fixture
def machine(cluster: Cluster, tmp_path: Path) -> Iterator[FreshMachine]:
    yield FreshMachine.create(tmp_path, cluster)
    cluster.ensure_running()


def listing(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): (
            os.readlink(p).encode()
            if p.is_symlink()
            else p.read_bytes()
            if p.is_file()
            else b"<dir>"
        )
        for p in sorted(root.rglob("*"))
    }


def test_node_with_corrupted_disk_is_routed_around(cluster: Cluster, machine: FreshMachine) -> None:
    oslo = cluster.by_name("oslo")
    oslo.stop()
    configure(oslo, scrub_rate_mb=0, sync_interval=3600)  # nothing repairs it behind our back
    blob = max(pack_files(oslo.data_dir), key=lambda p: p.stat().st_size)
    raw = bytearray(blob.read_bytes())
    # Nine flips inside the pack: some chunks of some files are damaged, not every one.
    for k in range(1, 10):
        raw[len(raw) * k // 10] ^= 0x04
    blob.write_bytes(bytes(raw))
    oslo.start()
    try:
        # From the damaged node alone: refused, naming what is missing; nothing wrong written.
        code, _, err = machine.restore("--node", oslo.address)
        assert code == ExitCode.INCOMPLETE and "Traceback" not in err, err
        assert "could not be restored" in err and "does not hold it" in err, err
        assert_nothing_wrong_in_dest(cluster.source, machine.cwd / "restored")

        # The node caught the damage on read: quarantined, or already repaired from a peer
        # (the quarantine wakes replication, which may finish before we ask).
        def caught() -> bool:
            st = oslo.status()
            return st.quarantined_chunks >= 1 or st.scrub.repaired >= 1

        assert wait_for(caught, 30, interval=0.2)
        # The same command with a second node completes it (resume + takeover).
        code, summary, err = machine.restore(
            "--node", oslo.address, "--node", cluster.by_name("paris").address
        )
        assert code == 0, err
        assert_same_tree(cluster.source, machine.cwd / "restored")
        assert summary is not None and summary["skipped_files"] > 0
    finally:
        oslo.stop()
        configure(oslo, scrub_rate_mb=50, sync_interval=30)
        oslo.start()


def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "mounting a small tmpfs as DEST needs root (see tests/faults/"
            "test_full_disk.py for the user-namespace variant)"
        )
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def test_full_disk_fails_cleanly_then_resumes(cluster: Cluster, machine: FreshMachine) -> None:
    dest = machine.cwd / "restored"
    _mount_tmpfs(dest, "24m")
    try:
        code, _, err = machine.restore(
            "--cluster", "cluster.toml", "--snapshot", cluster.snapshot_id
        )
        assert code == 1, err
        assert "destination is full" in err and "run the same command again" in err, err
        assert "Traceback" not in err
        partial = assert_nothing_wrong_in_dest(cluster.source, dest)
        assert not partial, f"partial files left: {partial}"
        assert any(n.kind == "file" for n in read_tree(dest).values())  # it got going
        # Space freed (the tmpfs grows): the same command finishes the job.
        subprocess.run(["mount", "-o", "remount,size=400m", str(dest)], check=True)
        code, summary, err = machine.restore(
            "--cluster", "cluster.toml", "--snapshot", cluster.snapshot_id
        )
        assert code == 0, err
        assert_same_tree(cluster.source, dest)
        assert summary is not None and summary["skipped_files"] > 0
    finally:
        subprocess.run(["umount", "-l", str(dest)], check=False)


def hostile_cases(outside: Path) -> dict[str, tuple[list, str, bool]]:  # type: ignore[type-arg]
    """name -> (entries, expected error text, refused before anything is written)."""
    o = os.fsencode(outside)
    return {
        "dotdot": (
            [
                dir_entry(b"a"),
                file_entry(b"a/ok.txt", b"fine"),
                file_entry(b"../outside/pwned.txt", PAYLOAD),
            ],
            "refusing unsafe path in tree: '../outside/pwned.txt'",
            True,
        ),
        "absolute": (
            [file_entry(b"ok.txt", b"fine"), file_entry(o + b"/pwned.txt", PAYLOAD)],
            f"refusing unsafe path in tree: '{outside}/pwned.txt'",
            True,
        ),
        "symlink-then-write-through": (
            [
                file_entry(b"first.txt", b"fine"),
                symlink_entry(b"link", o),
                file_entry(b"link/pwned.txt", PAYLOAD),
            ],
            "written through the symlink 'link'",
            True,
        ),
        "relative-symlink-then-nested-dir": (
            [
                symlink_entry(b"up", b"../outside"),
                dir_entry(b"up/sub"),
                file_entry(b"up/sub/pwned.txt", PAYLOAD),
            ],
            "written through the symlink 'up'",
            True,
        ),
        "symlink-then-same-name-file": (
            [symlink_entry(b"s", o + b"/sentinel.txt"), file_entry(b"s", PAYLOAD)],
            "'s' out of order or twice",
            True,
        ),
        "file-then-child": (
            [file_entry(b"f", b"a file"), file_entry(b"f/pwned.txt", PAYLOAD)],
            "refusing to write 'f/pwned.txt'",
            False,
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "dotdot",
        "absolute",
        "symlink-then-write-through",
        "relative-symlink-then-nested-dir",
        "symlink-then-same-name-file",
        "file-then-child",
    ],
)
def test_hostile_paths_never_touch_anything_outside_dest(
    cluster: Cluster, machine: FreshMachine, outside: Path, case: str
) -> None:
    entries, expected, before_writing = hostile_cases(outside)[case]
    crafted = craft_snapshot(cluster.key.key, entries, sequence=100)
    client = cluster.by_name("paris").client(cluster.key.key)
    try:
        upload(client, crafted)
    finally:
        client.close()
    before = listing(outside)
    code, _, err = machine.restore("--cluster", "cluster.toml", "--snapshot", crafted.id_hex[:16])
    assert listing(outside) == before, f"{case}: restore touched something outside DEST"
    assert code == 1, (case, err)
    assert expected in err and "Traceback" not in err, err
    dest = machine.cwd / "restored"
    if before_writing:
        assert not dest.exists() or not any(dest.iterdir()), list(dest.iterdir())
    for p in dest.rglob("*"):
        assert not (p.is_file() and not p.is_symlink() and p.read_bytes() == PAYLOAD), p
    code, _, err = machine.run(
        "verify",
        "--key",
        "archive.key",
        "--cluster",
        "cluster.toml",
        "--snapshot",
        crafted.id_hex[:16],
    )
    if before_writing:
        assert code == 1 and expected in err, err


def test_symlink_planted_in_dest_is_not_followed(
    cluster: Cluster, machine: FreshMachine, outside: Path
) -> None:
    dest = machine.cwd / "restored"
    dest.mkdir()
    os.symlink(outside, dest / "videos")  # where the snapshot has a directory
    before = listing(outside)
    for extra in ([], ["--overwrite"]):
        code, _, err = machine.restore(
            "--cluster", "cluster.toml", "--snapshot", cluster.snapshot_id, *extra
        )
        assert code in (1, 2) and "'videos" in err and "Traceback" not in err, err
        assert listing(outside) == before
    assert sorted(os.listdir(dest)) == ["videos"]  # refused before writing anything


def test_existing_files_are_refused_unless_overwrite(
    cluster: Cluster, machine: FreshMachine
) -> None:
    dest = machine.cwd / "restored"
    dest.mkdir()
    (dest / "top level.txt").write_bytes(b"mine, not the archive's\n")
    (dest / "unrelated.txt").write_bytes(b"keep me\n")
    before = listing(dest)
    code, _, err = machine.restore("--cluster", "cluster.toml", "--snapshot", cluster.snapshot_id)
    assert code == 2, err
    assert "'top level.txt' already exists in the destination" in err and "--overwrite" in err
    assert listing(dest) == before  # checked before anything was written
    code, summary, err = machine.restore(
        "--cluster", "cluster.toml", "--snapshot", cluster.snapshot_id, "--overwrite"
    )
    assert code == 0, err
    assert (dest / "unrelated.txt").read_bytes() == b"keep me\n"
    (dest / "unrelated.txt").unlink()
    assert_same_tree(cluster.source, dest)
    assert summary is not None and json.dumps(summary)

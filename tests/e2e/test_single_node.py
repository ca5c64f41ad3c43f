"""One real `samizdat-node serve` process (TLS, pinned) driven by the real `samizdat` CLI."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import blake3
import pytest

from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import all_files_bytes, assert_same_tree, read_tree

pytestmark = pytest.mark.timeout(90)

SNAPSHOT_LINE = re.compile(r"snapshot ([0-9a-f]{64}) \(sequence (\d+)\) stored on ")
UPLOADED = re.compile(r"uploaded (\d+) chunks")


def push(key: KeyFile, node: NodeProcess, src: Path) -> tuple[str, int]:
    """Run `samizdat push`; return (snapshot id hex, uploaded chunk count)."""
    code, out, err = run_cli("push", "--key", key.path, "--node", node.address, src)
    assert code == 0, f"push failed ({code}): {err}"
    assert err == "", f"push wrote to stderr: {err!r}"  # quiet when piped
    m, u = SNAPSHOT_LINE.search(out), UPLOADED.search(out)
    assert m and u, out
    return m.group(1), int(u.group(1))


def restore(key: KeyFile, node: NodeProcess, dest: Path, *extra: str) -> str:
    code, out, err = run_cli("restore", "--key", key.path, "--node", node.address, *extra, dest)
    assert code == 0, f"restore failed ({code}): {err}"
    return out


def assert_restores(key: KeyFile, node: NodeProcess, src: Path, dest: Path) -> None:
    """Restore the latest snapshot from `node` into `dest` with the CLI: it must equal `src`."""
    restore(key, node, dest)
    assert_same_tree(src, dest)


def test_push_snapshots_ls_restore_verify_round_trip(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    snap_id, uploaded = push(archive_key, node, sample_tree)
    assert uploaded > 0

    code, out, err = run_cli("snapshots", "--node", node.address)
    assert code == 0, err
    rows = [line for line in out.splitlines() if snap_id[:16] in line]
    assert len(rows) == 1, out
    held = re.search(r"(\d+)/(\d+)", rows[0])
    assert held and held.group(1) == held.group(2) and int(held.group(1)) > 0, rows[0]
    assert archive_key.archive_id[:12] in rows[0]

    code, out, err = run_cli("ls", "--key", archive_key.path, "--node", node.address, "latest")
    assert code == 0, err
    listed = {line.split(maxsplit=4)[-1].split(" -> ")[0] for line in out.splitlines()}
    expected = {p.decode("utf-8", "replace") for p in read_tree(sample_tree)}
    assert listed == expected
    assert "link-to-notes -> évidence/notes — résumé.txt" in out
    assert "-rw-------" in out and "3145728" in out  # mode and size of 動画.bin
    code, out, _ = run_cli(
        "ls", "--key", archive_key.path, "--node", node.address, snap_id[:10], "Привет"
    )
    assert code == 0
    assert sorted(line.split(maxsplit=4)[-1].split(" -> ")[0] for line in out.splitlines()) == [
        "Привет",
        "Привет/run.sh",
        "Привет/to-dir",
        "Привет/пустой",
    ]

    dest = tmp_path / "restored"
    out = restore(archive_key, node, dest)
    assert f"restored snapshot {snap_id[:16]}: 8 files" in out
    assert_same_tree(sample_tree, dest)

    code, out, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, err
    assert f"verified snapshot {snap_id[:16]}: 8 files" in out

    # The same again after a node restart (everything was durable).
    node.restart()
    dest2 = tmp_path / "restored-after-restart"
    restore(archive_key, node, dest2, "--snapshot", snap_id[:12])
    assert_same_tree(sample_tree, dest2)


def test_restore_into_nonempty_destination_resumes_and_refuses_to_clobber(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    push(archive_key, node, sample_tree)
    dest = tmp_path / "dest"
    restore(archive_key, node, dest)
    # rerun: everything already complete, nothing fetched
    out = restore(archive_key, node, dest)
    assert "8 files already complete" in out
    # a file with other content is not overwritten without --overwrite
    victim = dest / "top level.txt"
    victim.chmod(0o644)
    victim.write_bytes(b"local edit")
    code, _, err = run_cli("restore", "--key", archive_key.path, "--node", node.address, dest)
    assert code == 2 and "already exists in the destination" in err
    assert victim.read_bytes() == b"local edit"
    restore(archive_key, node, dest, "--overwrite")
    assert_same_tree(sample_tree, dest)


def test_repush_of_unchanged_tree_stores_under_one_percent(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    first, _ = push(archive_key, node, sample_tree)
    before = node.status().bytes_stored
    assert before > 3 << 20
    second, uploaded = push(archive_key, node, sample_tree)
    after = node.status().bytes_stored
    assert second != first
    assert after - before < 0.01 * before, f"re-push stored {after - before} new bytes"
    assert uploaded <= 2  # at most a changed tree chunk and chunk list
    code, out, _ = run_cli("snapshots", "--node", node.address)
    assert code == 0 and first[:16] in out and second[:16] in out


def test_edit_in_the_middle_of_a_large_file_stores_only_the_edit(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    video = os.urandom(6 << 20)
    (src / "video.mp4").write_bytes(video)
    (src / "notes.txt").write_text("first version\n")
    v1, _ = push(archive_key, node, src)
    base = node.status()

    edited = video[: 3 << 20] + b"<<inserted edit>>" + video[3 << 20 :]
    (src / "video.mp4").write_bytes(edited)
    v2, uploaded = push(archive_key, node, src)
    after = node.status()
    new_bytes = after.bytes_stored - base.bytes_stored
    new_chunks = after.chunks_stored - base.chunks_stored
    # One or two data chunks around the edit, plus tree and chunk list.
    assert new_chunks <= 5, f"{new_chunks} new chunks for a 17-byte insert"
    # At most the two chunks around the edit (each <= the 1 MiB maximum) and the metadata.
    assert new_bytes < 2 * (1 << 20) + (64 << 10), f"{new_bytes} new bytes for a 17-byte insert"
    assert uploaded == new_chunks

    dest_v2, dest_v1 = tmp_path / "v2", tmp_path / "v1"
    restore(archive_key, node, dest_v2)
    assert (dest_v2 / "video.mp4").read_bytes() == edited
    restore(archive_key, node, dest_v1, "--snapshot", v1[:16])
    assert (dest_v1 / "video.mp4").read_bytes() == video
    assert v1 != v2


MARKER = "SZ-MARKER-9f1c2b7e-evidence"
NAME_MARKER = "Zeugenaussage-über-Folter-7d41"


def test_node_directory_holds_no_plaintext(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    secret_dir = src / f"{NAME_MARKER}-dir"
    secret_dir.mkdir(parents=True)
    compressible = (MARKER + "\n").encode() * 20_000  # zstd path
    incompressible = os.urandom(300_000) + MARKER.encode() + os.urandom(300_000)  # raw path
    small = f"note: {MARKER}\n".encode()
    (secret_dir / f"{NAME_MARKER}.txt").write_bytes(compressible)
    (src / "video.bin").write_bytes(incompressible)
    (src / "small.txt").write_bytes(small)
    os.symlink(f"{NAME_MARKER}-target", src / "link")
    snap_id, _ = push(archive_key, node, src)
    node.stop()  # flush everything the node holds to disk

    needles = {
        "content marker": MARKER.encode(),
        "file name marker": NAME_MARKER.encode(),
        "file name marker (NFD)": "Zeugenaussage-u\u0308ber-Folter".encode(),
        # Nobody may confirm that the node holds a known file by hashing it.
        "BLAKE3 of a known file": blake3.blake3(compressible).digest(),
        "BLAKE3 of a known small file": blake3.blake3(small).digest(),
        "hex BLAKE3 of a known file": blake3.blake3(compressible).hexdigest().encode(),
        "head of an incompressible file": incompressible[:64],
    }
    # Positive control: the same scan finds every needle in the plaintext source.
    source = all_files_bytes(src) + [
        ("names", os.fsencode(" ".join(str(p) for p in src.rglob("*"))))
    ]
    source.append(
        (
            "hashes",
            b"".join(
                blake3.blake3(d).digest() + blake3.blake3(d).hexdigest().encode() for _, d in source
            ),
        )
    )
    missed = [
        w for w, n in needles.items() if "NFD" not in w and not any(n in data for _, data in source)
    ]
    assert not missed, f"scan cannot see {missed}"

    scanned = all_files_bytes(node.directory)
    scanned.append((str(node.log_path), node.log_path.read_bytes()))
    assert sum(len(data) for _, data in scanned) > len(incompressible)  # the data is there
    found = [
        f"{what} in {path}"
        for path, data in scanned
        for what, needle in needles.items()
        if needle in data
    ]
    assert not found, "plaintext on the node's disk:\n" + "\n".join(found)

    # And the data is all there.
    node.start()
    dest = tmp_path / "dest"
    restore(archive_key, node, dest)
    assert (dest / f"{NAME_MARKER}-dir" / f"{NAME_MARKER}.txt").read_bytes() == compressible
    shutil.rmtree(dest)

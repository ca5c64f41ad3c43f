"""Salvage: the only surviving copy is damaged (flipped bytes in chunk data, a truncated blob
file, a missing blob file). Restore writes every intact file byte-identical and lists exactly
the damaged ones (exit 3), verify lists every damaged file, and a rerun once a healthy source
is at hand completes the restore. Real node processes and the real CLI throughout."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from samizdat.core.errors import ExitCode
from tests.conftest import KeyFile
from tests.damage import (
    flip_on_disk,
    latest_files,
    pack_of,
    stored_blobs,
    truncate_file,
)
from tests.healthcluster import make_cluster, make_tree
from tests.nodeproc import NodeProcess, run_cli
from tests.restore.cluster import assert_nothing_wrong_in_dest, wait_for
from tests.trees import assert_same_tree, build_sample_tree, read_tree

pytestmark = pytest.mark.timeout(180)

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "damage.schema.json").read_text())


@dataclass
class Damaged:
    """A node whose store lost chunks three ways, a copy of that store, a healthy copy taken
    before the damage, and what must come out: the exact set of damaged files."""

    node: NodeProcess
    key: KeyFile
    source: Path
    damaged_copy: Path
    healthy_copy: Path
    expected: set[bytes]  # tree paths of the files that lost a chunk


def _push(key: KeyFile, node: NodeProcess, tree: Path) -> None:
    code, _, err = run_cli("push", "--key", key.path, "--node", node.address, tree)
    assert code == 0, err


def _add_videos(root: Path, group: str, count: int, size: int, seed: int) -> None:
    rng = random.Random(seed)
    folder = root / "videos" / group
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"clip-{i}.bin").write_bytes(rng.randbytes(size))


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Damaged]:
    """Four pushes, each flushed to its own blob file (groups a, b, c, d of videos); then,
    with the node stopped: two chunks of group a get flipped bytes, the blob file of group b
    is truncated, the blob file of group c is deleted. Group d's file holds the latest tree."""
    from tests.conftest import make_key_file

    base = tmp_path_factory.mktemp("salvage")
    key = make_key_file(base / "archive.key")
    node = NodeProcess(base / "node").init()
    node.host(key.archive_id)
    node.start()
    try:
        source = build_sample_tree(base / "src", big_size=1 << 20)
        for n, group in enumerate("abcd"):
            _add_videos(source, group, 3 if group != "d" else 1, 1_500_000, seed=100 + n)
            _push(key, node, source)
        node.stop()
        healthy = base / "healthy-copy"
        subprocess.run(["cp", "-a", str(node.directory), str(healthy)], check=True)

        record, files = latest_files(node.data_dir, key.key)
        blobs = stored_blobs(node.data_dir, [c for ids in files.values() for c in ids])
        where = {cid: pack_of(node.data_dir, blob) for cid, blob in blobs.items()}
        group_file = {g: where[files[f"videos/{g}/clip-0.bin".encode()][0]] for g in "abcd"}
        assert len({*group_file.values()}) == 4 and None not in group_file.values(), group_file
        tree_files = {
            pack_of(node.data_dir, b)
            for b in stored_blobs(node.data_dir, list(record.tree_chunk_ids)).values()
        }
        assert not tree_files & {group_file["b"], group_file["c"]}, "the tree must survive"

        # Flipped bytes in two chunks of group a (one in each of two files).
        flipped = [files[b"videos/a/clip-0.bin"][1], files[b"videos/a/clip-2.bin"][0]]
        for cid in flipped:
            blob = blobs[cid]
            assert flip_on_disk(node.data_dir, blob[100:132]) == group_file["a"]
        truncate_file(group_file["b"], keep=0.0)  # allocated, never written: every blob lost
        group_file["c"].unlink()
        lost = {cid for cid, f in where.items() if f in (group_file["b"], group_file["c"])}
        lost.update(flipped)
        expected = {path for path, ids in files.items() if lost.intersection(ids)}
        assert len(expected) >= 8 and b"videos/d/clip-0.bin" not in expected

        damaged_copy = base / "damaged-copy"
        subprocess.run(["cp", "-a", str(node.directory), str(damaged_copy)], check=True)
        node.start()
        yield Damaged(node, key, source, damaged_copy, healthy, expected)
    finally:
        node.stop()


def _restore(*args: str | Path) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = run_cli("restore", "--json", *args)
    assert "Traceback" not in err, err
    return code, (json.loads(out) if out.strip() else {}), err


def _listed(summary: dict) -> set[bytes]:  # type: ignore[type-arg]
    jsonschema.validate(summary["damaged"], SCHEMA)
    return {
        bytes.fromhex(d["path_hex"]) if "path_hex" in d else d["path"].encode()
        for d in summary["damaged"]
    }


def assert_intact_files_restored(case: Damaged, dest: Path) -> None:
    """Every file of the source that is not damaged is in DEST, byte-identical; no damaged
    file is there under its name; nothing else is."""
    assert not assert_nothing_wrong_in_dest(case.source, dest)  # no partial file left
    source, restored = read_tree(case.source), read_tree(dest)
    files = {p for p, n in source.items() if n.kind == "file"}
    assert {p for p, n in restored.items() if n.kind == "file"} == files - case.expected
    for path in files - case.expected:
        assert restored[path] == source[path], path


def test_damaged_store_copy_restores_every_intact_file_and_lists_the_rest(
    damaged: Damaged, tmp_path: Path
) -> None:
    dest = tmp_path / "restored"
    code, summary, err = _restore("--key", damaged.key.path, "--store", damaged.damaged_copy, dest)
    assert code == ExitCode.INCOMPLETE, err
    assert _listed(summary) == damaged.expected
    assert summary["complete"] is False and summary["damaged_files"] == len(damaged.expected)
    assert_intact_files_restored(damaged, dest)
    (report,) = summary["sources"]
    assert not report["dropped"] and report["damaged_chunks"] >= 1, report  # damaged, not evil
    assert report["corrupt_chunks"] == 0
    for entry in summary["damaged"]:
        assert entry["salvaged_as"] is None and entry["lost_chunks"], entry
        for chunk in entry["lost_chunks"]:
            assert chunk["problem"] == "missing"
            assert chunk["sources"] == {report["source"]: "damaged copy"}, chunk
    # stderr names every damaged file too
    for path in damaged.expected:
        assert path.decode() in err, path
    assert "none of them was written under its name" in err

    # A rerun with a healthy copy beside the damaged one completes the restore, fetching
    # only what is missing.
    code, summary, err = _restore(
        "--key",
        damaged.key.path,
        "--store",
        damaged.damaged_copy,
        "--store",
        damaged.healthy_copy,
        dest,
    )
    assert code == 0, err
    assert summary["complete"] is True and summary["damaged"] == []
    assert_same_tree(damaged.source, dest)
    files = sum(1 for n in read_tree(damaged.source).values() if n.kind == "file")
    assert summary["files"] == len(damaged.expected)
    assert summary["skipped_files"] == files - len(damaged.expected)


def test_verify_lists_every_damaged_file(damaged: Damaged) -> None:
    for source in ("--store", damaged.damaged_copy), ("--node", damaged.node.address):
        code, out, err = run_cli("verify", "--json", "--key", damaged.key.path, *source)
        assert code == ExitCode.INCOMPLETE, err
        assert "Traceback" not in err
        assert _listed(json.loads(out)) == damaged.expected


def test_damaged_node_is_not_dropped_and_a_healthy_source_completes_the_rerun(
    damaged: Damaged, tmp_path: Path
) -> None:
    dest = tmp_path / "restored"
    node = damaged.node
    code, summary, err = _restore("--key", damaged.key.path, "--node", node.address, dest)
    assert code == ExitCode.INCOMPLETE, err
    assert _listed(summary) == damaged.expected
    assert_intact_files_restored(damaged, dest)
    (report,) = summary["sources"]
    assert not report["dropped"] and report["corrupt_chunks"] == 0, report
    assert node.status().quarantined_chunks >= 2  # it caught the damage on read

    # The same command again, with a healthy copy now at hand: complete.
    code, summary, err = _restore(
        "--key", damaged.key.path, "--node", node.address, "--store", damaged.healthy_copy, dest
    )
    assert code == 0, err
    assert_same_tree(damaged.source, dest)


def test_salvage_partial_writes_what_verifies_beside_the_name(
    damaged: Damaged, tmp_path: Path
) -> None:
    dest = tmp_path / "salvaged"
    code, summary, err = _restore(
        "--key", damaged.key.path, "--store", damaged.damaged_copy, "--salvage-partial", dest
    )
    assert code == ExitCode.INCOMPLETE, err
    assert _listed(summary) == damaged.expected
    source = read_tree(damaged.source)
    salvaged_count = 0
    for entry in summary["damaged"]:
        path = entry["path"].encode()
        original = source[path].content
        assert not (dest / entry["path"]).exists(), "a damaged file carries its real name"
        if len(entry["lost_chunks"]) == entry["chunks"]:  # nothing verified: nothing written
            assert entry["salvaged_as"] is None and entry["sidecar"] is None, entry
            assert not (dest / (entry["path"] + ".samizdat-salvaged")).exists()
            continue
        salvaged_count += 1
        salvaged = (dest / entry["salvaged_as"]).read_bytes()
        assert entry["salvaged_as"] == entry["path"] + ".samizdat-salvaged"
        sidecar = json.loads((dest / entry["sidecar"]).read_text())
        jsonschema.validate(sidecar, {"$ref": "#/$defs/sidecar", "$defs": SCHEMA["$defs"]})
        assert sidecar["path"] == entry["path"] and sidecar["size"] == len(original)
        assert len(salvaged) == len(original)
        zero = bytearray(original)
        for r in sidecar["zero_filled"]:
            zero[r["offset"] : r["offset"] + r["length"]] = bytes(r["length"])
        assert salvaged == bytes(zero), "salvaged bytes differ outside the listed ranges"
        assert sidecar["zero_filled"] == [
            {k: c[k] for k in ("offset", "length", "chunk", "problem", "detail")}
            for c in entry["lost_chunks"]
        ]
    assert salvaged_count == 2  # the two files of group a with one flipped chunk each
    # Once a healthy source is at hand, the rerun restores the files under their names and
    # removes the salvage copies.
    code, summary, err = _restore(
        "--key", damaged.key.path, "--store", damaged.healthy_copy, "--salvage-partial", dest
    )
    assert code == 0, err
    assert_same_tree(damaged.source, dest)


def test_chunk_no_peer_can_supply_is_counted_by_nodes_and_named_by_verify(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Both copies of a chunk are damaged: each node quarantines its own and no peer can
    supply it. Nodes (no key) count it; verify (with the key) names the file it breaks; a
    custodian's new push brings it back and the count goes to zero everywhere."""
    cluster = make_cluster(
        node_factory, archive_key, tmp_path, names=("paris", "berlin"), replicas=2
    )
    src = make_tree(tmp_path / "src")
    cluster.push(src)
    cluster.wait_complete()
    for n in cluster.nodes:
        n.stop()
    _, files = latest_files(cluster.nodes[0].data_dir, archive_key.key)
    victim = files[b"videos/v1.bin"][0]  # a 500 kB file may be a single chunk
    for n in cluster.nodes:
        blob = stored_blobs(n.data_dir, [victim])[victim]
        flip_on_disk(n.data_dir, blob[200:232])
        n.start()

    code, out, err = run_cli(
        "verify", "--json", "--key", archive_key.path, "--cluster", cluster.file
    )
    assert code == ExitCode.INCOMPLETE, err
    summary = json.loads(out)
    assert _listed(summary) == {b"videos/v1.bin"}
    (lost,) = summary["damaged"][0]["lost_chunks"]
    assert lost["chunk"] == victim.hex() and set(lost["sources"].values()) == {
        "does not hold it"
    }, lost

    def unrepairable() -> list[int]:
        return [n.status().unrepairable_chunks for n in cluster.nodes]

    assert wait_for(lambda: unrepairable() == [1, 1], 60, interval=0.2), unrepairable()
    code, report = cluster.status_json()
    assert code == 1
    named = {f["node"] for f in report["findings"] if f["code"] == "unrepairable_chunks"}
    assert named == {"paris", "berlin"}, report["findings"]
    assert all(n["unrepairable_chunks"] == 1 for n in report["nodes"])

    cluster.push(src)  # a custodian still holds the files: the chunk comes back
    cluster.wait_complete()
    assert wait_for(lambda: unrepairable() == [0, 0], 60, interval=0.2), unrepairable()
    code, out, err = run_cli("verify", "--key", archive_key.path, "--cluster", cluster.file)
    assert code == 0, err

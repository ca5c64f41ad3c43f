"""The scrubber in process: finds corruption, quarantines, recounts, resumes, rate-limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.server.config import config_path, write_initial_config
from samizdat.server.identity import create_identity
from samizdat.server.runtime import NodeRuntime
from samizdat.server.scrub import STATE_KEY, Scrubber, ScrubState
from samizdat.server.snapshots import accept_snapshot
from tests.crafted import random_snapshot
from tests.damage import flip_on_disk, overwrite_stored

KEY = ArchiveKey(signing_seed=b"\x51" * 32, master_secret=b"\x52" * 32)


def make_node(directory: Path, **config: object) -> NodeRuntime:
    directory.mkdir(parents=True, exist_ok=True)
    if not config_path(directory).exists():
        create_identity(directory)
        write_initial_config(directory, "n", "127.0.0.1:0", "FR")
    doc = tomlkit.parse(config_path(directory).read_text())
    doc["hosted_archives"] = [KEY.archive_id.hex()]
    for k, v in config.items():
        doc[k] = v
    config_path(directory).write_text(tomlkit.dumps(doc))
    return NodeRuntime(directory)


def store_snapshot(
    node: NodeRuntime, n: int = 20, size: int = 5000
) -> tuple[Snapshot, list[tuple[bytes, bytes]]]:
    snap, blobs = random_snapshot(KEY, n, size)
    node.store.put_chunks(blobs)
    accept_snapshot(
        node.store,
        snap.signed,
        node.config.hosted_archives,
        require_complete=True,
        custody=node.custody,
    )
    return snap, blobs[:-1]  # the data chunks


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeRuntime]:
    runtime = make_node(tmp_path / "node", scrub_rate_mb=1000, scrub_interval=0)
    yield runtime
    runtime.close()


def run_pass(scrubber: Scrubber, limit: int = 1000) -> None:
    passes = scrubber.state.passes_completed
    for _ in range(limit):
        scrubber.step()
        if scrubber.state.passes_completed > passes:
            return
    raise AssertionError("scrub pass did not complete")


def test_clean_pass_verifies_everything(node: NodeRuntime) -> None:
    snap, chunks = store_snapshot(node)
    scrubber = Scrubber(node)
    run_pass(scrubber)
    status = scrubber.status()
    assert status.passes_completed == 1 and status.corrupt_found == 0
    assert status.chunks_checked == len(chunks) + 1  # plus the chunk list
    assert status.verified_since_unix > 0 and status.enabled
    assert node.store.snapshot_state(snap.id)[:2] == (21, 21)


def test_corrupt_chunk_is_quarantined_counted_and_released_when_fetched_again(
    node: NodeRuntime,
) -> None:
    snap, chunks = store_snapshot(node)
    victim_id, victim_blob = chunks[3]
    overwrite_stored(node.store, victim_id, b"rot" + victim_blob[3:])
    scrubber = Scrubber(node)
    node.wake.clear()
    run_pass(scrubber)
    status = scrubber.status()
    assert status.corrupt_found == 1 and status.pending_repair == 1
    assert status.findings[0].chunk_hex == victim_id.hex() and status.findings[0].repaired_unix == 0
    assert "scrub" in status.findings[0].detail
    assert node.store.snapshot_state(snap.id)[:2] == (20, 21)  # incomplete: replication refetches
    assert node.wake.is_set()
    assert status.verified_since_unix  # every chunk still held was checked
    node.store.put_chunks([(victim_id, victim_blob)])  # what the replicator's pull does
    scrubber.handle_quarantine()
    status = scrubber.status()
    assert status.repaired == 1 and status.pending_repair == 0
    # Released only once durable: indexed, not merely in the write buffer.
    assert victim_id in {cid for cid, _ in node.store.iter_chunk_ids(victim_id)}
    assert status.findings[0].repaired_unix > 0


def test_chunk_quarantined_on_read_is_accounted_too(node: NodeRuntime) -> None:
    snap, chunks = store_snapshot(node)
    victim_id, victim_blob = chunks[5]
    overwrite_stored(node.store, victim_id, b"x" + victim_blob[1:])
    assert node.store.get_chunk(victim_id) is None  # as GetChunks would
    scrubber = Scrubber(node)
    scrubber.handle_quarantine()
    assert node.store.snapshot_state(snap.id)[:2] == (20, 21)
    assert scrubber.status().findings[0].detail.startswith("read")


def test_flipped_byte_in_blob_file_is_found(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node", scrub_rate_mb=1000, scrub_interval=0)
    snap, chunks = store_snapshot(node)
    victim_id, victim_blob = chunks[7]
    node.close()
    flip_on_disk(tmp_path / "node" / "data", victim_blob[2000:2032])
    node = make_node(tmp_path / "node")
    try:
        scrubber = Scrubber(node)
        run_pass(scrubber)
        assert [f.chunk_hex for f in scrubber.status().findings] == [victim_id.hex()]
        assert node.store.has_chunks([victim_id]) == [False]
    finally:
        node.close()


def test_cursor_and_findings_survive_restart(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node", scrub_rate_mb=0.01, scrub_interval=0)  # 2.5 kB/slice
    store_snapshot(node, n=30)
    scrubber = Scrubber(node)
    delay = scrubber.step()
    first = scrubber.state.cursor_hex
    assert first and scrubber.state.pass_started_unix
    assert 0 < scrubber.status().position_fraction < 1
    assert delay > 0.1  # rate-limited: 5 kB at 0.01 MB/s is ~0.5 s
    node.close()
    node = make_node(tmp_path / "node", scrub_rate_mb=1000)
    try:
        state = ScrubState.load(node.store.get_state(STATE_KEY))
        assert state.cursor_hex == first
        scrubber = Scrubber(node)
        run_pass(scrubber)
        assert scrubber.state.chunks_checked == 31  # the first slice's chunks and the rest
    finally:
        node.close()


def test_disabled_scrub_hashes_nothing(node: NodeRuntime) -> None:
    store_snapshot(node)
    doc = tomlkit.parse(config_path(node.directory).read_text())
    doc["scrub_rate_mb"] = 0
    config_path(node.directory).write_text(tomlkit.dumps(doc))
    node.reload()
    scrubber = Scrubber(node)
    assert scrubber.step() > 0
    status = scrubber.status()
    assert not status.enabled and status.passes_completed == 0 and status.chunks_checked == 0

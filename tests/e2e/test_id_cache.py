"""The client's local id cache (samizdat.client.idcache) with real nodes and the real CLI:
a hit never stands in for a chunk the node lacks, an entry altered without the archive key is
no hit, and a wrong entry that passes its MAC still stops the push."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import rocksdict as rdb

from samizdat.client.idcache import FORMAT_KEY, IdCache
from tests.conftest import KeyFile
from tests.e2e.test_single_node import UPLOADED, push, restore
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree

pytestmark = pytest.mark.timeout(90)


def cache_path(key: KeyFile) -> Path:
    return Path(os.environ["SAMIZDAT_CACHE_DIR"]) / key.archive_id / "ids"


def test_cache_hits_still_upload_what_a_fresh_node_lacks(
    node_factory: Callable[..., NodeProcess],
    archive_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    first = node_factory("first", host=[archive_key.archive_id])
    _, uploaded_first = push(archive_key, first, sample_tree)
    assert cache_path(archive_key).is_dir()
    # Every chunk is now a cache hit; the fresh node lacks them all, so all are encoded again,
    # checked against their cached ids and uploaded.
    fresh = node_factory("fresh", host=[archive_key.archive_id])
    _, uploaded_fresh = push(archive_key, fresh, sample_tree)
    assert uploaded_fresh == uploaded_first
    restore(archive_key, fresh, tmp_path / "restored")
    assert_same_tree(sample_tree, tmp_path / "restored")


def test_wrong_cache_entry_stops_the_push_and_clears_the_cache(
    node_factory: Callable[..., NodeProcess],
    archive_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    first = node_factory("first", host=[archive_key.archive_id])
    push(archive_key, first, sample_tree)
    # Point every cached entry at a wrong id with a valid MAC (only the archive key can write
    # one: a bug, or a holder of the key; the check on upload is the last line of defence).
    db = rdb.Rdict(str(cache_path(archive_key)), options=rdb.Options(raw_mode=True))
    entries = [(k, v) for k, v in db.items() if k != FORMAT_KEY]
    db.close()
    assert entries
    cache = IdCache.open_for(archive_key.key)
    assert cache is not None
    for k, v in entries:
        cache.put(k, bytes(32 - len(b"wrong")) + b"wrong", int.from_bytes(v[32:36], "big"))
    cache.close()

    fresh = node_factory("fresh", host=[archive_key.archive_id])
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", fresh.address, sample_tree)
    assert code == 1 and "local id cache" in err and "run the push again" in err, err
    assert "Traceback" not in err
    assert not cache_path(archive_key).exists()
    assert not fresh.status().snapshots  # no snapshot record was stored

    push(archive_key, fresh, sample_tree)  # the rerun rebuilds the cache and succeeds
    restore(archive_key, fresh, tmp_path / "restored")
    assert_same_tree(sample_tree, tmp_path / "restored")


def test_entries_swapped_without_the_key_are_misses_not_wrong_references(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    """Someone who can write ~/.cache but lacks the archive key swaps cached values around. The
    node holds every chunk, so HasChunks cannot catch a wrong id: the MAC must."""
    push(archive_key, node, sample_tree)
    db = rdb.Rdict(str(cache_path(archive_key)), options=rdb.Options(raw_mode=True))
    entries = [(k, v) for k, v in db.items() if k != FORMAT_KEY]
    assert len(entries) >= 2
    for (k, _), (_, v) in zip(entries, entries[1:] + entries[:1], strict=True):
        db[k] = v  # each entry gets its neighbour's (MAC-valid for the neighbour) value
    db.close()

    code, out, err = run_cli(
        "push", "--key", archive_key.path, "--node", node.address, "--force-rehash", sample_tree
    )
    assert code == 0, err
    code, out, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, out + err
    restore(archive_key, node, tmp_path / "restored")
    assert_same_tree(sample_tree, tmp_path / "restored")


def test_no_cache_flag_leaves_no_cache(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    code, out, err = run_cli(
        "push", "--key", archive_key.path, "--node", node.address, "--no-cache", sample_tree
    )
    assert code == 0, err
    assert UPLOADED.search(out)
    assert not cache_path(archive_key).exists()

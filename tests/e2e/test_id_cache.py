"""The client's local id cache (samizdat.client.idcache) with real nodes and the real CLI:
a hit never stands in for a chunk the node lacks, an entry altered without the archive key is
no hit, and a wrong entry that passes its MAC still stops the push."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import rocksdict as rdb

from samizdat.client.idcache import FORMAT_KEY, IdCache
from tests.conftest import KeyFile
from tests.e2e.test_single_node import UPLOADED, assert_restores, push
from tests.nodeproc import NodeProcess, run_cli

pytestmark = pytest.mark.timeout(90)


def cache_path(key: KeyFile) -> Path:
    return Path(os.environ["SAMIZDAT_CACHE_DIR"]) / key.archive_id / "ids"


@contextmanager
def raw_cache(key: KeyFile) -> Iterator[rdb.Rdict]:
    """The id cache's database as it is on disk (no MAC checks), closed after use."""
    db = rdb.Rdict(str(cache_path(key)), options=rdb.Options(raw_mode=True))
    try:
        yield db
    finally:
        db.close()


def cache_entries(db: rdb.Rdict) -> list[tuple[bytes, bytes]]:
    """Every (key, value) entry of the cache, its format marker left out."""
    return [(k, v) for k, v in db.items() if k != FORMAT_KEY]


def test_cache_hits_still_upload_what_a_fresh_node_lacks(
    first_and_fresh: tuple[NodeProcess, NodeProcess],
    archive_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    first, fresh = first_and_fresh
    _, uploaded_first = push(archive_key, first, sample_tree)
    assert cache_path(archive_key).is_dir()
    # Every chunk is now a cache hit; the fresh node lacks them all, so all are encoded again,
    # checked against their cached ids and uploaded.
    _, uploaded_fresh = push(archive_key, fresh, sample_tree)
    assert uploaded_fresh == uploaded_first
    assert_restores(archive_key, fresh, sample_tree, tmp_path / "restored")


def test_wrong_cache_entry_stops_the_push_and_clears_the_cache(
    first_and_fresh: tuple[NodeProcess, NodeProcess],
    archive_key: KeyFile,
    sample_tree: Path,
    tmp_path: Path,
) -> None:
    first, fresh = first_and_fresh
    push(archive_key, first, sample_tree)
    # Point every cached entry at a wrong id with a valid MAC (only the archive key can write
    # one: a bug, or a holder of the key; the check on upload is the last line of defence).
    with raw_cache(archive_key) as db:
        entries = cache_entries(db)
    assert entries
    cache = IdCache.open_for(archive_key.key)
    assert cache is not None
    for k, v in entries:
        cache.put(k, bytes(32 - len(b"wrong")) + b"wrong", int.from_bytes(v[32:36], "big"))
    cache.close()

    code, _, err = run_cli("push", "--key", archive_key.path, "--node", fresh.address, sample_tree)
    assert code == 1 and "local id cache" in err and "run the push again" in err, err
    assert "Traceback" not in err
    assert not cache_path(archive_key).exists()
    assert not fresh.status().snapshots  # no snapshot record was stored

    push(archive_key, fresh, sample_tree)  # the rerun rebuilds the cache and succeeds
    assert_restores(archive_key, fresh, sample_tree, tmp_path / "restored")


def test_entries_swapped_without_the_key_are_misses_not_wrong_references(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    """Someone who can write ~/.cache but lacks the archive key swaps cached values around. The
    node holds every chunk, so HasChunks cannot catch a wrong id: the MAC must."""
    push(archive_key, node, sample_tree)
    with raw_cache(archive_key) as db:
        entries = cache_entries(db)
        assert len(entries) >= 2
        for (k, _), (_, v) in zip(entries, entries[1:] + entries[:1], strict=True):
            db[k] = v  # each entry gets its neighbour's (MAC-valid for the neighbour) value

    code, out, err = run_cli(
        "push", "--key", archive_key.path, "--node", node.address, "--force-rehash", sample_tree
    )
    assert code == 0, err
    code, out, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, out + err
    assert_restores(archive_key, node, sample_tree, tmp_path / "restored")


def test_no_cache_flag_leaves_no_cache(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    code, out, err = run_cli(
        "push", "--key", archive_key.path, "--node", node.address, "--no-cache", sample_tree
    )
    assert code == 0, err
    assert UPLOADED.search(out)
    assert not cache_path(archive_key).exists()

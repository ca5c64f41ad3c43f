"""Audit: fetch random chunks from each node and check them against their ids.

A node's counters are its own word. The audit turns a claimed copy into a verified one
without trusting it: for every snapshot a node claims to hold completely, it draws chunk ids
at random (from `random.SystemRandom`, so a node cannot predict them) out of the snapshot's
plaintext chunk lists, fetches them from that node with GetChunks and checks every blob's
BLAKE3 against its id. A node that lacks or corrupts any sampled chunk fails the audit.

Reading chunks needs a reader token: the archive key (`--key`). Chunk lists are fetched once
(from any node that claims the snapshot, verified against their ids) and shared by the
audits of all nodes. Sampling is uniform over the snapshot's chunk-list entries plus the lists
themselves, assuming full lists of MAX_IDS entries except the last (how they are cut).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import blake3
from google.protobuf.message import DecodeError

from samizdat.client.health import AuditResult, NodeReport
from samizdat.core.chunklist import MAGIC, MAX_IDS, VERSION
from samizdat.core.errors import SamizdatError
from samizdat.core.ids import ArchiveId
from samizdat.core.peer import Peer, iter_blobs
from samizdat.core.records import Snapshot
from samizdat.rpc.limits import MAX_BATCH_IDS
from samizdat.v1 import records_pb2 as pb


class _Lists:
    """Chunk lists by id, fetched on first use from the first node that serves them intact.

    Kept as parsed messages: sampling indexes `ids` directly, so a 32 Ki-entry list costs one
    C-level parse, not a Python loop over every entry (ids drawn are checked one by one).
    """

    def __init__(self) -> None:
        self._cache: dict[bytes, Sequence[bytes] | None] = {}

    def get(self, list_id: bytes, sources: list[Peer]) -> Sequence[bytes] | None:
        if list_id not in self._cache:
            self._cache[list_id] = self._fetch(list_id, sources)
        return self._cache[list_id]

    @staticmethod
    def _fetch(list_id: bytes, sources: list[Peer]) -> Sequence[bytes] | None:
        for client in sources:
            try:
                for chunk_id, data in iter_blobs(client, [list_id]):
                    if chunk_id == list_id and blake3.blake3(data).digest() == list_id:
                        return _parse_list(data)
            except SamizdatError:
                continue
        return None


def _parse_list(blob: bytes) -> Sequence[bytes] | None:
    """The ids of a chunk-list blob (format: core.chunklist), or None if malformed."""
    msg = pb.ChunkList()
    if not blob.startswith(MAGIC):
        return None
    try:
        msg.ParseFromString(blob[len(MAGIC) :])
    except DecodeError:
        return None
    if msg.version != VERSION or len(msg.ids) > MAX_IDS:
        return None
    return msg.ids


def _draw(
    snap: Snapshot, count: int, lists: _Lists, sources: list[Peer], rng: random.Random
) -> list[bytes]:
    """`count` distinct chunk ids of `snap`, roughly uniform over everything it references."""
    list_ids = list(snap.record.chunk_list_ids)
    if not list_ids:
        return []
    total_entries = max(1, snap.record.totals.chunks + len(snap.record.tree_chunk_ids))
    last = max(1, total_entries - (len(list_ids) - 1) * MAX_IDS)
    weights = [MAX_IDS] * (len(list_ids) - 1) + [last]
    population = sum(weights) + len(list_ids)
    picked: set[bytes] = set()
    for _ in range(count * 4):  # retries cover duplicates and unreadable lists
        if len(picked) >= count:
            break
        if rng.randrange(population) < len(list_ids):
            picked.add(rng.choice(list_ids))
            continue
        list_id = rng.choices(list_ids, weights)[0]
        entries = lists.get(list_id, sources)
        if entries:
            chunk_id = entries[rng.randrange(len(entries))]
            if len(chunk_id) == 32:
                picked.add(chunk_id)
    return list(picked)


def _check(client: Peer, samples: dict[bytes, set[bytes]], result: AuditResult) -> None:
    """Fetch every sampled id from the node; sort them into ok, missing and corrupt."""
    ids = list(samples)
    seen: set[bytes] = set()
    try:
        for i in range(0, len(ids), MAX_BATCH_IDS):
            for chunk_id, data in iter_blobs(client, ids[i : i + MAX_BATCH_IDS]):
                if chunk_id not in samples or chunk_id in seen:
                    continue
                seen.add(chunk_id)
                if blake3.blake3(data).digest() == chunk_id:
                    result.ok += 1
                else:
                    result.corrupt.append(chunk_id.hex())
    except SamizdatError as e:
        result.error = str(e)
        return
    result.missing.extend(c.hex() for c in ids if c not in seen)
    failed = {bytes.fromhex(c) for c in result.missing + result.corrupt}
    passed: dict[bytes, bool] = defaultdict(lambda: True)
    for chunk_id, snapshot_ids in samples.items():
        for sid in snapshot_ids:
            passed[sid] &= chunk_id not in failed
    result.snapshots_passed = {sid for sid, ok in passed.items() if ok}


def audit(
    nodes: list[NodeReport],
    clients: Mapping[str, Peer],
    records: dict[bytes, Snapshot],
    archive_id: ArchiveId,
    per_node: int,
    rng: random.Random | None = None,
) -> None:
    """Audit every reachable node for up to `per_node` chunks of the snapshots of
    `archive_id` it claims to hold completely; store the result in `node.audit`."""
    rng = rng or random.SystemRandom()
    lists = _Lists()
    claims: dict[str, list[Snapshot]] = {}
    for n in nodes:
        if not n.reachable or not n.hosts(archive_id):
            continue
        claims[n.name] = sorted(
            (
                records[sid]
                for sid, s in n.snapshots.items()
                if sid in records
                and bytes(records[sid].archive_id) == archive_id
                and s.chunks_total
                and s.chunks_held >= s.chunks_total
            ),
            key=lambda snap: -snap.record.sequence,
        )
    plans: dict[str, dict[bytes, set[bytes]]] = {}
    for n in nodes:
        snaps = claims.get(n.name)
        if not snaps:
            continue
        # Sources for chunk lists: this node last, so a liar cannot hide its own gaps.
        others = [clients[m.name] for m in nodes if m.name in claims and m.name != n.name]
        sources = others + [clients[n.name]]
        samples: dict[bytes, set[bytes]] = defaultdict(set)
        for index, snap in enumerate(snaps):
            share = per_node // len(snaps) + (1 if index < per_node % len(snaps) else 0)
            for chunk_id in _draw(snap, share, lists, sources, rng):
                samples[chunk_id].add(bytes(snap.id))
        plans[n.name] = samples
    by_name = {n.name: n for n in nodes}
    results = {name: AuditResult(sampled=len(samples)) for name, samples in plans.items()}
    for name, result in results.items():
        by_name[name].audit = result
    with ThreadPoolExecutor(max(1, min(8, len(plans)))) as pool:
        for job in [
            pool.submit(_check, clients[name], samples, results[name])
            for name, samples in plans.items()
        ]:
            job.result()

"""Where chunks and snapshot records come from: one or more nodes, verified on receipt."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from samizdat.rpc.remote import NodeClient
from samizdat.core.codec import verify_blob
from samizdat.core.errors import (
    ChunkCorrupt,
    ChunkNotFound,
    PeerUnavailable,
    SignatureError,
    SnapshotNotFound,
)
from samizdat.core.records import Snapshot, verify_snapshot
from samizdat.rpc.limits import MAX_BATCH_IDS

log = logging.getLogger(__name__)


class NodeSources:
    """Fetches chunks from a list of nodes, verifying every id; fails over between nodes and
    drops a node that serves bad bytes."""

    def __init__(self, clients: list[NodeClient]) -> None:
        self.clients = list(clients)
        self.bad: dict[str, int] = {}
        self.fetched = 0

    def _demote(self, client: NodeClient, why: str) -> None:
        log.warning("dropping node %s: %s", client.label, why)
        self.bad[client.label] = self.bad.get(client.label, 0) + 1
        if client in self.clients:
            self.clients.remove(client)

    def iter_blobs(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """Yield (id, verified blob) for every id, in order. Raises ChunkNotFound when no
        node can serve one."""
        for start in range(0, len(ids), MAX_BATCH_IDS):
            wanted = ids[start : start + MAX_BATCH_IDS]
            got: dict[bytes, bytes] = {}
            for client in list(self.clients):
                need = [i for i in wanted if i not in got]
                if not need:
                    break
                try:
                    for response in client.get_chunks(need):
                        for chunk in response.chunks:
                            if chunk.id not in need:
                                raise ChunkCorrupt(chunk.id.hex(), "not requested")
                            verify_blob(chunk.id, chunk.data)
                            got[chunk.id] = chunk.data
                except ChunkCorrupt as e:
                    self._demote(client, f"served a corrupt chunk ({e})")
                except PeerUnavailable as e:
                    self._demote(client, str(e))
            for chunk_id in wanted:
                blob = got.get(chunk_id)
                if blob is None:
                    raise ChunkNotFound(chunk_id.hex())
                self.fetched += 1
                yield chunk_id, blob


def list_verified_snapshots(clients: list[NodeClient], archive_id: bytes) -> list[Snapshot]:
    """All snapshots of the archive known to any reachable node, signatures verified, sorted
    by (sequence, time). Forged records are skipped with a warning."""
    found: dict[bytes, Snapshot] = {}
    reachable = 0
    for client in clients:
        try:
            listing = client.list_snapshots(archive_id)
        except PeerUnavailable as e:
            log.warning("%s", e)
            continue
        reachable += 1
        for item in listing.snapshots:
            try:
                snap = verify_snapshot(item.snapshot, archive_id)
            except SignatureError as e:
                log.warning("node %s offers a forged snapshot record: %s", client.label, e)
                continue
            found[bytes(snap.id)] = snap
    if not reachable:
        raise PeerUnavailable("no node could be reached")
    return sorted(found.values(), key=lambda s: (s.record.sequence, s.record.created_unix_ns))


def resolve_snapshot(clients: list[NodeClient], archive_id: bytes, spec: str) -> Snapshot:
    """Find a snapshot by id prefix (hex) or 'latest'."""
    snaps = list_verified_snapshots(clients, archive_id)
    if not snaps:
        raise SnapshotNotFound("no snapshot of this archive on the given nodes")
    if spec == "latest":
        return snaps[-1]
    matches = [s for s in snaps if s.id.hex().startswith(spec.lower())]
    if not matches:
        raise SnapshotNotFound(f"no snapshot matches {spec!r}")
    if len(matches) > 1:
        raise SnapshotNotFound(f"{spec!r} is ambiguous; give more digits")
    return matches[0]

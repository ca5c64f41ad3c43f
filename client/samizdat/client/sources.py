"""Where restore and verify get snapshots and chunks from: the `ChunkSource` protocol.

A source is anything that can list signed snapshot records and hand out chunk blobs by id: a
node over gRPC (`RemoteSource`) or a copied node data directory on a local disk
(`samizdat.client.storesource.StoreSource`). Every source is untrusted: callers verify every
record's signature and every blob against its id (`samizdat.client.fetch`), so a seized or
damaged source can withhold data but never make a restorer accept wrong bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from samizdat.core.custody import CustodyState, verify_custody_record
from samizdat.core.errors import (
    PeerUnavailable,
    SamizdatError,
    SignatureError,
    SnapshotNotFound,
)
from samizdat.core.records import Snapshot, verify_restorable, verify_snapshot
from samizdat.rpc.limits import MAX_BATCH_IDS
from samizdat.rpc.remote import NodeClient
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListedSnapshot:
    """A signed record as a source lists it (not yet verified), with the source's claim of
    how many of the snapshot's chunks it holds."""

    signed: pb.SignedSnapshot
    chunks_held: int
    chunks_total: int

    @property
    def claims_complete(self) -> bool:
        return self.chunks_total > 0 and self.chunks_held >= self.chunks_total


class ChunkSource(Protocol):
    """What restore needs from a place that holds chunks. Nothing it returns is trusted."""

    @property
    def label(self) -> str:
        """Short name for messages (node id prefix and address, or a directory)."""
        ...

    @property
    def damage_is_local(self) -> bool:
        """True for a copy on a disk at hand (a store directory): a blob of it that does not
        match its id is damage, not malice, and counts as missing from it only. A remote
        node that serves such bytes is dropped (samizdat.client.fetch)."""
        ...

    def list_snapshots(self, archive_id: bytes) -> list[ListedSnapshot]:
        """Signed records of the archive this source holds. Raises PeerUnavailable."""
        ...

    def custody_records(self) -> list[pb.SignedCustodyRecord]:
        """Custody records the source holds (revocations, certificates), unverified.
        Raises PeerUnavailable."""
        ...

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        """One flag per id: does the source claim to hold it. Raises PeerUnavailable."""
        ...

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """Yield (id, blob) for the requested ids the source holds (at most MAX_BATCH_IDS),
        unverified, in any order; ids it lacks are left out. A local copy yields b"" for a
        blob it holds but cannot read. Raises PeerUnavailable."""
        ...

    def close(self) -> None: ...


class RemoteSource:
    """A node reached over gRPC (TLS pinned to its id, or loopback plaintext)."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client

    @property
    def label(self) -> str:
        return self.client.label

    @property
    def damage_is_local(self) -> bool:
        return False

    def list_snapshots(self, archive_id: bytes) -> list[ListedSnapshot]:
        return [
            ListedSnapshot(item.snapshot, item.chunks_held, item.chunks_total)
            for item in self.client.all_snapshots(archive_id)
        ]

    def custody_records(self) -> list[pb.SignedCustodyRecord]:
        return list(self.client.list_custody_records(0).records)

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        return self.client.has_chunks(list(ids))

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
        if len(ids) > MAX_BATCH_IDS:
            raise ValueError(f"at most {MAX_BATCH_IDS} ids per call")
        for response in self.client.get_chunks(list(ids)):
            for chunk in response.chunks:
                yield chunk.id, chunk.data

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RemoteSource({self.label})"


@dataclass(frozen=True)
class SourceSnapshot:
    """A verified snapshot; per source index, whether that source claims to hold all of its
    chunks (None: it does not list the snapshot) and whether it answered at all."""

    snapshot: Snapshot
    complete: tuple[bool | None, ...]
    reachable: tuple[bool, ...]
    unreachable: tuple[str, ...] = ()


def list_verified_snapshots(
    sources: Sequence[ChunkSource], archive_id: bytes
) -> list[SourceSnapshot]:
    """All snapshots of the archive that any reachable source lists, signatures verified,
    sorted by (sequence, time). Forged records are skipped with a warning, and so are snapshots
    of a writer key that a custody record from any source revokes without keeping them (a
    seized node may still offer what a stolen key signed). Raises PeerUnavailable when no
    source answers."""
    found: dict[bytes, tuple[Snapshot, list[bool | None]]] = {}
    custody = CustodyState()
    reachable = [False] * len(sources)
    why: dict[int, str] = {}
    for index, source in enumerate(sources):
        try:
            listing = source.list_snapshots(archive_id)
        except SamizdatError as e:  # unreachable, or not the node its id pins
            why[index] = str(e)
            continue
        reachable[index] = True
        _learn_custody(source, archive_id, custody)
        for item in listing:
            try:
                snap = verify_restorable(verify_snapshot(item.signed, archive_id))
            except SignatureError as e:
                log.warning("%s offers a forged or unusable snapshot record: %s", source.label, e)
                continue
            entry = found.setdefault(bytes(snap.id), (snap, [None] * len(sources)))
            entry[1][index] = item.claims_complete
    if not any(reachable):
        raise PeerUnavailable("no source could be reached: " + "; ".join(why.values()))
    for snapshot_id, (snap, _) in list(found.items()):
        refusal = custody.snapshot_refusal(snapshot_id, snap.record)
        if refusal:
            log.warning("snapshot %s left out: %s", snap.id.short(), refusal)
            del found[snapshot_id]
    ordered = sorted(
        found.values(), key=lambda t: (t[0].record.sequence, t[0].record.created_unix_ns)
    )
    down = tuple(f"{sources[i].label} ({why[i]})" for i in sorted(why))
    return [SourceSnapshot(snap, tuple(flags), tuple(reachable), down) for snap, flags in ordered]


def _learn_custody(source: ChunkSource, archive_id: bytes, custody: CustodyState) -> None:
    try:
        records = source.custody_records()
    except SamizdatError as e:  # withheld or unsupported: the other sources may have them
        log.info("%s lists no custody records: %s", source.label, e)
        return
    for signed in records:
        try:
            custody.add(verify_custody_record(signed, archive_id))
        except SignatureError as e:
            log.warning("%s offers a forged custody record: %s", source.label, e)


def resolve_snapshot(
    sources: Sequence[ChunkSource], archive_id: bytes, spec: str
) -> SourceSnapshot:
    """Find a snapshot by id prefix (hex) or 'latest' among the verified records."""
    snaps = list_verified_snapshots(sources, archive_id)
    if not snaps:
        raise SnapshotNotFound("no snapshot of this archive on the given sources")
    if spec == "latest":
        return snaps[-1]
    matches = [s for s in snaps if s.snapshot.id.hex().startswith(spec.lower())]
    if not matches:
        raise SnapshotNotFound(f"no snapshot matches {spec!r}")
    if len(matches) > 1:
        raise SnapshotNotFound(f"{spec!r} is ambiguous; give more digits")
    return matches[0]

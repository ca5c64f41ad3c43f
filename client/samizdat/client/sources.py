"""Where restore and verify get snapshots and chunks from: the `ChunkSource` protocol.

A source is a `Peer` (samizdat.core.peer): a node over gRPC (`GrpcPeer`) or a copied node data
directory on a local disk (`LocalPeer.open_copy`). Every source is untrusted: callers verify every
record's signature and every blob against its id (`samizdat.client.fetch`), so a seized or
damaged source can withhold data but never make a restorer accept wrong bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from samizdat.client.listing import ListingVerifier, forged_lines
from samizdat.core.custody import CustodyListing, CustodyState
from samizdat.core.errors import (
    PeerUnavailable,
    SamizdatError,
    SnapshotNotFound,
)
from samizdat.core.ids import ArchiveId
from samizdat.core.peer import Peer, listing_pages
from samizdat.core.records import Snapshot

log = logging.getLogger(__name__)


ChunkSource = Peer
"""Restore and verify read from any Peer (samizdat.core.peer): a node over gRPC
(samizdat.rpc.grpcpeer.GrpcPeer) or a copied store (samizdat.store.localpeer.LocalPeer)."""


@dataclass(frozen=True)
class SourceSnapshot:
    """A verified snapshot; per source index, whether that source claims to hold all of its
    chunks (None: it does not list the snapshot) and whether it answered at all."""

    snapshot: Snapshot
    complete: tuple[bool | None, ...]
    reachable: tuple[bool, ...]
    unreachable: tuple[str, ...] = ()


def list_verified_snapshots(
    sources: Sequence[ChunkSource], archive_id: ArchiveId
) -> list[SourceSnapshot]:
    """All snapshots of the archive that any reachable source lists, verified by the one
    listing (samizdat.client.listing: forged records reported by source and skipped), sorted
    by (sequence, time); snapshots of a writer key that a custody record from any source
    revokes without keeping them are left out (a seized node may still offer what a stolen key
    signed). Raises PeerUnavailable when no source answers."""
    custody = CustodyState()
    listing = ListingVerifier([s.label for s in sources], archive_id, restorable=True)
    why: dict[int, str] = {}
    for index, source in enumerate(sources):
        try:
            for page in listing_pages(source, archive_id):
                listing.take(index, page)  # verified as it comes, then dropped
        except SamizdatError as e:  # unreachable, or not the node its id pins
            why[index] = str(e)
            listing.failed(index)
            continue
        _learn_custody(source, archive_id, custody)
    if len(why) == len(sources):
        raise PeerUnavailable("no source could be reached: " + "; ".join(why.values()))
    verified = listing.result(custody)
    for line in forged_lines(verified):
        log.warning("%s", line)
    for snap, refusal in verified.refused:
        log.warning("snapshot %s left out: %s", snap.id.short(), refusal)
    reachable = tuple(listing.answered(i) for i in range(len(sources)))
    down = tuple(f"{sources[i].label} ({why[i]})" for i in sorted(why))
    return [
        SourceSnapshot(
            snap,
            tuple(
                None if item is None else item.claims_complete
                for item in verified.listed_by[bytes(snap.id)]
            ),
            reachable,
            down,
        )
        for snap in verified.ordered()
    ]


def _learn_custody(source: ChunkSource, archive_id: ArchiveId, custody: CustodyState) -> None:
    """Take every custody record of the archive that `source` lists and that verifies: every
    page (the newest revocation is the last one listed), within `CustodyListing`'s bounds. A
    source past them, or failing, gives what verified before (the others may have the rest)."""
    listing = CustodyListing(source.label, bytes(archive_id))
    try:
        while not listing.done:
            listing.take(source.custody_page(listing.after))
    except SamizdatError as e:  # withheld, unsupported or endless: the others may have them
        log.warning("%s: custody records not all read: %s", source.label, e)
    if listing.junk:
        log.warning(
            "%s offers %d custody record(s) not signed by the archive key",
            source.label,
            listing.junk,
        )
    for rec in listing.records:
        custody.add(rec)


def resolve_snapshot(
    sources: Sequence[ChunkSource], archive_id: ArchiveId, spec: str
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

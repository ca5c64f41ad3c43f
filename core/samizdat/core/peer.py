"""The `Peer` protocol: what a place that holds chunks and signed records offers, transport-free.

Two implementations: a node over gRPC (`samizdat.rpc.grpcpeer.GrpcPeer`) and a store on a local
disk (`samizdat.store.localpeer.LocalPeer`). Restore, push, audit and the node's replication
depend on this protocol only; one contract test suite runs against both (tests/peer/).

Nothing a peer returns is trusted: callers verify every record's signature and every blob
against its id. The dataclasses below carry no wire messages; a signed record travels as the
`SignedSnapshot` / `SignedCustodyRecord` of the record format (docs/format.md, "Snapshot
records"), which is what the archive key signs, not an RPC message.

Errors: PeerUnavailable (unreachable, stalled, closed), PeerMisbehaved (a malformed answer),
UsageError (a listing position beyond the peer's last one), and the refusals of PutSnapshot
(SignatureError, NotHosted, Revoked, IncompleteSnapshot).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import blake3

from samizdat.core.errors import PeerMisbehaved, PeerUnavailable
from samizdat.core.ids import ID_SIZE, ArchiveId
from samizdat.v1 import records_pb2 as pb

# Records in one listing page at most (a peer may send fewer; never more than asked).
LIST_PAGE_RECORDS = 1000
# One whole listing of one peer, at most (`Listing`): an honest node lists each record once,
# 1,000 a page, and pages without records only after scanning thousands of other archives'
# records; so these bounds leave room for ~90,000 records of a 100 GB archive (ten years of
# hourly pushes) among millions of other archives' records, and stop a peer whose listing
# never ends (endless pages, records repeated at new positions) from holding a restore,
# `snapshots` or `status` for ever or filling its memory.
MAX_LISTING_PAGES = 1000
MAX_LISTING_RECORDS = 100_000
MAX_LISTING_BYTES = 64 * 1024 * 1024
# ... and at most this long: a peer answering each page just before its call's deadline
# would otherwise hold a caller for MAX_LISTING_PAGES deadlines (a 100 GB archive's ~90,000
# records are ~64 MiB: 300 s leaves it ~220 KB/s).
MAX_LISTING_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ListedSnapshot:
    """A signed record as a peer lists it (not yet verified), with the peer's claim of how
    many of the snapshot's chunks it holds, and the record's position in its listing."""

    signed: pb.SignedSnapshot
    chunks_held: int
    chunks_total: int
    position: int = 0
    snapshot_id: bytes = b""  # as the peer states it (BLAKE3 of signed.record when honest)
    bytes_total: int = 0

    @property
    def claims_complete(self) -> bool:
        return self.chunks_total > 0 and self.chunks_held >= self.chunks_total


@dataclass(frozen=True)
class SnapshotPage:
    """One page of a peer's listing after a position: records at increasing positions up to
    `last_position`; `more` when the listing goes on after it."""

    snapshots: Sequence[ListedSnapshot]
    last_position: int
    more: bool = False
    nbytes: int = 0  # the page's size as received (0: not from the wire), unknown fields too


@dataclass(frozen=True)
class CustodyPage:
    """Custody records stored at a peer after a position (unverified), up to last_position;
    `more` when its log goes on after it."""

    records: Sequence[pb.SignedCustodyRecord]
    last_position: int
    more: bool = False
    nbytes: int = 0  # the page's size as received (0: not from the wire), unknown fields too


Blob: TypeAlias = bytes | memoryview
"""A chunk's bytes as a peer delivers them: `bytes`, or a read-only view into the immutable
`bytes` of the message they came in (no copy; samizdat.rpc.wire.part_from_bytes)."""


@dataclass(frozen=True)
class ChunkPart:
    """One part of a GetChunks answer: (id, blob) pairs, unverified, and ids reported missing."""

    chunks: Sequence[tuple[bytes, Blob]]
    missing: Sequence[bytes] = ()


@dataclass(frozen=True)
class PutChunksResult:
    received: int
    stored: int
    bytes_stored: int


@dataclass(frozen=True)
class PutSnapshotResult:
    snapshot_id: bytes
    already_present: bool


class Peer(Protocol):
    """A node, or a store on disk, as seen by restore, push, audit and replication."""

    @property
    def label(self) -> str:
        """Short name for messages (node id prefix and address, or a directory)."""
        ...

    @property
    def damage_is_local(self) -> bool:
        """True for a copy on a disk at hand: a blob of it that does not match its id is
        damage, not malice, and counts as missing from it only."""
        ...

    def list_page(
        self, archive_id: ArchiveId | None, after: int, max_count: int = 0
    ) -> SnapshotPage:
        """Records of `archive_id` (None: every archive listed) stored after position `after`,
        at most `max_count` (0: LIST_PAGE_RECORDS). Raises UsageError for a position beyond
        the peer's last one, PeerUnavailable."""
        ...

    def custody_page(self, after: int) -> CustodyPage:
        """Custody records stored after position `after`. Raises PeerUnavailable."""
        ...

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        """One flag per id: does the peer claim to hold it. Raises PeerUnavailable,
        PeerMisbehaved (a wrong number of flags).

        Ids here and in `get_chunks` are 32-byte chunk ids: a ChunkId where the caller holds
        one (the puller's, from chunk lists), else the bytes of a tree's ChunkRef as protobuf
        gives them (restore: a ChunkId made of each would be a second copy per chunk)."""
        ...

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        """The chunks of `ids` (at most MAX_BATCH_IDS) the peer holds, unverified, in any
        order, in parts; ids it lacks may be reported missing. A local copy gives b"" for a
        blob it holds but cannot read. Raises PeerUnavailable (also on a stalled stream)."""
        ...

    def put_chunks(
        self, archive_id: ArchiveId, batches: Iterable[Sequence[tuple[bytes, bytes]]]
    ) -> PutChunksResult:
        """Store (id, blob) pairs, each checked against its id. Raises ChunkCorrupt,
        PermissionDenied, OutOfSpace, PeerUnavailable."""
        ...

    def put_snapshot(self, signed: pb.SignedSnapshot) -> PutSnapshotResult:
        """Verify and store a signed record whose chunks are all held. Raises SignatureError,
        NotHosted, Revoked, IncompleteSnapshot, PermissionDenied, PeerUnavailable."""
        ...

    def notify_snapshots(self, archive_id: ArchiveId) -> None:
        """Hint that new records of `archive_id` exist (best effort)."""
        ...

    def close(self) -> None: ...


def check_page(page: SnapshotPage, after: int, asked: int, label: str) -> None:
    """Raise PeerMisbehaved unless a listing page is well-formed: at most `asked` records, at
    positions increasing from after `after` up to last_position, which does not go back, and
    advances when `more` is set."""
    if len(page.snapshots) > asked:
        raise PeerMisbehaved(f"node {label} listed {len(page.snapshots)} records for {asked}")
    previous = after
    for item in page.snapshots:
        if not previous < item.position <= page.last_position:
            raise PeerMisbehaved(
                f"node {label} listed a record at position {item.position} after {previous} "
                f"in a page ending at {page.last_position}"
            )
        previous = item.position
    if page.last_position < after or (page.more and page.last_position == after):
        raise PeerMisbehaved(
            f"node {label} answered a listing after position {after} with one ending at "
            f"{page.last_position}{' with more to come' if page.more else ''}"
        )


class Listing:
    """One whole listing of one peer, checked page by page: each page by `check_page`, and
    the whole: no record listed twice (under any position) or under an id that is not 32
    bytes, at most MAX_LISTING_PAGES pages, MAX_LISTING_RECORDS records and MAX_LISTING_BYTES
    (of pages as received, or of records) (else PeerMisbehaved), in at most
    MAX_LISTING_SECONDS (else PeerUnavailable). So no peer can keep a caller listing for ever
    or fill its memory."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._deadline = time.monotonic() + MAX_LISTING_SECONDS
        self.after = 0  # the position to ask the next page after
        self.done = False
        self._pages = 0
        self._records = 0
        self._bytes = 0
        self._seen: set[bytes] = set()

    def take(self, page: SnapshotPage) -> None:
        """Check the next page (asked after `self.after`); advance `after`, or set `done`."""
        check_page(page, self.after, LIST_PAGE_RECORDS, self.label)
        self._pages += 1
        self._records += len(page.snapshots)
        records = 0
        for item in page.snapshots:
            # the id the peer states (hashed here only if it states none): one listed under
            # another id than its own is the caller's to refuse (samizdat.client.listing)
            if item.snapshot_id and len(item.snapshot_id) != ID_SIZE:
                raise PeerMisbehaved(
                    f"node {self.label} listed a record under an id of "
                    f"{len(item.snapshot_id)} bytes"
                )
            record_id = item.snapshot_id or blake3.blake3(item.signed.record).digest()
            if record_id in self._seen:
                raise PeerMisbehaved(
                    f"node {self.label} listed record {record_id.hex()[:16]} twice "
                    f"(again at position {item.position})"
                )
            self._seen.add(record_id)
            records += item.signed.ByteSize()
        self._bytes += max(page.nbytes, records)
        if (
            self._bytes > MAX_LISTING_BYTES
            or self._records > MAX_LISTING_RECORDS
            or (page.more and self._pages >= MAX_LISTING_PAGES)
        ):
            raise PeerMisbehaved(
                f"node {self.label} lists more than {MAX_LISTING_PAGES} pages, "
                f"{MAX_LISTING_RECORDS} records or {MAX_LISTING_BYTES >> 20} MiB: a listing "
                "that does not end"
            )
        if page.more and time.monotonic() > self._deadline:
            raise PeerUnavailable(
                f"node {self.label} took more than {MAX_LISTING_SECONDS:.0f} s to list its "
                "records: given up"
            )
        self.after = page.last_position
        self.done = not page.more


def listing_pages(peer: Peer, archive_id: ArchiveId | None) -> Iterator[Sequence[ListedSnapshot]]:
    """The records the peer lists (of `archive_id`, or of every archive), one checked page at
    a time, so that a caller keeps only what it needs of each (samizdat.client.listing).
    Raises PeerMisbehaved, when the page that breaks a bound arrives, for a listing `Listing`
    refuses."""
    listing = Listing(peer.label)
    while not listing.done:
        page = peer.list_page(archive_id, listing.after, LIST_PAGE_RECORDS)
        listing.take(page)
        yield page.snapshots


def all_snapshots(peer: Peer, archive_id: ArchiveId | None) -> list[ListedSnapshot]:
    """Every record the peer lists (of `archive_id`, or of every archive), page after page.
    Raises PeerMisbehaved for a listing `Listing` refuses."""
    return [item for page in listing_pages(peer, archive_id) for item in page]


def iter_blobs(peer: Peer, ids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """The (id, blob) pairs of `peer.get_chunks(ids)`, unverified (ids missing left out), each
    blob as `bytes` (a view is copied)."""
    for part in peer.get_chunks(ids):
        for chunk_id, blob in part.chunks:
            yield chunk_id, blob if isinstance(blob, bytes) else bytes(blob)

"""The one listing of verified snapshots: `samizdat snapshots`, restore's sources and status.

Every source's listing is checked record by record, page by page as it arrives
(`ListingVerifier`; the page is then dropped): the record must hash to the id the source lists
it under and carry a valid signature (and, where asked, name a tree to restore). A record that
fails is *forged*: it is counted for the source that offered it (the first FORGED_SHOWN of
each source kept with their reasons), for the caller to report (restore logs it, `snapshots`
prints it, status counts it per node), and skipped; the other records and the other sources
are used as if it had not been listed.
Snapshots a custody record revokes (a stolen writer key, not kept by its revocation) are left
out.

Each distinct signed record that verifies is verified once per call, by its bytes (record,
signature and certificate): sources listing the very same bytes share the verdict, so a
cluster of N nodes costs one Ed25519 check per record, not N. A source whose copy differs in
any byte (an altered signature or certificate beside an honest record) is checked on its own
and reported as forged although another source listed the record honestly. Records that fail
are not remembered (a lying source's junk costs no memory beyond its count). Custody records
likewise (`verify_custody_records`). What is kept, and its bounds: docs/status.md, "Memory".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from samizdat.core.custody import CustodyState, verify_custody_record
from samizdat.core.errors import SignatureError
from samizdat.core.ids import ArchiveId, SnapshotId, short_hex
from samizdat.core.peer import ListedSnapshot
from samizdat.core.records import Snapshot, verify_restorable, verify_snapshot
from samizdat.v1 import records_pb2 as pb


@dataclass(frozen=True)
class Forged:
    """A record a source listed that failed verification."""

    source: int  # index into the listings
    label: str
    reason: str

    def __str__(self) -> str:
        return f"{self.label} offers a forged or unusable snapshot record, skipped: {self.reason}"


# Forged records named one by one per source (the only ones kept); the rest of a source's are
# counted (a lying node may list up to samizdat.core.peer.MAX_LISTING_RECORDS of them).
FORGED_SHOWN = 3


def forged_lines(verified: VerifiedListing, line: Callable[[Forged], str] = str) -> list[str]:
    """The lines reporting the forged records: `line` of each of the first FORGED_SHOWN of a
    source, then one line per source counting the others."""
    out = [line(item) for item in verified.forged]
    shown = Counter(item.source for item in verified.forged)
    out += [
        f"{verified.labels[index]} offers {n - shown[index]} more forged or unusable records, "
        "skipped"
        for index, n in enumerate(verified.forged_count)
        if n > shown[index]
    ]
    return out


@dataclass
class VerifiedListing:
    """Verified snapshots by id, in order of first listing, with each source's entry for it
    (None: that source does not list it), and the forged records found: the first
    FORGED_SHOWN of each source, and how many each listed."""

    labels: list[str] = field(default_factory=list)
    snapshots: dict[bytes, Snapshot] = field(default_factory=dict)
    listed_by: dict[bytes, list[ListedSnapshot | None]] = field(default_factory=dict)
    forged: list[Forged] = field(default_factory=list)
    forged_count: list[int] = field(default_factory=list)  # per source
    refused: list[tuple[Snapshot, str]] = field(default_factory=list)  # by custody, and why

    def ordered(self) -> list[Snapshot]:
        """The snapshots sorted by (archive, sequence, creation time)."""
        return sorted(
            self.snapshots.values(),
            key=lambda s: (s.record.archive_id, s.record.sequence, s.record.created_unix_ns),
        )


class _Verdicts:
    """Verdicts on signed snapshot records: a record's id and the verified Snapshot, or why it
    fails. A record that verifies is remembered by its bytes (record, signature, certificate)
    and not checked again; one that fails is checked at every listing of it, so that a lying
    source's junk costs what it did before and no memory beyond its count. `archive_id` and
    `restorable` as for `verify_listings`. The Snapshot kept holds a copy of the signed
    record's known fields, never the page it came in (a protobuf sub-message keeps its whole
    message alive: one record could keep a page of junk)."""

    def __init__(self, archive_id: ArchiveId | None = None, restorable: bool = False) -> None:
        self.archive_id = archive_id
        self.restorable = restorable
        self._verified: dict[tuple[bytes, bytes, bytes], Snapshot] = {}

    def of(self, signed: pb.SignedSnapshot) -> tuple[bytes, Snapshot | str]:
        cert = signed.certificate.SerializeToString() if signed.HasField("certificate") else b""
        key = (signed.record, signed.signature, cert)
        snap = self._verified.get(key)
        if snap is not None:
            return bytes(snap.id), snap
        try:
            snap = verify_snapshot(signed, self.archive_id)
            if self.restorable:
                verify_restorable(snap)
        except SignatureError as e:
            return bytes(SnapshotId.of(signed.record)), str(e)
        alone = pb.SignedSnapshot(record=key[0], signature=key[1])
        if cert:
            alone.certificate.CopyFrom(signed.certificate)
        snap = Snapshot(snap.id, alone, snap.record)
        self._verified[key] = snap
        return bytes(snap.id), snap


class ListingVerifier:
    """The one listing, verified as the sources' pages arrive (`take`, from any thread): each
    page can be dropped once taken. What is kept is what the answer needs: each distinct
    verified record once (`_Verdicts`), per source an entry (claims and position) for each
    record it lists that verifies, and per source the first FORGED_SHOWN forged records and a
    count. So a source's junk (forged, mislabelled or unusable records) costs a count, and a
    source's listing costs at most one page at a time beyond its verified entries (at most
    samizdat.core.peer.MAX_LISTING_RECORDS of them: `Listing` refuses more)."""

    def __init__(
        self,
        labels: Sequence[str],
        archive_id: ArchiveId | None = None,
        *,
        restorable: bool = False,
    ) -> None:
        self._verdicts = _Verdicts(archive_id, restorable)
        self._lock = threading.Lock()
        self._out = VerifiedListing(labels=list(labels), forged_count=[0] * len(labels))
        self._answered = [True] * len(labels)

    def take(self, index: int, items: Iterable[ListedSnapshot]) -> None:
        """Verify the records source `index` listed (one page of its listing, or all of it)."""
        out = self._out
        label = out.labels[index]
        count = len(out.labels)
        with self._lock:
            for item in items:
                snapshot_id, verdict = self._verdicts.of(item.signed)
                if item.snapshot_id and item.snapshot_id != snapshot_id:
                    verdict = (
                        f"record {short_hex(snapshot_id)} listed under another id "
                        f"{short_hex(item.snapshot_id)}"
                    )
                if isinstance(verdict, str):
                    out.forged_count[index] += 1
                    if out.forged_count[index] <= FORGED_SHOWN:
                        out.forged.append(Forged(index, label, verdict))
                    continue
                if snapshot_id not in out.snapshots:
                    out.snapshots[snapshot_id] = verdict
                    out.listed_by[snapshot_id] = [None] * count
                # the shared copy of the record, not the page's
                out.listed_by[snapshot_id][index] = replace(
                    item, signed=verdict.signed, snapshot_id=snapshot_id
                )

    def failed(self, index: int) -> None:
        """Source `index` did not answer, or its listing was refused midway: it counts as not
        having answered (what it listed is forgotten, snapshots only it listed too)."""
        out = self._out
        with self._lock:
            self._answered[index] = False
            out.forged_count[index] = 0
            out.forged = [f for f in out.forged if f.source != index]
            for snapshot_id, entries in list(out.listed_by.items()):
                if entries[index] is not None:
                    entries[index] = None
                    if not any(entries):
                        del out.listed_by[snapshot_id]
                        del out.snapshots[snapshot_id]

    def answered(self, index: int) -> bool:
        return self._answered[index]

    def result(self, custody: CustodyState | None = None) -> VerifiedListing:
        """The verified listing; `custody`: snapshots it refuses are left out (listed in
        `refused`). Call once every source's listing is taken."""
        out = self._out
        if custody is not None:
            for snapshot_id, snap in list(out.snapshots.items()):
                refusal = custody.snapshot_refusal(snapshot_id, snap.record)
                if refusal:
                    out.refused.append((snap, refusal))
                    del out.snapshots[snapshot_id]
                    del out.listed_by[snapshot_id]
        return out


def verify_listings(
    listings: Sequence[tuple[str, Iterable[ListedSnapshot] | None]],
    archive_id: ArchiveId | None = None,
    *,
    restorable: bool = False,
    custody: CustodyState | None = None,
) -> VerifiedListing:
    """Verify the (label, listing) of every source (None: the source did not answer): a
    `ListingVerifier` given each whole listing.

    `archive_id`: only records of this archive are accepted (None: any archive). `restorable`:
    a record that names no tree counts as forged too. `custody`: snapshots it refuses are
    left out (listed in `refused`). Each distinct signed record (by its bytes) is verified
    once, however many sources list it.
    """
    verifier = ListingVerifier([label for label, _ in listings], archive_id, restorable=restorable)
    for index, (_, listing) in enumerate(listings):
        if listing is None:
            verifier.failed(index)
        else:
            verifier.take(index, listing)
    return verifier.result(custody)


def verify_custody_records(
    sources: Sequence[Sequence[pb.SignedCustodyRecord]],
) -> tuple[CustodyState, list[int]]:
    """Verify the custody records every source lists, each distinct signed record that
    verifies (by its bytes) once: the verified ones gathered in a CustodyState, and how many
    records that fail verification each source listed (each failing one checked every time,
    as `verify_listings` does)."""
    custody = CustodyState()
    forged = [0] * len(sources)
    verified: set[bytes] = set()
    for index, records in enumerate(sources):
        for signed in records:
            raw = signed.SerializeToString()
            if raw in verified:
                continue
            try:
                custody.add(verify_custody_record(signed))
            except SignatureError:
                forged[index] += 1
                continue
            verified.add(raw)
    return custody, forged

"""The one listing of verified snapshots: `samizdat snapshots`, restore's sources and status.

Every source's listing is checked record by record: the record must hash to the id the source
lists it under and carry a valid signature (and, where asked, name a tree to restore). A record
that fails is *forged*: it is returned with the name of the source that offered it, for the
caller to report (restore logs it, `snapshots` prints it, status counts it per node), and
skipped; the other records and the other sources are used as if it had not been listed.
Snapshots a custody record revokes (a stolen writer key, not kept by its revocation) are left
out.

Each distinct signed record that verifies is verified once per call, by its bytes (record,
signature and certificate): sources listing the very same bytes share the verdict, so a
cluster of N nodes costs one Ed25519 check per record, not N. A source whose copy differs in
any byte (an altered signature or certificate beside an honest record) is checked on its own
and reported as forged although another source listed the record honestly. Records that fail
are not remembered (a lying source's junk costs no memory beyond its report). Custody records
likewise (`verify_custody_records`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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


# Forged records named one by one per source; the rest of a source's are counted in one line
# (a lying node may list up to samizdat.core.peer.MAX_LISTING_RECORDS of them).
FORGED_SHOWN = 3


def forged_lines(forged: Sequence[Forged], line: Callable[[Forged], str] = str) -> list[str]:
    """The lines reporting `forged`: `line` of each of the first FORGED_SHOWN of a source,
    then one line per source counting the others."""
    out: list[str] = []
    hidden: dict[str, int] = {}
    shown: dict[str, int] = {}
    for item in forged:
        shown[item.label] = shown.get(item.label, 0) + 1
        if shown[item.label] <= FORGED_SHOWN:
            out.append(line(item))
        else:
            hidden[item.label] = hidden.get(item.label, 0) + 1
    out += [
        f"{label} offers {n} more forged or unusable records, skipped"
        for label, n in hidden.items()
    ]
    return out


@dataclass
class VerifiedListing:
    """Verified snapshots by id, in order of first listing, with each source's entry for it
    (None: that source does not list it), and the forged records found."""

    snapshots: dict[bytes, Snapshot] = field(default_factory=dict)
    listed_by: dict[bytes, list[ListedSnapshot | None]] = field(default_factory=dict)
    forged: list[Forged] = field(default_factory=list)
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
    source's junk costs what it did before and no memory beyond its Forged entry. `archive_id`
    and `restorable` as for `verify_listings`."""

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
        self._verified[key] = snap
        return bytes(snap.id), snap


def verify_listings(
    listings: Sequence[tuple[str, Sequence[ListedSnapshot] | None]],
    archive_id: ArchiveId | None = None,
    *,
    restorable: bool = False,
    custody: CustodyState | None = None,
) -> VerifiedListing:
    """Verify the (label, listing) of every source (None: the source did not answer).

    `archive_id`: only records of this archive are accepted (None: any archive). `restorable`:
    a record that names no tree counts as forged too. `custody`: snapshots it refuses are
    left out (listed in `refused`). Each distinct signed record (by its bytes) is verified
    once, however many sources list it.
    """
    verdicts = _Verdicts(archive_id, restorable)
    out = VerifiedListing()
    count = len(listings)
    for index, (label, listing) in enumerate(listings):
        for item in listing or ():
            snapshot_id, verdict = verdicts.of(item.signed)
            if item.snapshot_id and item.snapshot_id != snapshot_id:
                verdict = (
                    f"record {short_hex(snapshot_id)} listed under another id "
                    f"{short_hex(item.snapshot_id)}"
                )
            if isinstance(verdict, str):
                out.forged.append(Forged(index, label, verdict))
                continue
            if snapshot_id not in out.snapshots:
                out.snapshots[snapshot_id] = verdict
                out.listed_by[snapshot_id] = [None] * count
            out.listed_by[snapshot_id][index] = item
    if custody is not None:
        for snapshot_id, snap in list(out.snapshots.items()):
            refusal = custody.snapshot_refusal(snapshot_id, snap.record)
            if refusal:
                out.refused.append((snap, refusal))
                del out.snapshots[snapshot_id]
                del out.listed_by[snapshot_id]
    return out


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

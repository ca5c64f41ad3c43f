"""The one listing of verified snapshots: `samizdat snapshots`, restore's sources and status.

Every source's listing is checked record by record: the record must hash to the id the source
lists it under and carry a valid signature (and, where asked, name a tree to restore). A record
that fails is *forged*: it is returned with the name of the source that offered it, for the
caller to report (restore logs it, `snapshots` prints it, status counts it per node), and
skipped; the other records and the other sources are used as if it had not been listed.
Snapshots a custody record revokes (a stolen writer key, not kept by its revocation) are left
out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from samizdat.core.custody import CustodyState
from samizdat.core.errors import SignatureError
from samizdat.core.ids import ArchiveId, SnapshotId, short_hex
from samizdat.core.peer import ListedSnapshot
from samizdat.core.records import Snapshot, verify_restorable, verify_snapshot


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
    left out (listed in `refused`). Each record's signature is checked once, however many
    sources list it.
    """
    out = VerifiedListing()
    count = len(listings)
    for index, (label, listing) in enumerate(listings):
        for item in listing or ():
            snapshot_id = bytes(SnapshotId.of(item.signed.record))
            try:
                if item.snapshot_id and item.snapshot_id != snapshot_id:
                    raise SignatureError(
                        f"record {short_hex(snapshot_id)} listed under another id "
                        f"{short_hex(item.snapshot_id)}"
                    )
                if snapshot_id not in out.snapshots:
                    snap = verify_snapshot(item.signed, archive_id)
                    if restorable:
                        verify_restorable(snap)
                    out.snapshots[snapshot_id] = snap
                    out.listed_by[snapshot_id] = [None] * count
            except SignatureError as e:
                out.forged.append(Forged(index, label, str(e)))
                continue
            out.listed_by[snapshot_id][index] = item
    if custody is not None:
        for snapshot_id, snap in list(out.snapshots.items()):
            refusal = custody.snapshot_refusal(snapshot_id, snap.record)
            if refusal:
                out.refused.append((snap, refusal))
                del out.snapshots[snapshot_id]
                del out.listed_by[snapshot_id]
    return out

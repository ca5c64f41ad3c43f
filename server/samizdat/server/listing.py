"""What the node's listings need of each stored snapshot record, parsed once per process.

GetStatus, the metrics endpoint and ListSnapshots walk every stored record; each needs the
record's archive id, its writer key (for revocations), its id and its size, not the record.
A record never changes at its position (the snapshot log is append-only: nothing rewrites or
deletes a stored record), so its facts are parsed once, the first time a walk reaches it, and
kept; a walk then parses only the records stored since the last one. What does change is
looked up by the caller at every walk: hosted archives (node.toml), revocations (custody
records) and the per-snapshot counters (the store's snapshot state).

Memory: about 200 bytes a record for the first CACHED_RECORDS records (~20 MB at most);
records beyond them are parsed at every walk, as all of them were before.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

CACHED_RECORDS = 100_000


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """One stored record as the listings see it."""

    position: int
    snapshot_id: bytes
    archive_id: bytes
    writer_key: bytes  # empty: signed by the archive key itself
    size: int  # bytes of the stored SignedSnapshot


class RecordIndex:
    """The facts of every record in a store's snapshot log, read from the store once each.
    Safe to use from several threads."""

    def __init__(self, store: ChunkStore, limit: int = CACHED_RECORDS) -> None:
        self._store = store
        self._limit = limit
        self._facts: list[RecordFacts] = []
        self._positions: list[int] = []  # of _facts, increasing (for bisect)
        self._read_upto = 0  # the position of the last record read into _facts
        self._shared: dict[bytes, bytes] = {}  # one bytes object per archive id / writer key
        self._lock = threading.Lock()

    def after(self, after: int) -> Iterator[RecordFacts]:
        """Facts of every record stored after position `after`, in position order."""
        with self._lock:
            self._catch_up()
            kept = self._facts[bisect_right(self._positions, after) :]
            read_upto = self._read_upto
        yield from kept
        # Records beyond the cache's limit, or stored since the catch-up: parsed, not kept.
        for position, snapshot_id, signed in self._store.iter_snapshot_log(max(after, read_upto)):
            yield self._parse(position, snapshot_id, signed)

    def _catch_up(self) -> None:
        if len(self._facts) >= self._limit:
            return
        for position, snapshot_id, signed in self._store.iter_snapshot_log(self._read_upto):
            self._facts.append(self._parse(position, snapshot_id, signed))
            self._positions.append(position)
            self._read_upto = position
            if len(self._facts) >= self._limit:
                return

    def _parse(self, position: int, snapshot_id: bytes, signed: bytes) -> RecordFacts:
        record = pb.SnapshotRecord.FromString(pb.SignedSnapshot.FromString(signed).record)
        return RecordFacts(
            position,
            bytes(snapshot_id),
            self._shared.setdefault(record.archive_id, record.archive_id),
            self._shared.setdefault(record.writer_key, record.writer_key),
            len(signed),
        )

"""The running node: config (reloadable), identity, store, metrics and background workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from samizdat.core.errors import UsageError
from samizdat.core.ids import ArchiveId
from samizdat.core.peer import ListedSnapshot, SnapshotPage
from samizdat.core.records import MAX_SIGNED_RECORD_BYTES, Snapshot, canonical_snapshot
from samizdat.rpc.limits import LIST_PAGE_BYTES, LIST_PAGE_RECORDS, LIST_PAGE_SCAN
from samizdat.server.config import NodeConfig, PeerConfig, config_path, load_config
from samizdat.server.custody import NodeCustody
from samizdat.server.identity import NodeIdentity, load_identity
from samizdat.server.listing import RecordFacts, RecordIndex
from samizdat.server.metrics import NodeMetrics
from samizdat.server.reports import PeerReport, ScrubReport, SnapshotReport
from samizdat.server.shared import SharedBuild
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)

ListedRecord = tuple[int, ListedSnapshot | None, int]


class ReplicationWorker(Protocol):
    """What the node asks of its replication loop (samizdat.server.replication.Replicator)."""

    thread: threading.Thread
    round_in_progress: bool
    last_round_finished: float  # time.monotonic(); 0: none yet
    last_round_finished_unix: float

    def hint_peers(self, archive_id: ArchiveId) -> None: ...

    def peer_status(self) -> list[PeerReport]: ...

    def unrepairable_count(self) -> int: ...


class ScrubWorker(Protocol):
    """What the node asks of its scrubber (samizdat.server.scrub.Scrubber)."""

    def status(self) -> ScrubReport: ...


class NodeRuntime:
    """Everything a node's services and workers share. Config is swapped whole on reload."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config: NodeConfig = load_config(directory)
        self._config_mtime = self._mtime()
        self.identity: NodeIdentity = load_identity(directory)
        self.node_id = self.identity.node_id
        self.store = ChunkStore(self.config.data_dir, pack_mb=self.config.pack_mb)
        self.custody = NodeCustody(self.store, lambda: self.config.hosted_archives)
        self.records = RecordIndex(self.store)
        self.metrics = NodeMetrics()
        self.metrics.watch(self)
        self._counters = SharedBuild(
            self.records_key, self._snapshot_counters, self.metrics.built("snapshot_counters")
        )
        self.started = time.monotonic()
        self.serving = threading.Event()  # set while the gRPC server is up
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.workers: list[threading.Thread] = []
        # Set by samizdat.server.workers when the workers start (they depend on this runtime,
        # not it on them: these protocols are all it knows of them).
        self.replicator: ReplicationWorker | None = None
        self.scrubber: ScrubWorker | None = None

    def _mtime(self) -> float:
        try:
            return config_path(self.directory).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def maybe_reload(self) -> None:
        """Reload node.toml if it changed on disk since it was last read."""
        if self._mtime() != self._config_mtime:
            self.reload()

    def reload(self) -> None:
        """Re-read node.toml; on error keep the old config and log why."""
        self._config_mtime = self._mtime()
        try:
            self.config = load_config(self.directory)
        except Exception as e:  # keep serving with the previous config
            log.error("config reload refused: %s", e)
            return
        log.info(
            "config reloaded: %d peers, %d revoked, %d hosted archives",
            len(self.config.peers),
            len(self.config.revoked),
            len(self.config.hosted_archives),
        )
        self.wake.set()

    def wake_replication(self) -> None:
        self.wake.set()

    def revoked_nodes(self) -> frozenset[str]:
        """Node ids revoked in node.toml or by a custody record of a hosted archive."""
        return self.config.revoked | self.custody.revoked_nodes()

    def peers(self) -> list[PeerConfig]:
        """The configured peers that are not revoked."""
        revoked = self.custody.revoked_nodes()
        return [p for p in self.config.peers if p.node_id not in revoked]

    def custody_changed(self, archive_id: ArchiveId) -> None:
        """A custodian handed this node a new custody record: hint peers so they pull it."""
        if self.replicator is not None:
            self.replicator.hint_peers(archive_id)

    def snapshot_stored(self, snap: Snapshot) -> None:
        """A new snapshot is complete here: hint peers so they pull early."""
        if self.replicator is not None:
            self.replicator.hint_peers(snap.archive_id)

    def _listed(self, archive_id: bytes, after: int) -> Iterator[tuple[RecordFacts, bool]]:
        """Every record stored after position `after`, in position order, and whether it is
        listed: of a hosted archive (and of `archive_id` if given), not by a writer revoked
        since (unless its revocation keeps it). Parses no record it has parsed before."""
        hosted = self.config.hosted_archives
        for facts in self.records.after(after):
            listed = (
                facts.size <= MAX_SIGNED_RECORD_BYTES  # stored before the bound: never listed
                and facts.archive_id in hosted
                and (not archive_id or facts.archive_id == archive_id)
                and not (
                    facts.writer_key  # else signed by the archive key: never refused
                    and self.custody.writer_refusal(
                        facts.snapshot_id, facts.archive_id, facts.writer_key
                    )
                )
            )
            yield facts, listed

    def iter_listed(self, archive_id: bytes = b"", after: int = 0) -> Iterator[ListedRecord]:
        """Every record stored after position `after`, in position order: (position, the
        listing entry or None when it is not listed (see `_listed`), its size)."""
        for facts, listed in self._listed(archive_id, after):
            signed = self.store.get_snapshot(facts.snapshot_id) if listed else None
            if signed is None:
                yield facts.position, None, facts.size
                continue
            held, total, nbytes = self.store.snapshot_state(facts.snapshot_id)
            item = ListedSnapshot(
                canonical_snapshot(pb.SignedSnapshot.FromString(signed)),  # padded before R25
                held,
                total,
                facts.position,
                facts.snapshot_id,
                nbytes,
            )
            yield facts.position, item, facts.size

    def records_key(self) -> tuple[int, int, NodeConfig]:
        """What the listing of records depends on: the store's writes of records and their
        counters, the custody records in effect (counted once taken into account, after
        their write) and the config (hosted archives): equal keys, equal listing."""
        return self.store.records_generation, len(self.custody.state), self.config

    def snapshot_counters(self) -> Sequence[SnapshotReport]:
        """Every listed record's id, archive, position and counters (GetStatus sends them
        without the record: ~60 bytes each, so a status answer holds ~65,000 of them). Built
        once per change of `records_key` and shared by every caller (GetStatus, scrapes):
        samizdat.server.shared; the caller must not change it."""
        return self._counters.get()

    def _snapshot_counters(self) -> list[SnapshotReport]:
        """Reads only the counters of each record, once records are parsed
        (samizdat.server.listing)."""
        listed = [facts for facts, listed in self._listed(b"", 0) if listed]
        states = self.store.snapshot_states()  # read after: a listed record's state is stored
        return [
            SnapshotReport(
                f.snapshot_id, f.archive_id, f.position, *states.get(f.snapshot_id, (0, 0, 0))
            )
            for f in listed
        ]

    def list_snapshots(self, archive_id: bytes, after: int, max_count: int = 0) -> SnapshotPage:
        """One page of the listing after position `after` (docs/format.md, "Listing records"):
        at most LIST_PAGE_RECORDS records (fewer when `max_count` asks), LIST_PAGE_BYTES of
        records and LIST_PAGE_SCAN positions looked at. Raises UsageError for a position
        beyond the last one this node issued."""
        last = self.store.last_position()
        if after > last:
            raise UsageError(f"after_position {after} is beyond this node's last position {last}")
        limit = min(max_count or LIST_PAGE_RECORDS, LIST_PAGE_RECORDS)
        listed: list[ListedSnapshot] = []
        reached, size = after, 0
        for scanned, (position, item, nbytes) in enumerate(self.iter_listed(archive_id, after)):
            # only listed records fill the page: one is at most MAX_SIGNED_RECORD_BYTES, so
            # every page moves `reached` on
            grown = size + nbytes if item is not None else size
            if len(listed) >= limit or grown > LIST_PAGE_BYTES or scanned >= LIST_PAGE_SCAN:
                return SnapshotPage(listed, reached, more=True)
            reached = position
            if item is not None:
                listed.append(item)
                size = grown
        return SnapshotPage(listed, reached)

    def peer_status(self) -> list[PeerReport]:
        if self.replicator is not None:
            return self.replicator.peer_status()
        return [
            PeerReport(node_id=p.node_id, address=p.address, jurisdiction=p.jurisdiction)
            for p in self.peers()
        ]

    def unrepairable_count(self) -> int:
        """Quarantined chunks no reachable peer held at the last repair attempt."""
        return self.replicator.unrepairable_count() if self.replicator is not None else 0

    def scrub_status(self) -> ScrubReport:
        if self.scrubber is not None:
            return self.scrubber.status()
        return ScrubReport()

    def close(self) -> None:
        self.stopping.set()
        self.wake.set()
        for t in self.workers:
            t.join(timeout=10)
        self.store.close()

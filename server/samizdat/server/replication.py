"""Pull-only anti-entropy: each node pulls signed records and missing chunks from its peers.

One round, per peer: list records stored after the last position seen there (O(new records)),
verify each signature, store it (grow-only). Then, for each snapshot this node holds only in
part: make sure its chunk lists are here, work out the missing ids locally, ask every live
peer which of them it holds, and pull them in parallel streams, rarest first, verifying every
id; a peer that serves bad bytes is recorded and backed off, its share taken by others.
Nothing a peer says can delete or overwrite anything here: the store only ever adds chunks
that hash to their ids and records that the archive key signed.

Every wrong answer of a peer is an offence recorded in the peer book (samizdat.server.peerbook) and
backs that peer off; the round goes on with the others. Records a node already holds, or of
archives it does not host, cost a parse and a hash, never a signature check.

An unchanged cluster costs one small ListSnapshots call per peer per round.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import (
    ChunkCheck,
    ChunkCorrupt,
    IntegrityError,
    NotHosted,
    OutOfSpace,
    PeerMisbehaved,
    PeerUnavailable,
    Revoked,
    SamizdatError,
    SignatureError,
    UsageError,
)
from samizdat.core.ids import ArchiveId, ChunkId, SnapshotId, short_hex
from samizdat.core.peer import LIST_PAGE_RECORDS, Blob, Peer, SnapshotPage, check_page
from samizdat.core.records import Snapshot
from samizdat.server.config import PeerConfig
from samizdat.server.peerbook import Offence, PeerBook, PeerState
from samizdat.server.reports import PeerReport
from samizdat.server.runtime import NodeRuntime
from samizdat.server.snapshots import ListCounts, check_acceptable, count_held, verify_record
from samizdat.store.holdings import stored_snapshot
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)


class OwnStoreFault(Exception):
    """This node's own store refused a write (its disk is full): ends the round, and is
    never counted against the peer whose chunks or records were being stored. Not a
    SamizdatError, so no handler of a peer's errors takes it for one."""

    def __init__(self, error: OutOfSpace) -> None:
        super().__init__(str(error))
        self.error = error


MISSING_BATCH = 4096
FETCH_BATCH = 64
# Parallel GetChunks streams of one node, whatever the number of peers: each stream buffers up
# to a few 3 MiB messages, so this bounds the puller's memory (4: ~260 MiB RSS back-filling).
PULL_STREAMS = 4
MAX_IDLE_BACKOFF = 600.0
# Listing pages asked of one peer per round (the rest next round, from the position reached).
PAGES_PER_ROUND = 100
# Rounds start at most this often, however many hints (NotifySnapshots) arrive.
MIN_ROUND_GAP = 1.0


@dataclass
class _FillProgress:
    """Counters of the snapshot being filled, written out while chunks arrive."""

    snapshot_id: bytes
    held: int
    total: int
    nbytes: int
    written_at: float = 0.0


class RateLimiter:
    """Token bucket over bytes per second shared by all pulls (0 = unlimited)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def consume(self, nbytes: int, rate_mb: float) -> None:
        if rate_mb <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + nbytes / (rate_mb * 1e6)
            delay = self._next - now - 0.5  # allow a half-second burst
        if delay > 0:
            time.sleep(delay)


Connect = Callable[[PeerConfig], Peer]
"""Opens the Peer for a configured peer (the node passes GrpcPeer with its node key; tests
pass in-process peers)."""

Live = tuple[PeerConfig, PeerState, Peer]


class Replicator:
    """The anti-entropy loop of one node, over the Peer protocol (samizdat.core.peer)."""

    def __init__(self, node: NodeRuntime, connect: Connect) -> None:
        self.node = node
        self.store = node.store
        self.book = PeerBook(node.store, node.metrics)
        self.connect = connect
        self._peers: dict[str, tuple[str, Peer]] = {}  # node id -> (address, peer)
        self.limiter = RateLimiter()
        self._lock = threading.Lock()
        self._idle_rounds: dict[bytes, int] = {}
        self._retry_at: dict[bytes, float] = {}
        # For /healthz and the metrics: set by the loop around each round.
        self.round_in_progress = False
        self.last_round_finished = 0.0  # time.monotonic(); 0: none yet
        self.last_round_finished_unix = 0.0
        self._verified: dict[bytes, Snapshot] = {}
        self._progress: _FillProgress | None = None
        self._progress_lock = threading.Lock()
        # Quarantined chunks that no reachable peer claimed when last asked (in memory: after
        # a restart, known again at the next repair attempt).
        self._unsupplied: set[bytes] = set()
        self._supply_lock = threading.Lock()  # not _lock: a round holds that throughout
        self.thread = threading.Thread(target=self._loop, name="replication", daemon=True)

    @property
    def rounds(self) -> int:
        return self.book.round

    # ------------------------------------------------------------------ state

    def _peer(self, cfg: PeerConfig) -> Peer:
        """The open peer for `cfg`, reopened when its configured address changed."""
        known = self._peers.get(cfg.node_id)
        if known is not None and known[0] == cfg.address:
            return known[1]
        if known is not None:
            known[1].close()
        peer = self.connect(cfg)
        self._peers[cfg.node_id] = (cfg.address, peer)
        return peer

    def peer_status(self) -> list[PeerReport]:
        out = [self.book.state(cfg).report() for cfg in self.node.peers()]
        for node_id in sorted(self.node.revoked_nodes()):
            out.append(PeerReport(node_id=node_id, revoked=True))
        return out

    # ------------------------------------------------------------------- loop

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        node = self.node
        while not node.stopping.is_set():
            started = time.monotonic()
            node.wake.clear()
            self.round_in_progress = True
            try:
                self.run_round()
                self.last_round_finished = time.monotonic()
                self.last_round_finished_unix = time.time()
            except Exception:  # a round must never kill the loop
                log.exception("replication round failed")
            self.round_in_progress = False
            node.wake.wait(node.config.sync_interval)
            # Hints (NotifySnapshots) wake the loop early, but rounds start at most once per
            # MIN_ROUND_GAP (or sync_interval, if shorter): a flood of hints costs nothing more.
            gap = min(MIN_ROUND_GAP, node.config.sync_interval)
            node.stopping.wait(max(0.0, started + gap - time.monotonic()))
            node.maybe_reload()

    def live_peers(self) -> list[Live]:
        out = []
        for cfg in self.node.peers():
            state = self.book.state(cfg)
            if not self.book.usable(state):
                continue
            out.append((cfg, state, self._peer(cfg)))
        return out

    def run_round(self) -> None:
        """One anti-entropy round: new records from every peer, then missing chunks. What one
        peer gets wrong is its offence; the round goes on with the others."""
        with self._lock:
            self.book.round += 1
            try:
                self._round()
            except OwnStoreFault as e:
                log.error("replication round ended: %s", e.error)
            except OutOfSpace as e:
                log.error("replication round ended: %s", e)

    def _round(self) -> None:
        for cfg, state, client in self.live_peers():
            self._pull_custody(cfg, state, client)
        peers = self.live_peers()  # a node revoked by a record just learned is dropped now
        offences = {s.node_id: s.offences for _, s, _ in peers}
        new = 0
        for cfg, state, client in peers:
            new += self._pull_records(cfg, state, client)
        completed: list[tuple[bytes, int, int, int]] = []
        counts: ListCounts = {}
        for snapshot_id, snap in self._incomplete():
            if new == 0 and self._retry_at.get(snapshot_id, 0) > time.monotonic():
                continue
            try:
                self._fill(snapshot_id, snap, peers, completed, counts)
            except (UsageError, IntegrityError) as e:
                # this snapshot's content is at fault, not this node or a peer: it waits for
                # its next retry; the round goes on with the other snapshots
                self._retry_at[snapshot_id] = time.monotonic() + MAX_IDLE_BACKOFF
                log.error("snapshot=%s cannot be filled: %s", snap.id.short(), e)
        if completed:  # snapshots whose chunks all came with others: one synced write
            self.store.sync_chunks()
            self.store.set_snapshot_states(completed)
            log.info("%d snapshot(s) complete here with the chunks of others", len(completed))
        for _, state, _ in peers:
            if state.offences == offences[state.node_id]:
                self.book.clean(state)

    # ---------------------------------------------------------------- records

    def _pull_custody(self, cfg: PeerConfig, state: PeerState, peer: Peer) -> None:
        """Custody records stored at the peer since the last round, page by page (at most
        PAGES_PER_ROUND): verify, keep (first, so that a revocation applies before the
        snapshots of the same round)."""
        forged, why = 0, ""
        for _ in range(PAGES_PER_ROUND):
            try:
                listing = peer.custody_page(state.custody_position)
                if listing.last_position < state.custody_position:  # the peer's store was replaced
                    listing = peer.custody_page(0)
            except SamizdatError as e:
                # Not the peer's end: its records and chunks are still pulled (and that pull
                # tells whether it is reachable). One bad listing stopped them all (review R12).
                log.info("peer=%s custody records not listed: %s", cfg.node_id[:12], e)
                break
            for signed in listing.records:
                try:
                    self.node.custody.accept(signed)
                except SignatureError as e:
                    forged, why = forged + 1, str(e)
                except (NotHosted, UsageError):  # another archive; over the size limit
                    continue
            more = listing.more and listing.last_position > state.custody_position
            state.custody_position = listing.last_position
            if not more:
                break
        if forged:  # one offence per round, as for a page of snapshot records
            self.book.offence(
                state,
                Offence.BAD_RECORD,
                f"offered {forged} forged custody record(s), last: {why}",
                records=forged,
            )
        self.book.save(state)

    def _pull_records(self, cfg: PeerConfig, state: PeerState, peer: Peer) -> int:
        """Store the new records a peer lists, page by page from its last position seen (at
        most PAGES_PER_ROUND pages; the rest next round). Returns how many were new."""
        started = time.monotonic()
        stored = 0
        try:
            for _ in range(PAGES_PER_ROUND):
                page = self._list_page(peer, state)
                stored += self._take_page(cfg, state, page)
                state.position = page.last_position
                if not page.more or not self.book.usable(state):
                    break
        except OwnStoreFault:
            raise
        except PeerMisbehaved as e:
            self.book.offence(state, Offence.BAD_ANSWER, str(e))
            return stored
        except SamizdatError as e:
            self.book.unreachable(state, e)
            return stored
        except Exception as e:  # never let one peer's answer stop the round for the others
            log.exception("peer=%s listing not handled", cfg.node_id[:12])
            self.book.unreachable(state, PeerUnavailable(f"listing not handled: {e!r}"))
            return stored
        self.book.reached(state)
        self.book.save(state)
        self.node.metrics.round_seconds.labels(peer=cfg.node_id[:12]).observe(
            time.monotonic() - started
        )
        return stored

    def _list_page(self, peer: Peer, state: PeerState) -> SnapshotPage:
        """The next page after the position seen; from 0 when the peer no longer knows that
        position (its store was replaced). Raises PeerMisbehaved for a malformed page."""
        try:
            page = peer.list_page(None, state.position, LIST_PAGE_RECORDS)
        except UsageError:
            if state.position == 0:
                raise
            log.info(
                "peer=%s forgot position %d: listing from 0", state.node_id[:12], state.position
            )
            state.position = 0
            page = peer.list_page(None, 0, LIST_PAGE_RECORDS)
        check_page(page, state.position, LIST_PAGE_RECORDS, peer.label)
        return page

    def _take_page(self, cfg: PeerConfig, state: PeerState, page: SnapshotPage) -> int:
        """Store the records of one page that are new here, each accepted as PutSnapshot
        accepts one (samizdat.server.snapshots), in one synced write. Records already held
        and those of archives not hosted cost a parse and a hash, never a signature check.
        Chunks are synced after the counts, before the write: a record stored complete here
        has every chunk durable (docs/format.md §13)."""
        forged = 0
        why = ""
        hosted = self.node.config.hosted_archives
        listed: set[bytes] = set()
        new: list[Snapshot] = []
        rows: list[tuple[bytes, bytes, int, int, int]] = []
        for item in page.snapshots:
            record = pb.SnapshotRecord()
            try:
                record.ParseFromString(item.signed.record)
            except DecodeError:
                forged, why = forged + 1, "an undecodable snapshot record"
                continue
            if record.archive_id not in hosted:
                continue
            snapshot_id = SnapshotId.of(item.signed.record)
            if item.snapshot_id != snapshot_id:
                raise PeerMisbehaved(f"listed record {short_hex(snapshot_id)} under another id")
            if snapshot_id in listed:
                raise PeerMisbehaved(f"listed record {short_hex(snapshot_id)} twice")
            listed.add(snapshot_id)
            if self.store.has_snapshot(snapshot_id):
                continue
            try:
                snap = verify_record(item.signed)
                check_acceptable(snap, hosted, self.node.custody)
            except SignatureError as e:
                forged, why = forged + 1, f"a forged snapshot record: {e}"
                continue
            except (Revoked, NotHosted) as e:
                log.info("snapshot=%s from peer=%s %s", snap.id.short(), cfg.node_id[:12], e)
                continue
            held, total, nbytes = count_held(self.store, snap)
            rows.append((snapshot_id, snap.signed.SerializeToString(), held, total, nbytes))
            new.append(snap)
        if rows:  # every chunk counted above is durable before a count is stored
            self._sync_own()
        self.store.add_snapshots(rows)  # one synced write per page
        for snap in new:
            self._retry_at.pop(bytes(snap.id), None)
            if len(new) <= 10:
                log.info(
                    "snapshot=%s archive=%s learned from peer=%s",
                    snap.id.short(),
                    snap.archive_id.short(),
                    cfg.node_id[:12],
                )
        if len(new) > 10:
            log.info("%d snapshots learned from peer=%s", len(new), cfg.node_id[:12])
        if forged:
            self.book.offence(
                state, Offence.BAD_RECORD, f"offered {forged} record(s), last {why}", records=forged
            )
        return len(new)

    def _incomplete(self) -> Iterator[tuple[bytes, Snapshot]]:
        """Snapshots held in part. O(snapshots): reads only the per-snapshot counters."""
        for _pos, snapshot_id, signed_bytes in self.store.iter_snapshot_log(0):
            held, total, _ = self.store.snapshot_state(snapshot_id)
            if held < total or total == 0:
                snap = self._verified.get(snapshot_id)
                if snap is None:  # parsed once: records in the store were verified on entry
                    snap = stored_snapshot(signed_bytes)
                    self._verified[snapshot_id] = snap
                if snap.archive_id not in self.node.config.hosted_archives:
                    continue
                if not self.node.custody.snapshot_refusal(snapshot_id, snap.record):
                    yield snapshot_id, snap

    # ----------------------------------------------------------------- chunks

    def _fill(
        self,
        snapshot_id: bytes,
        snap: Snapshot,
        peers: list[Live],
        completed: list[tuple[bytes, int, int, int]],
        counts: ListCounts,
    ) -> None:
        """Pull what `snap` lacks here. One already complete (its chunks came with another
        snapshot) only joins `completed`, for the caller to store in one write. `counts`:
        per chunk list, valid until this node pulls chunks (then cleared)."""
        before = self.store.snapshot_state(snapshot_id)[0]
        held, total, nbytes = count_held(self.store, snap, counts)
        lists = list(snap.record.chunk_list_ids)
        if total and held >= total and lists and all(self.store.has_chunks(lists)):
            completed.append((snapshot_id, held, total, nbytes))
            self._verified.pop(snapshot_id, None)
            self._idle_rounds.pop(snapshot_id, None)
            self._retry_at.pop(snapshot_id, None)
            return
        counts.clear()  # chunks arrive from here on
        self._pull_ids([ChunkId(i) for i in snap.record.chunk_list_ids], peers)
        held, total, nbytes = count_held(self.store, snap)  # exact, once per fill
        self._progress = _FillProgress(snapshot_id, held, total, nbytes)
        try:
            for batch in self._iter_missing(snap):
                self._pull_ids(batch, peers)
        finally:
            self._progress = None
        held, total, nbytes = count_held(self.store, snap)
        self.store.sync_chunks()  # every chunk counted is durable before the counters say so
        self.store.set_snapshot_state(snapshot_id, held, total, nbytes)
        self.node.metrics.missing.labels(snapshot=snap.id.short()).set(total - held)
        if held >= total:
            log.info("snapshot=%s complete here (%d chunks)", snap.id.short(), total)
            self._verified.pop(snapshot_id, None)
            self._idle_rounds.pop(snapshot_id, None)
            self._retry_at.pop(snapshot_id, None)
        elif held == before:
            idle = self._idle_rounds.get(snapshot_id, 0) + 1
            self._idle_rounds[snapshot_id] = idle
            delay = min(MAX_IDLE_BACKOFF, self.node.config.sync_interval * 2**idle)
            self._retry_at[snapshot_id] = time.monotonic() + delay
            log.info(
                "snapshot=%s still missing %d chunks; no peer has them; retry in %.0fs",
                snap.id.short(),
                total - held,
                delay,
            )
        else:
            self._idle_rounds.pop(snapshot_id, None)

    def _iter_missing(self, snap: Snapshot) -> Iterator[list[ChunkId]]:
        """Yield batches of referenced chunk ids this store lacks (bounded memory)."""
        pending: list[ChunkId] = []
        for list_id in snap.record.chunk_list_ids:
            blob = self.store.get_chunk(list_id)
            if blob is None:
                continue
            ids = [cid for cid, _ in decode_chunk_list(list_id, blob)]
            for i in range(0, len(ids), MISSING_BATCH):
                part = ids[i : i + MISSING_BATCH]
                pending.extend(
                    c for c, have in zip(part, self.store.has_chunks(part), strict=True) if not have
                )
                while len(pending) >= MISSING_BATCH:
                    yield pending[:MISSING_BATCH]
                    pending = pending[MISSING_BATCH:]
        if pending:
            yield pending

    def _pull_ids(self, ids: list[ChunkId], peers: list[Live]) -> None:
        """Fetch `ids` from the peers that hold them, rarest first, in parallel."""
        ids = [c for c, have in zip(ids, self.store.has_chunks(ids), strict=True) if not have]
        remaining = set(ids)
        tried: set[str] = set()
        while remaining:
            live = [
                (c, s, cl) for c, s, cl in peers if c.node_id not in tried and self.book.usable(s)
            ]
            if not live:
                if not tried:  # no usable peer at all: nobody can repair anything
                    self._note_supply(ids, ())
                return
            holders: dict[ChunkId, list[int]] = defaultdict(list)
            order = [c for c in ids if c in remaining]
            for index, (cfg, state, client) in enumerate(live):
                try:
                    present = client.has_chunks(order)
                except PeerMisbehaved as e:  # e.g. one flag too few
                    self.book.offence(state, Offence.BAD_ANSWER, str(e))
                    tried.add(cfg.node_id)
                    continue
                except SamizdatError as e:
                    self.book.unreachable(state, e)
                    tried.add(cfg.node_id)
                    continue
                for chunk_id, have in zip(order, present, strict=True):
                    if have:
                        holders[chunk_id].append(index)
            if not tried:  # every usable peer was asked: note who can repair what
                self._note_supply(order, holders.keys())
            if not holders:
                return
            # Rarest first, each to the least-loaded holder.
            load = [0] * len(live)
            assignment: dict[int, list[ChunkId]] = defaultdict(list)
            # Ties in id order: the pull order keeps no trace of a (version 1) list's order.
            for chunk_id in sorted(holders, key=lambda c: (len(holders[c]), c)):
                best = min(holders[chunk_id], key=lambda i: load[i])
                assignment[best].append(chunk_id)
                load[best] += 1
            # Jobs interleaved across peers, so every holder serves from the start.
            parts = [
                [
                    (index, assigned[i : i + FETCH_BATCH])
                    for i in range(0, len(assigned), FETCH_BATCH)
                ]
                for index, assigned in assignment.items()
            ]
            order_of_jobs = [
                job for group in itertools.zip_longest(*parts) for job in group if job is not None
            ]
            with ThreadPoolExecutor(PULL_STREAMS, thread_name_prefix="pull") as pool:
                jobs = [
                    (index, batch, pool.submit(self._fetch_from, live[index], batch))
                    for index, batch in order_of_jobs
                ]
                for index, batch, job in jobs:
                    got = job.result()
                    remaining -= got
                    if len(got) < len(batch):  # failed, or lacked what it claimed
                        tried.add(live[index][0].node_id)
            if not tried.isdisjoint(c.node_id for c, _, _ in live):
                continue  # what the others were assigned goes to the peers left
            return  # every holder delivered everything assigned; nothing left to ask

    def _note_supply(self, ids: list[ChunkId], claimed: Iterable[bytes]) -> None:
        """Remember which of the quarantined `ids` no reachable peer claims to hold."""
        have = set(claimed)
        flags = self.store.quarantined(ids)
        with self._supply_lock:
            for chunk_id, quarantined in zip(ids, flags, strict=True):
                if quarantined and chunk_id not in have:
                    self._unsupplied.add(chunk_id)
                else:
                    self._unsupplied.discard(chunk_id)

    def unrepairable_count(self) -> int:
        """Quarantined chunks that no reachable peer held at the last repair attempt."""
        with self._supply_lock:
            ids = list(self._unsupplied)
        still = {c for c, q in zip(ids, self.store.quarantined(ids), strict=True) if q}
        with self._supply_lock:
            self._unsupplied -= set(ids) - still  # repaired since: forgotten
        return len(still)

    def _fetch_from(self, peer: Live, ids: list[ChunkId]) -> set[bytes]:
        """Pull `ids`, which the peer claimed to hold, from it; return the ids stored. Stops at
        the first wrong answer, each an offence: a bad chunk, an id not requested, a chunk sent
        twice (which would count twice towards a fill and keep a whole answer alive in the
        store's buffer for one small chunk), a claimed chunk reported missing, a stream that
        ends cleanly without some requested ids, neither sent nor reported missing (a
        truncated stream)."""
        cfg, state, client = peer
        if not self.book.usable(state):
            return set()
        wanted = set(ids)
        got: set[bytes] = set()
        sent: set[bytes] = set()
        missing: set[bytes] = set()
        try:
            for part in client.get_chunks(ids):
                missing.update(part.missing)
                if not missing <= wanted:
                    raise PeerMisbehaved("reported chunks missing that were not requested")
                batch = []
                for chunk_id, blob in part.chunks:
                    if chunk_id not in wanted:
                        raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.ID_HASH, "was not requested")
                    if chunk_id in sent or chunk_id in missing:
                        raise PeerMisbehaved(
                            f"sent chunk {short_hex(chunk_id)} twice, or sent and missing"
                        )
                    sent.add(chunk_id)
                    batch.append((chunk_id, blob))
                nbytes = sum(len(d) for _, d in batch)
                self.limiter.consume(nbytes, self.node.config.bandwidth_limit_mb)
                self._put_own(batch)  # verifies every id against its bytes
                got.update(c for c, _ in batch)
                self._advance(len(batch))
                state.chunks_pulled += len(batch)
                state.bytes_pulled += nbytes
                self.node.metrics.pulled_chunks.labels(peer=cfg.node_id[:12]).inc(len(batch))
                self.node.metrics.pulled_bytes.labels(peer=cfg.node_id[:12]).inc(nbytes)
            unaccounted = len(wanted - got - missing)
            if unaccounted:
                raise PeerMisbehaved(
                    f"ended a stream without {unaccounted} requested chunk(s), neither sent "
                    "nor reported missing"
                )
            if missing:
                raise PeerMisbehaved(f"claimed {len(missing)} chunk(s) it then reported missing")
        except OwnStoreFault:
            raise
        except ChunkCorrupt as e:
            self.book.offence(state, Offence.BAD_CHUNK, f"served a bad chunk: {e}", chunks=1)
        except PeerMisbehaved as e:
            self.book.offence(state, Offence.BAD_ANSWER, str(e))
        except SamizdatError as e:
            self.book.unreachable(state, e)
        except Exception as e:  # never let one peer's answer stop the round for the others
            log.exception("peer=%s chunks not handled", cfg.node_id[:12])
            self.book.unreachable(state, PeerUnavailable(f"chunks not handled: {e!r}"))
        return got

    def _put_own(self, batch: list[tuple[bytes, Blob]]) -> None:
        """Store pulled chunks here; this node's own full disk is OwnStoreFault, not the
        peer's doing."""
        try:
            self.store.put_chunks(batch)
        except OutOfSpace as e:
            raise OwnStoreFault(e) from e

    def _sync_own(self) -> None:
        try:
            self.store.sync_chunks()
        except OutOfSpace as e:
            raise OwnStoreFault(e) from e

    def _advance(self, chunks: int) -> None:
        """Count chunks arriving for the snapshot being filled; persist the counter at most
        a few times a second (the exact count is recomputed when the fill ends)."""
        with self._progress_lock:
            p = self._progress
            if p is None:
                return
            # Never "complete" from here: only the exact recount after sync_chunks() says so.
            p.held = min(p.total - 1, p.held + chunks)
            now = time.monotonic()
            if now - p.written_at > 0.25:
                p.written_at = now
                self.store.set_snapshot_state(p.snapshot_id, p.held, p.total, p.nbytes)

    # ------------------------------------------------------------------ hints

    def hint_peers(self, archive_id: ArchiveId) -> None:
        """Tell peers a new snapshot is here (best effort, in the background)."""

        def send() -> None:
            for cfg in self.node.peers():
                try:
                    self._peer(cfg).notify_snapshots(archive_id)
                except SamizdatError as e:
                    log.debug("hint to peer=%s failed: %s", cfg.node_id[:12], e)

        threading.Thread(target=send, name="hint", daemon=True).start()

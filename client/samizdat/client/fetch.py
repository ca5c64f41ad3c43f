"""Fetching chunks from several untrusted sources in parallel, verified, in consumer order.

The consumer (restore's writer) hands over the chunk refs it will need, in order, and takes
the decrypted plaintexts back in exactly that order (`OrderedFetch.next`). Inside:

- A *feeder* thread cuts the refs into *slots* (ordered batches of at most FETCH_IDS ids or
  FETCH_BYTES bytes). Sources that do not claim the whole snapshot are asked which ids they
  hold (HasChunks, one call per LOOKAHEAD ids); each slot is split into *jobs*, runs of
  positions that one source can serve.
- Every usable source runs STREAMS worker threads (its in-flight window). A worker takes the
  first queued job its source can serve, so a faster source takes more jobs: the work spreads
  by what each source holds and by how fast it answers. It fetches the job with one GetChunks
  call, checks every blob against its id (BLAKE3) and decrypts it (AEAD) before the plaintext
  is accepted.
- A source that fails (unreachable, killed mid-stream, refusing) is suspended with backoff and
  dropped after a few consecutive failures; its jobs return to the queue for the other holders.
  A source that sends bytes that do not match their id, or a chunk it was not asked for, is
  dropped at once and reported. A *local copy* (`ChunkSource.damage_is_local`: a store
  directory on a disk at hand) is damaged, not malicious: a blob of it that does not match its
  id counts as missing from it, and it stays a source for everything else. Ids a source turns
  out to lack go back to the queue with that source excluded; an id no remaining source can
  serve fails with ChunkNotFound naming why each source could not serve it, and the consumer
  goes on with the next ref (restore lists such files and restores the others).
- When the consumer has waited more than a few job-times for a job that is still in flight on
  a slow or stalled source, an idle source that holds it fetches it too (hedging); the first
  verified answer wins.
- Memory is bounded whatever the archive size: at most WINDOW_SLOTS slots or `window_bytes`
  (default WINDOW_BYTES) plaintext bytes exist between the feeder and the consumer.
- Several fetches may run over one pool at once (restore's two lanes): each has its own
  window and workers; a source one of them drops is dropped for all, and each fails the
  queued jobs nobody can serve any more.
- Hand-offs wake only the threads that can act on them: each fetch has a condition for its
  consumer, one for its feeder and one for its workers, all on the pool's one lock (a
  delivered job wakes the consumer, a consumed slot the feeder, a queued job the workers);
  only a dropped source wakes every fetch over the pool.

Sources are `samizdat.client.sources.ChunkSource`s; a `SourcePool` keeps their health across
successive fetches (the tree, then the files) and reports it at the end.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from samizdat.client.sources import ChunkSource
from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import (
    AccessDenied,
    ChunkCheck,
    ChunkCorrupt,
    ChunkNotFound,
    IntegrityError,
    NotHosted,
    SamizdatError,
)
from samizdat.core.ids import short_hex

log = logging.getLogger(__name__)

FETCH_IDS = 64
FETCH_BYTES = 4 << 20
LOOKAHEAD = 1024
WINDOW_SLOTS = 32
WINDOW_BYTES = 64 << 20
STREAMS = 2
UNKNOWN_LENGTH = 1 << 20  # window estimate for chunks of unknown size (tree chunks)
BACKOFF = 0.5
BACKOFF_MAX = 8.0
MAX_FAILURES = 3  # consecutive failures before a source is dropped (others can serve)
MAX_FAILURES_LAST = 8  # ... when it is the last source left
HEDGE_MIN = 1.0  # seconds the consumer waits for an in-flight job before it is hedged
HEDGE_JOBS = 4.0  # ... or this many typical job durations, whichever is longer
WAKE = 0.25

Ref = tuple[bytes, int | None]  # (chunk id, plaintext length if known)
Plaintext = bytes | memoryview  # as ChunkCodec.decode returns it: not copied out of the blob


@dataclass
class SourceReport:
    """What one source did during a restore (for the summary and --json)."""

    source: str
    chunks: int = 0
    bytes: int = 0
    busy_seconds: float = 0.0
    failures: int = 0
    corrupt_chunks: int = 0
    damaged_chunks: int = 0  # a local copy's chunks that did not match their ids (not dropped)
    overtaken: int = 0  # batches it was still fetching when another source delivered them
    dropped: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["busy_seconds"] = round(self.busy_seconds, 3)
        d["mb_per_s"] = round(self.bytes / self.busy_seconds / 1e6, 1) if self.busy_seconds else 0.0
        return d


class _Source:
    def __init__(self, index: int, source: ChunkSource, complete: bool) -> None:
        self.index, self.bit, self.source, self.complete = index, 1 << index, source, complete
        self.report = SourceReport(source.label)
        self.fails = 0
        self.retry_at = 0.0
        self.dropped = False
        self.lagging = 0  # jobs it still runs that another source already completed


class SourcePool:
    """The sources of one restore and their health, shared by successive fetches.

    `complete[i]` says source i claims every chunk of the snapshot (it is then never asked
    HasChunks); a false or None claim makes the feeder ask it per LOOKAHEAD ids.
    """

    def __init__(
        self,
        sources: Sequence[ChunkSource],
        complete: Sequence[bool | None] | None = None,
        *,
        streams: int = STREAMS,
    ) -> None:
        if not sources:
            raise ValueError("no sources")
        flags = list(complete) if complete is not None else [True] * len(sources)
        self.sources = [_Source(i, s, bool(flags[i])) for i, s in enumerate(sources)]
        self.streams = streams
        # One lock for the pool and every fetch over it; `cv` is its plain condition (the
        # pool's own waits), each fetch adds conditions of its own on the same lock.
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.fetches: weakref.WeakSet[OrderedFetch] = weakref.WeakSet()
        self.job_seconds = 0.0  # moving average of a job's duration

    # ---------------------------------------------------------------- health

    @property
    def alive_mask(self) -> int:
        return sum(s.bit for s in self.sources if not s.dropped)

    def reports(self) -> list[SourceReport]:
        with self.cv:
            return [SourceReport(**asdict(s.report)) for s in self.sources]

    @property
    def chunks_fetched(self) -> int:
        return sum(s.report.chunks for s in self.sources)

    @property
    def bytes_fetched(self) -> int:
        return sum(s.report.bytes for s in self.sources)

    def _drop(self, src: _Source, reason: str) -> None:
        if src.dropped:
            return
        src.dropped = True
        src.report.dropped = True
        src.report.reason = reason or src.report.reason
        log.warning("dropping source %s: %s", src.source.label, reason)
        for fetch in list(self.fetches):  # (lock held) each rechecks what it can still get
            fetch.wake_all()

    def _fail(self, src: _Source, error: BaseException) -> None:
        src.fails += 1
        src.report.failures += 1
        src.report.reason = str(error) or type(error).__name__
        if src.dropped:
            return
        others = any(not s.dropped for s in self.sources if s is not src)
        limit = MAX_FAILURES if others else MAX_FAILURES_LAST
        if isinstance(error, AccessDenied | NotHosted) or src.fails >= limit:
            self._drop(src, str(error))
        else:
            src.retry_at = time.monotonic() + min(BACKOFF_MAX, BACKOFF * 2 ** (src.fails - 1))
            log.info(
                "source %s failed (%s); retrying in %.1fs",
                src.source.label,
                error,
                src.retry_at - time.monotonic(),
            )

    def fetch(
        self, codec: ChunkCodec, refs: Iterable[Ref], window_bytes: int | None = None
    ) -> OrderedFetch:
        """Start fetching `refs`; the caller takes plaintexts with next() and must close()."""
        return OrderedFetch(self, codec, refs, window_bytes)

    def close(self) -> None:
        for s in self.sources:
            try:
                s.source.close()
            except Exception as e:  # closing must not mask the real outcome
                log.debug("closing %s: %s", s.source.label, e)


class _Slot:
    __slots__ = ("seq", "ids", "lengths", "plain", "filled", "errors", "estimate", "damaged")

    def __init__(self, seq: int, refs: list[Ref]) -> None:
        self.seq = seq
        self.ids = [r[0] for r in refs]
        self.lengths = [r[1] for r in refs]
        self.plain: list[Plaintext | None] = [None] * len(refs)
        self.filled = bytearray(len(refs))
        self.errors: dict[int, SamizdatError] = {}
        self.damaged: dict[int, int] = {}  # position -> mask of local copies damaged there
        self.estimate = sum(UNKNOWN_LENGTH if n is None else n for n in self.lengths)


class _Job:
    __slots__ = (
        "slot",
        "positions",
        "holders",
        "excluded",
        "started",
        "runners",
        "lagging",
        "order",
    )
    _order = itertools.count()

    def __init__(self, slot: _Slot, positions: list[int], holders: int, excluded: int = 0) -> None:
        self.slot, self.positions, self.holders, self.excluded = (
            slot,
            positions,
            holders,
            excluded,
        )
        self.started = 0.0
        self.runners = 0
        self.lagging = 0
        self.order = (slot.seq, next(self._order))

    def open_positions(self) -> list[int]:
        slot = self.slot
        return [p for p in self.positions if not slot.filled[p] and p not in slot.errors]


class FetchClosed(Exception):
    """next() on a fetch that was closed: another thread gave up on it (never shown: that
    thread reports its own error)."""


class OrderedFetch:
    """One ordered fetch over a SourcePool; see the module docstring."""

    def __init__(
        self,
        pool: SourcePool,
        codec: ChunkCodec,
        refs: Iterable[Ref],
        window_bytes: int | None = None,
    ) -> None:
        self.pool, self.codec, self.cv = pool, codec, pool.cv
        self.ready = threading.Condition(pool.lock)  # the consumer waits for its next chunk
        self.space = threading.Condition(pool.lock)  # the feeder waits for window space
        self.work = threading.Condition(pool.lock)  # workers wait for jobs
        self.window_limit = WINDOW_BYTES if window_bytes is None else window_bytes
        self.alive = pool.alive_mask  # sources alive when pending was last checked
        self.refs = iter(refs)
        self.slots: deque[_Slot] = deque()
        self.pending: list[_Job] = []  # sorted by job.order
        self.running: set[_Job] = set()
        self.window_bytes = 0
        self.fed_all = False
        self.closing = False
        self.fatal: BaseException | None = None
        self.waiting_since = 0.0  # when the consumer started waiting (0: not waiting)
        self.pos = 0  # consumer position in slots[0]
        self.threads = [threading.Thread(target=self._feed, name="fetch-feed", daemon=True)]
        for src in pool.sources:
            if not src.dropped:
                for n in range(pool.streams):
                    self.threads.append(
                        threading.Thread(
                            target=self._work,
                            args=(src,),
                            daemon=True,
                            name=f"fetch-{src.index}-{n}",
                        )
                    )
        with self.cv:
            pool.fetches.add(self)
        for t in self.threads:
            t.start()

    def wake_all(self) -> None:
        """Wake every thread of this fetch (lock held): something they all depend on changed
        (closed, failed, a source dropped)."""
        self.ready.notify_all()
        self.space.notify_all()
        self.work.notify_all()

    # ------------------------------------------------------------- consumer

    def next(self) -> Plaintext:
        """The plaintext of the next ref. Raises ChunkNotFound or IntegrityError for a ref
        that cannot be served (the next call goes on with the following ref), whatever
        stopped the feeder, or FetchClosed once the fetch is closed."""
        with self.cv:
            while True:
                if self.closing:
                    raise FetchClosed("the fetch was closed")
                if self.slots and self.pos >= len(self.slots[0].ids):
                    done = self.slots.popleft()
                    self.window_bytes -= done.estimate
                    self.pos = 0
                    self.space.notify()
                    continue
                if self.slots:
                    slot, p = self.slots[0], self.pos
                    if slot.filled[p]:
                        data = slot.plain[p]
                        slot.plain[p] = None
                        self.pos += 1
                        self.waiting_since = 0.0
                        return data  # type: ignore[return-value]
                    if p in slot.errors:
                        self.pos += 1
                        self.waiting_since = 0.0
                        raise slot.errors[p]
                if self.fatal is not None:
                    raise self.fatal
                if not self.slots and self.fed_all:
                    raise IntegrityError("chunk stream ended early")
                alive = self.pool.alive_mask
                if alive != self.alive:  # dropped by another fetch over the pool
                    self.alive = alive
                    self._recheck_pending()
                    continue
                if not self.waiting_since:
                    self.waiting_since = time.monotonic()
                self.ready.wait(WAKE)

    def close(self) -> None:
        with self.cv:
            self.closing = True
            self.slots.clear()
            self.pending.clear()
            self.wake_all()
            self.pool.fetches.discard(self)
        for t in self.threads[:1]:
            t.join(timeout=5)

    def __enter__(self) -> OrderedFetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- feeder

    def _feed(self) -> None:
        try:
            seq = 0
            while not self.closing:
                group = list(itertools.islice(self.refs, LOOKAHEAD))
                if not group:
                    break
                masks = self._holders([r[0] for r in group])
                start = 0
                while start < len(group):
                    end, size = start, 0
                    while (
                        end < len(group)
                        and end - start < FETCH_IDS
                        and (end == start or size < FETCH_BYTES)
                    ):
                        size += group[end][1] or UNKNOWN_LENGTH
                        end += 1
                    slot = _Slot(seq, group[start:end])
                    seq += 1
                    self._add_slot(slot, masks[start:end])
                    start = end
            with self.cv:
                self.fed_all = True
                self.ready.notify()
        except BaseException as e:  # handed to the consumer
            with self.cv:
                self.fatal = e
                self.wake_all()

    def _holders(self, ids: list[bytes]) -> list[int]:
        """Per id, the bit mask of sources that (claim to) hold it."""
        with self.cv:
            base = sum(s.bit for s in self.pool.sources if s.complete and not s.dropped)
            ask = [s for s in self.pool.sources if not s.complete and not s.dropped]
        masks = [base] * len(ids)
        for src in ask:
            try:
                present = src.source.has_chunks(ids)
            except SamizdatError as e:
                with self.cv:
                    self.pool._fail(src, e)
                continue
            if len(present) != len(ids):
                with self.cv:
                    self.pool._drop(src, "answered HasChunks with the wrong number of flags")
                continue
            for i, have in enumerate(present):
                if have:
                    masks[i] |= src.bit
        return masks

    def _add_slot(self, slot: _Slot, masks: list[int]) -> None:
        with self.cv:
            while (
                not self.closing
                and self.slots
                and (
                    len(self.slots) >= WINDOW_SLOTS
                    or self.window_bytes + slot.estimate > self.window_limit
                )
            ):
                self.space.wait(WAKE)
            if self.closing:
                return
            self.slots.append(slot)
            self.window_bytes += slot.estimate
            run: list[int] = []
            run_mask = 0
            for p, mask in enumerate(masks):
                if run and run_mask & mask:
                    run.append(p)
                    run_mask &= mask
                    continue
                if run:
                    self._queue(_Job(slot, run, run_mask))
                run, run_mask = [p], mask
            if run:
                self._queue(_Job(slot, run, run_mask))
            self.work.notify_all()
            if slot.errors:  # positions no source can serve: the consumer takes them now
                self.ready.notify()

    # --------------------------------------------------------------- workers

    def _queue(self, job: _Job) -> None:
        """Queue a job, or fail its positions if no usable source can serve it (cv held)."""
        if not job.holders & ~job.excluded & self.pool.alive_mask:
            self._fail_unservable(job)
            return
        bisect.insort(self.pending, job, key=lambda j: j.order)

    def _fail_unservable(self, job: _Job) -> None:
        slot = job.slot
        for p in job.open_positions():
            damaged = slot.damaged.get(p, 0)
            why = {}
            for s in self.pool.sources:
                if damaged & s.bit:
                    why[s.source.label] = "damaged copy"
                elif s.dropped:
                    why[s.source.label] = f"dropped: {s.report.reason}"
                else:
                    why[s.source.label] = "does not hold it"
            slot.errors[p] = ChunkNotFound(slot.ids[p].hex(), why)

    def _recheck_pending(self) -> None:
        """After a source was dropped: fail queued jobs nobody can serve any more."""
        alive = self.pool.alive_mask
        keep = []
        for job in self.pending:
            if job.holders & ~job.excluded & alive:
                keep.append(job)
            else:
                self._fail_unservable(job)
        self.pending = keep

    def _pick(self, src: _Source, now: float) -> _Job | None:
        if src.lagging:  # still stuck on work others finished: give it nothing new
            return None
        for i, job in enumerate(self.pending):
            if job.holders & src.bit and not job.excluded & src.bit:
                del self.pending[i]
                return job
        # Hedge: the consumer waits for a job that is still in flight elsewhere.
        if not self.waiting_since or not self.slots:
            return None
        delay = max(HEDGE_MIN, HEDGE_JOBS * self.pool.job_seconds)
        if now - self.waiting_since < delay:
            return None
        head = self.slots[0]
        for job in self.running:
            if (
                job.slot is head
                and job.holders & src.bit
                and not (job.excluded | job.runners) & src.bit
                and now - job.started > delay
                and job.open_positions()
            ):
                log.info(
                    "hedging a slow request of %d chunks on %s",
                    len(job.positions),
                    src.source.label,
                )
                return job
        return None

    def _work(self, src: _Source) -> None:
        while True:
            with self.cv:
                job = None
                while job is None:
                    if self.closing or src.dropped or self.fatal is not None:
                        return
                    now = time.monotonic()
                    if src.retry_at > now:
                        self.work.wait(min(WAKE, src.retry_at - now))
                        continue
                    job = self._pick(src, now)
                    if job is None:
                        self.work.wait(WAKE)
                job.runners |= src.bit
                if not job.started:
                    job.started = time.monotonic()
                self.running.add(job)
                positions = job.open_positions()
            self._run(src, job, positions)

    def _run(self, src: _Source, job: _Job, positions: list[int]) -> None:
        slot = job.slot
        want: dict[bytes, list[int]] = {}
        for p in positions:
            want.setdefault(slot.ids[p], []).append(p)
        got: dict[int, Plaintext] = {}
        errors: dict[int, SamizdatError] = {}
        damaged: list[int] = []  # positions whose blob is damaged in this local copy
        nbytes = 0
        corrupt: str | None = None
        failure: BaseException | None = None
        started = time.monotonic()
        try:
            # Blobs as the source gives them: a view into a received message is decoded
            # where it lies, not copied first (core.peer.iter_blobs would copy it).
            parts = src.source.get_chunks(list(want))
            for chunk_id, blob in (chunk for part in parts for chunk in part.chunks):
                if self.closing:
                    break
                targets = want.get(chunk_id)
                if targets is None or targets[0] in got:
                    corrupt = f"sent chunk {short_hex(chunk_id)} that was not asked for"
                    break
                try:
                    plain = self.codec.decode(chunk_id, blob)
                except ChunkCorrupt as e:
                    if e.check is ChunkCheck.ID_HASH:
                        if src.source.damage_is_local:  # a damaged disk, not an adversary
                            damaged.extend(targets)
                            continue
                        corrupt = (
                            f"served chunk {short_hex(chunk_id)} with bytes that "
                            "do not match its id"
                        )
                        break
                    # Authentic bytes that do not decrypt: the archive itself is damaged
                    # (or the key is wrong); no other source can do better.
                    for p in targets:
                        errors[p] = e
                    continue
                nbytes += len(blob)
                for p in targets:
                    n = slot.lengths[p]
                    if n is not None and len(plain) != n:
                        errors[p] = IntegrityError(
                            f"chunk {short_hex(chunk_id)} has {len(plain)} bytes, the tree "
                            f"records {n}"
                        )
                    else:
                        got[p] = plain
        except SamizdatError as e:
            failure = e
        except Exception as e:  # a transport error the client did not map
            failure = e
        elapsed = time.monotonic() - started
        with self.cv:
            delivered = 0
            for p, plain in got.items():
                if not slot.filled[p] and p not in slot.errors:
                    slot.plain[p] = plain
                    slot.filled[p] = 1
                    delivered += 1
            for p, err in errors.items():
                if not slot.filled[p]:
                    slot.errors.setdefault(p, err)
            for p in damaged:
                slot.damaged[p] = slot.damaged.get(p, 0) | src.bit
            report = src.report
            report.damaged_chunks += len(damaged)
            report.chunks += delivered
            report.bytes += nbytes
            report.busy_seconds += elapsed
            job.runners &= ~src.bit
            wake_workers = False  # whether another worker of this fetch may now have work
            if job.lagging & src.bit:
                job.lagging &= ~src.bit
                src.lagging -= 1
                wake_workers = True
            if corrupt is not None:
                report.corrupt_chunks += 1
                self.pool._drop(src, corrupt)
                self._recheck_pending()
            elif failure is not None:
                self.pool._fail(src, failure)
                wake_workers = True  # the others take over its jobs
                if src.dropped:
                    self._recheck_pending()
            else:
                src.fails = 0
                js = self.pool.job_seconds
                self.pool.job_seconds = elapsed if not js else 0.8 * js + 0.2 * elapsed
            left = job.open_positions()
            if not left:
                self.running.discard(job)
                for other in self.pool.sources:  # hedged: the slow runners lag behind
                    if job.runners & other.bit & ~job.lagging:
                        job.lagging |= other.bit
                        other.lagging += 1
                        other.report.overtaken += 1
            elif job.runners:
                pass  # a hedge is still running it
            else:
                self.running.discard(job)
                excluded = job.excluded
                if corrupt is None and failure is None and not self.closing:
                    excluded |= src.bit  # it answered but lacks these ids
                self._queue(_Job(slot, left, job.holders, excluded))
                wake_workers = True
            self.ready.notify()
            if wake_workers:
                self.work.notify_all()

"""Background scrub: re-hash every stored chunk at a bounded rate, quarantine and repair.

A *pass* walks the chunk index in id order and re-hashes each blob with BLAKE3 (RocksDB's own
CRC errors count as corruption too), at most `scrub_rate_mb` MB/s, in short slices. After each
slice the cursor (last id checked) and the counters are persisted in the node state
(`scrub:state`), so a restarted node resumes where it stopped. Passes start
`scrub_interval` seconds apart; `scrub_rate_mb = 0` disables hashing (repair still runs).

Repair. A corrupt chunk is quarantined (`ChunkStore.quarantine`: removed, remembered in the
`quarantine` column family); chunks found corrupt on read (GetChunks) land there as well. The
scrubber then *accounts* for every quarantined chunk: it recounts the held counters of the
snapshots that reference it, so that they show as incomplete, and wakes replication, whose
normal pull loop fetches a verified copy from a peer. When the chunk is back, the quarantine
entry is released and its finding marked repaired. Accounting reads the chunk lists of the
hosted snapshots (O(chunks referenced)) but runs only when corruption was found. A chunk that
no snapshot references is dropped instead.

Verified-since. Every chunk present when a pass starts is hashed by that pass unless removed;
every chunk written later was hashed on write (`put_chunks`). So when a pass completes,
every chunk held was checked at or after the start of that pass: `verified_since_unix`.
`samizdat status` counts a node's complete copies as verified while that time lies within
its window.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace

import blake3

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import SamizdatError
from samizdat.core.ids import ChunkId, short_hex
from samizdat.server.reports import Finding, ScrubProgress, ScrubReport, shared_fields
from samizdat.server.runtime import NodeRuntime
from samizdat.server.snapshots import count_held
from samizdat.store import rocks
from samizdat.store.holdings import stored_snapshot

log = logging.getLogger(__name__)

STATE_KEY = b"scrub:state"
STATE_VERSION = 1
MAX_FINDINGS = 50
SLICE_SECONDS = 0.25  # hashing work between two cursor saves and rate-limit sleeps
SLICE_CHUNKS = 20_000
IDLE_POLL = 2.0  # how often an idle scrubber looks for newly quarantined chunks
# Each chunk is charged at least this many bytes against the rate: a store of tiny chunks is
# bounded by per-chunk work (reads, hashing calls), and must not hog the node's CPU either.
MIN_CHARGE = 4096


@dataclass
class ScrubState(ScrubProgress):
    """What the scrubber persists (JSON in the node state)."""

    version: int = STATE_VERSION
    cursor_hex: str = ""  # last id checked in the current pass
    pass_errors: int = 0  # unreadable chunks (not corruption) in the current pass
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def load(cls, raw: bytes | None) -> ScrubState:
        if not raw:
            return cls()
        try:
            d = json.loads(raw)
            findings = [Finding(**f) for f in d.pop("findings", [])]
            known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
            return cls(**known, findings=findings)
        except (ValueError, TypeError) as e:
            log.error("scrub state unreadable (%s); starting afresh", e)
            return cls()

    def dump(self) -> bytes:
        return json.dumps(asdict(self)).encode()


class Scrubber:
    """The scrub and repair worker of one node. `status()` is safe from any thread."""

    def __init__(self, node: NodeRuntime) -> None:
        self.node = node
        self.store = node.store
        self._lock = threading.Lock()
        self.state = ScrubState.load(self.store.get_state(STATE_KEY))
        self.thread = threading.Thread(target=self._loop, name="scrub", daemon=True)

    # ------------------------------------------------------------------ status

    def status(self) -> ScrubReport:
        config = self.node.config
        with self._lock:
            st = self.state
            fraction = 0.0
            if st.pass_started_unix and st.cursor_hex:
                fraction = int(st.cursor_hex[:16], 16) / 2**64
            return ScrubReport(
                **shared_fields(ScrubProgress, st),
                position_fraction=fraction,
                enabled=config.scrub_rate_mb > 0,
                rate_mb=config.scrub_rate_mb,
                pending_repair=self.store.quarantined_count(),
                findings=tuple(replace(f) for f in st.findings),
            )

    def _save(self) -> None:
        with self._lock:
            raw = self.state.dump()
        self.store.put_state(STATE_KEY, raw)

    def _add_finding(self, chunk_id: bytes, detail: str) -> None:
        with self._lock:
            self.state.corrupt_found += 1
            self.state.findings.insert(0, Finding(chunk_id.hex(), int(time.time()), detail))
            del self.state.findings[MAX_FINDINGS:]
        self.node.metrics.scrub_corrupt.inc()

    def _finding(self, chunk_id: bytes) -> Finding | None:
        hex_id = chunk_id.hex()
        return next(
            (f for f in self.state.findings if f.chunk_hex == hex_id and not f.repaired_unix), None
        )

    # -------------------------------------------------------------------- loop

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        stopping = self.node.stopping
        while not stopping.is_set():
            try:
                self.handle_quarantine()
                delay = self.step()
            except SamizdatError as e:
                log.error("scrub: %s", e)
                delay = IDLE_POLL
            except Exception:  # the worker must survive anything
                log.exception("scrub step failed")
                delay = IDLE_POLL
            if delay > 0:
                stopping.wait(delay)

    def step(self) -> float:
        """Hash one slice of the current pass (starting one if due); return seconds to wait."""
        config = self.node.config
        rate = config.scrub_rate_mb
        if rate <= 0:
            return IDLE_POLL
        st = self.state
        now = time.time()
        if not st.pass_started_unix:
            due = st.verified_since_unix + config.scrub_interval if st.passes_completed else 0
            if now < due:
                return min(IDLE_POLL, due - now)
            with self._lock:
                st.pass_started_unix, st.cursor_hex, st.pass_errors = int(now), "", 0
                st.chunks_checked = st.bytes_checked = 0
            log.info("scrub pass %d started", st.passes_completed + 1)
        started = time.monotonic()
        budget = rate * 1e6 * SLICE_SECONDS
        nbytes = charged = 0
        checked: list[tuple[bytes, int]] = []
        corrupt = finished = False
        cursor = bytes.fromhex(st.cursor_hex)
        ids = self.store.iter_chunk_ids(cursor)
        try:
            while True:
                item = next(ids, None)
                if item is None:
                    finished = True
                    break
                chunk_id, _ = item
                if chunk_id == cursor:
                    continue
                problem, size = self._check(chunk_id)
                cursor = chunk_id
                nbytes += size
                charged += max(size, MIN_CHARGE)
                if problem is None:
                    checked.append((chunk_id, size))
                elif problem:
                    corrupt = True
                    log.error(
                        "scrub: chunk %s is corrupt (%s); quarantined", short_hex(chunk_id), problem
                    )
                    self.store.quarantine(chunk_id)
                    self._add_finding(chunk_id, f"scrub: {problem}")
                if (
                    charged >= budget
                    or len(checked) >= SLICE_CHUNKS
                    or time.monotonic() - started > SLICE_SECONDS
                ):
                    break
        finally:
            ids.close()
        self.store.mark_verified_many(checked, int(now))
        self.node.metrics.scrub_checked.inc(nbytes)
        with self._lock:
            st.cursor_hex = cursor.hex()
            st.chunks_checked += len(checked)
            st.bytes_checked += nbytes
            if finished:
                self._complete_pass(st)
        self._save()
        if corrupt:
            self.handle_quarantine()
        elapsed = time.monotonic() - started
        return max(0.0, charged / (rate * 1e6) - elapsed)

    def _complete_pass(self, st: ScrubState) -> None:
        st.passes_completed += 1
        st.last_pass_completed_unix = int(time.time())
        if not st.pass_errors:
            st.verified_since_unix = st.pass_started_unix
        log.info(
            "scrub pass %d complete: %d chunks, %d bytes, %d unreadable",
            st.passes_completed,
            st.chunks_checked,
            st.bytes_checked,
            st.pass_errors,
        )
        st.pass_started_unix, st.cursor_hex = 0, ""

    def _check(self, chunk_id: ChunkId) -> tuple[str | None, int]:
        """Return (problem, stored size): problem None if sound, "" if it could not be read
        for a reason other than corruption (counted, retried next pass)."""
        try:
            blob = self.store.read_raw(chunk_id)
        except Exception as e:  # rocksdict raises plain Exception, e.g. "Corruption: ..."
            if rocks.fault_of(e) is rocks.Fault.DAMAGE:
                return f"unreadable: {e}", 0
            log.error("scrub: chunk %s unreadable: %s", short_hex(chunk_id), e)
            with self._lock:
                self.state.pass_errors += 1
            return "", 0
        if blob is None:  # removed since the index was read
            return "", 0
        if blake3.blake3(blob).digest() != chunk_id:
            return "bytes do not match the id", len(blob)
        return None, len(blob)

    # ------------------------------------------------------------------ repair

    def handle_quarantine(self) -> None:
        """Release repaired chunks; account for new ones and wake replication to fetch them."""
        entries = list(self.store.iter_quarantine())
        if not entries:
            return
        new: set[bytes] = set()
        repaired: list[bytes] = []
        for chunk_id, _since, accounted in entries:
            if self.store.has_chunks([chunk_id])[0]:
                repaired.append(chunk_id)
            elif not accounted:
                if self._finding(chunk_id) is None:  # quarantined on a read, not by scrub
                    self._add_finding(chunk_id, "read: failed verification when served")
                new.add(chunk_id)
        if repaired:  # counted held, perhaps from the write buffer: durable before released
            self.store.sync_chunks()
        for chunk_id in repaired:
            self.store.release_quarantine(chunk_id)
            with self._lock:
                finding = self._finding(chunk_id)
                if finding is not None:
                    finding.repaired_unix = int(time.time())
                self.state.repaired += 1
            self.node.metrics.scrub_repaired.inc()
            log.info("chunk %s repaired from a peer", short_hex(chunk_id))
        changed = bool(repaired)
        if new:
            referenced, complete = self._recount(new)
            for chunk_id in new:
                if chunk_id in referenced or not complete:
                    self.store.set_quarantine_accounted(chunk_id)
                else:
                    self.store.release_quarantine(chunk_id)
                    with self._lock:
                        finding = self._finding(chunk_id)
                        if finding is not None:
                            finding.detail += "; referenced by no snapshot, dropped"
                            finding.repaired_unix = int(time.time())
            self.node.wake_replication()
            changed = True
        if changed:
            self._save()

    def _recount(self, lost: set[bytes]) -> tuple[set[bytes], bool]:
        """Recount the held counters of every hosted snapshot referencing a `lost` id.

        Return (the lost ids some snapshot references, whether every chunk list was readable
        so that "referenced by nothing" is known for sure).
        """
        referenced: set[bytes] = set()
        states: list[tuple[bytes, int, int, int]] = []
        complete = True
        hosted = self.node.config.hosted_archives
        for _position, snapshot_id, signed in self.store.iter_snapshot_log(0):
            snap = stored_snapshot(signed)  # verified when stored: parsed, not re-verified
            if snap.archive_id not in hosted:
                continue
            hit = set()
            for list_id in snap.record.chunk_list_ids:
                if list_id in lost:
                    hit.add(list_id)
                blob = self.store.get_chunk(list_id)
                if blob is None:
                    complete = False
                    continue
                hit.update(lost.intersection(c for c, _ in decode_chunk_list(list_id, blob)))
            if hit:
                referenced |= hit
                held, total, nbytes = count_held(self.store, snap)
                states.append((snapshot_id, held, total, nbytes))
                log.warning(
                    "snapshot=%s lost %d chunk(s) to corruption; now %d/%d held",
                    snap.id.short(),
                    len(hit),
                    held,
                    total,
                )
        if states:  # every chunk counted (the write buffer included) durable first
            self.store.sync_chunks()
            self.store.set_snapshot_states(states)
        return referenced, complete

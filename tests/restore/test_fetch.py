"""The parallel fetcher against in-process sources: order, spreading, failover, demotion of
lying sources, hedging of stalled ones, bounded memory. No network; fast."""

from __future__ import annotations

import threading
import time

import pytest

from samizdat.client import fetch as fetch_mod
from samizdat.client.fetch import SourcePool
from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import ChunkNotFound
from samizdat.core.keys import ArchiveKey
from tests.restore.fakes import FakeSource, make_chunks

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def key() -> ArchiveKey:
    return ArchiveKey.generate()


@pytest.fixture(scope="module")
def chunks(key: ArchiveKey):  # type: ignore[no-untyped-def]
    return make_chunks(key, 600)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "BACKOFF", 0.01)
    monkeypatch.setattr(fetch_mod, "BACKOFF_MAX", 0.05)


def fetch_all(key: ArchiveKey, pool: SourcePool, refs) -> list[bytes]:  # type: ignore[no-untyped-def]
    with pool.fetch(ChunkCodec(key), iter(refs)) as f:
        return [f.next() for _ in refs]


def expected(refs, plain) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [plain[i] for i, _ in refs]


def test_three_sources_in_order_and_all_used(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    gate = threading.Barrier(3)  # each source's first call waits for the others' first
    sources = [FakeSource(n, blobs, delay=0.002, gate=gate) for n in "abc"]
    pool = SourcePool(sources)
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    reports = pool.reports()
    assert all(r.chunks > 0 for r in reports), reports
    assert sum(r.chunks for r in reports) == len(refs) == pool.chunks_fetched
    assert not any(r.dropped for r in reports)
    assert all(s.has_calls == 0 for s in sources)  # complete sources are never asked


def test_faster_source_takes_more(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    refs = refs * 3  # enough batches that the two each stream takes at the start do not decide
    # The slow source sleeps (no CPU); the fast one's share must not depend on how loaded the
    # machine is, so the gap is wide: 0.2 s per call against a few ms of decoding.
    fast, slow = FakeSource("fast", blobs), FakeSource("slow", blobs, delay=0.2)
    pool = SourcePool([fast, slow])
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    by = {r.source: r.chunks for r in pool.reports()}
    assert by["fast"] > 2 * by["slow"], by


def test_source_dying_mid_restore_is_dropped_and_others_take_over(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    dying = FakeSource("dying", blobs, die_after=40)
    pool = SourcePool(
        [dying, FakeSource("b", blobs, delay=0.001), FakeSource("c", blobs, delay=0.001)]
    )
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    report = {r.source: r for r in pool.reports()}["dying"]
    assert report.failures >= 1 and report.chunks == 40, report
    assert "connection reset" in report.reason
    # given more work, it is dropped for good after a few attempts
    more = SourcePool([FakeSource("dying", blobs, die_after=0), FakeSource("b", blobs, delay=0.01)])
    assert fetch_all(key, more, refs) == expected(refs, plain)
    report = {r.source: r for r in more.reports()}["dying"]
    assert report.dropped and report.failures >= fetch_mod.MAX_FAILURES, report


def test_lying_source_is_demoted_and_reported(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    bad = {refs[i][0] for i in range(5, len(refs), 7)}
    liar = FakeSource("liar", blobs, corrupt=bad)
    pool = SourcePool([liar, FakeSource("honest", blobs, delay=0.002)])
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    report = {r.source: r for r in pool.reports()}["liar"]
    assert report.dropped and report.corrupt_chunks >= 1  # one per stream at most
    assert "do not match its id" in report.reason


def test_source_sending_unrequested_chunks_is_demoted(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    pushy = FakeSource("pushy", blobs, extra=refs[-1][0])
    pool = SourcePool([pushy, FakeSource("honest", blobs)])
    assert fetch_all(key, pool, refs[:50]) == expected(refs[:50], plain)
    report = {r.source: r for r in pool.reports()}["pushy"]
    assert report.dropped and "not asked for" in report.reason


def test_only_source_lying_fails_at_that_chunk_and_not_before(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    liar = FakeSource("liar", blobs, corrupt={refs[100][0]})
    pool = SourcePool([liar])
    got = []
    with pool.fetch(ChunkCodec(key), iter(refs)) as f, pytest.raises(ChunkNotFound) as err:
        for _ in refs:
            got.append(f.next())
    assert got == expected(refs[: len(got)], plain)
    assert len(got) <= 100  # never past the bad one; what came before is authentic
    assert "liar" in str(err.value)


def test_partial_sources_are_asked_and_combined(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    even = {i: b for n, (i, b) in enumerate(blobs.items()) if n % 2 == 0}
    odd = {i: b for n, (i, b) in enumerate(blobs.items()) if n % 2 == 1}
    a, b = FakeSource("even", even), FakeSource("odd", odd)
    pool = SourcePool([a, b], complete=[False, False])
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    assert a.has_calls and b.has_calls
    # each was only asked for what it holds
    assert set(a.requested) <= set(even) and set(b.requested) <= set(odd)


def test_source_claiming_everything_but_lacking_some(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    lacks = {refs[i][0] for i in range(0, len(refs), 3)}
    pool = SourcePool(
        [FakeSource("gappy", blobs, lacks=lacks), FakeSource("full", blobs, delay=0.003)]
    )
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    assert not any(r.dropped for r in pool.reports())


def test_chunk_nobody_holds(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    lacks = {refs[10][0]}
    pool = SourcePool([FakeSource("a", blobs, lacks=lacks), FakeSource("b", blobs, lacks=lacks)])
    with pool.fetch(ChunkCodec(key), iter(refs)) as f:
        for i in range(10):
            assert f.next() == plain[refs[i][0]]
        with pytest.raises(ChunkNotFound) as err:
            f.next()
    assert refs[10][0].hex()[:12] in str(err.value)


def test_fetch_goes_on_past_chunks_nobody_holds(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, plain = chunks
    gone = {refs[i][0] for i in (3, 200, 201, 599)}
    pool = SourcePool([FakeSource("a", blobs, lacks=gone), FakeSource("b", blobs, lacks=gone)])
    got, lost = [], []
    with pool.fetch(ChunkCodec(key), iter(refs)) as f:
        for chunk_id, _ in refs:
            try:
                got.append(f.next())
            except ChunkNotFound as e:
                lost.append(chunk_id)
                assert e.why == {"a": "does not hold it", "b": "does not hold it"}, e.why
    assert lost == [refs[i][0] for i in (3, 200, 201, 599)]
    assert got == [plain[i] for i, _ in refs if i not in gone]
    assert not any(r.dropped for r in pool.reports())


def test_damaged_local_copy_stays_a_source_for_everything_else(key, chunks) -> None:  # type: ignore[no-untyped-def]
    """A store copy on a failing disk is damaged, not malicious: its bad chunks count as
    missing from it, and it still serves the rest (a remote node would be dropped)."""
    refs, blobs, plain = chunks
    bad = {refs[i][0] for i in range(7, len(refs), 50)}
    copy = FakeSource("copy", blobs, corrupt=bad, local=True)
    pool = SourcePool([copy])
    got, lost = [], {}
    with pool.fetch(ChunkCodec(key), iter(refs)) as f:
        for chunk_id, _ in refs:
            try:
                got.append(f.next())
            except ChunkNotFound as e:
                lost[chunk_id] = e.why
    assert set(lost) == bad and all(w == {"copy": "damaged copy"} for w in lost.values())
    assert got == [plain[i] for i, _ in refs if i not in bad]
    (report,) = pool.reports()
    assert not report.dropped and report.damaged_chunks == len(bad), report
    assert report.chunks == len(refs) - len(bad) and report.corrupt_chunks == 0

    # With a healthy second source, the damaged chunks come from it; the copy serves the rest.
    healthy = FakeSource("healthy", blobs, delay=0.02)
    copy = FakeSource("copy", blobs, corrupt=bad, local=True)
    pool = SourcePool([copy, healthy])
    assert fetch_all(key, pool, refs) == expected(refs, plain)
    by = {r.source: r for r in pool.reports()}
    assert not by["copy"].dropped and by["copy"].chunks > len(refs) // 2, by
    assert bad <= set(healthy.requested)


def test_all_sources_dead(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, _ = chunks
    pool = SourcePool([FakeSource("a", blobs, die_after=0), FakeSource("b", blobs, die_after=0)])
    with pool.fetch(ChunkCodec(key), iter(refs)) as f, pytest.raises(ChunkNotFound) as err:
        f.next()
    assert err.value.why.keys() == {"a", "b"}
    assert all(why.startswith("dropped: ") for why in err.value.why.values()), err.value.why
    assert all(r.dropped for r in pool.reports())


def test_stalled_source_is_hedged(key, chunks, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(fetch_mod, "HEDGE_MIN", 0.2)
    refs, blobs, plain = chunks
    staller = FakeSource("staller", blobs, stall_after=1)  # answers once, then hangs
    pool = SourcePool([staller, FakeSource("steady", blobs, delay=0.001)])
    started = time.monotonic()
    try:
        assert fetch_all(key, pool, refs) == expected(refs, plain)
    finally:
        staller.release.set()
    assert time.monotonic() - started < 20
    by = {r.source: r.chunks for r in pool.reports()}
    assert by["steady"] > by["staller"]


def test_window_bounds_what_is_fetched_ahead(key, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "WINDOW_BYTES", 1 << 20)
    refs, blobs, plain = make_chunks(key, 400, size=30_000, seed=3)
    src = FakeSource("a", blobs)
    pool = SourcePool([src])
    with pool.fetch(ChunkCodec(key), iter(refs)) as f:
        assert f.next() == plain[refs[0][0]]
        time.sleep(0.5)  # the consumer stalls: fetching must stop at the window
        ahead = len(src.requested)
        total = sum(n for _, n in refs[:ahead])
        assert total <= (1 << 20) + 2 * fetch_mod.FETCH_BYTES, (ahead, total)
        assert ahead < len(refs)
        rest = [f.next() for _ in refs[1:]]
    assert rest == expected(refs[1:], plain)


def test_consumer_blocked_does_not_deadlock_close(key, chunks) -> None:  # type: ignore[no-untyped-def]
    refs, blobs, _ = chunks
    pool = SourcePool([FakeSource("a", blobs, delay=0.01)])
    f = pool.fetch(ChunkCodec(key), iter(refs))
    f.next()
    t = threading.Thread(target=f.close)
    t.start()
    t.join(10)
    assert not t.is_alive()


def test_closed_fetch_wakes_its_blocked_consumer(key, chunks) -> None:  # type: ignore[no-untyped-def]
    """Restore's bulk lane waits in next() when the main lane gives up and closes its
    fetch: the wait ends with FetchClosed instead of lasting for ever."""
    refs, blobs, _ = chunks
    stalled = FakeSource("stalled", blobs, stall_after=0)  # every call waits for release
    pool = SourcePool([stalled])
    f = pool.fetch(ChunkCodec(key), iter(refs))
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            f.next()
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=consume)
    t.start()
    try:
        assert wait_until(lambda: f.waiting_since > 0, 10)
        f.close()
        t.join(10)
        assert not t.is_alive() and len(outcome) == 1, outcome
        assert isinstance(outcome[0], fetch_mod.FetchClosed), outcome
    finally:
        stalled.release.set()
        f.close()


def test_source_dropped_by_one_fetch_is_dropped_for_another(key, chunks) -> None:  # type: ignore[no-untyped-def]
    """Two fetches over one pool at once (restore's two lanes). The only source serves a
    chunk of the first with bytes that do not match its id and is dropped; the second
    fetch's queued jobs only it could serve fail with ChunkNotFound, so its consumer goes
    through to the end instead of waiting for ever; what it got before is right."""
    refs, blobs, plain = chunks
    bad = refs[0][0]
    liar = FakeSource("liar", blobs, corrupt={bad}, stall_after=0)
    pool = SourcePool([liar])
    codec = ChunkCodec(key)
    with pool.fetch(codec, iter(refs[:1])) as first, pool.fetch(codec, iter(refs[1:])) as second:
        assert wait_until(lambda: liar.calls >= 3, 10)  # both fetches have calls waiting
        liar.release.set()
        with pytest.raises(ChunkNotFound):
            first.next()
        got: list[bytes | None] = []
        for _ in refs[1:]:
            try:
                got.append(bytes(second.next()))
            except ChunkNotFound:
                got.append(None)
    assert all(g is None or g == plain[r[0]] for g, r in zip(got, refs[1:], strict=True))
    (report,) = pool.reports()
    assert report.dropped and report.corrupt_chunks == 1, report


def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _requeued_to_an_idle_source(key, chunks) -> None:  # type: ignore[no-untyped-def]
    """One job at a time, first taken by whichever source's worker is quicker: when the
    source that claims everything but holds none of it answers, its job goes back to the
    queue and the other source's idle workers must take it."""
    refs, blobs, plain = chunks
    few = refs[:16]
    answered = 0
    for _ in range(20):
        gappy = FakeSource("gappy", blobs, lacks={r[0] for r in few}, delay=0.02)
        pool = SourcePool([gappy, FakeSource("full", blobs)])
        assert fetch_all(key, pool, few) == expected(few, plain)
        answered += bool(gappy.requested)
    assert answered, "the lacking source never took the job first"


@pytest.mark.parametrize(
    "scenario",
    [
        _requeued_to_an_idle_source,
        test_source_dying_mid_restore_is_dropped_and_others_take_over,
        test_lying_source_is_demoted_and_reported,
        test_partial_sources_are_asked_and_combined,
        test_source_claiming_everything_but_lacking_some,
        test_fetch_goes_on_past_chunks_nobody_holds,
        test_source_dropped_by_one_fetch_is_dropped_for_another,
        test_closed_fetch_wakes_its_blocked_consumer,
    ],
    ids=lambda f: f.__name__.strip("_").removeprefix("test_"),
)
def test_every_hand_off_wakes_its_waiter(key, chunks, monkeypatch, scenario) -> None:  # type: ignore[no-untyped-def]
    """Each fetch's threads wait on conditions of their own (consumer, feeder, workers) and
    are woken only for what concerns them; the periodic wake-up (WAKE) is a fallback, not
    how hand-offs happen. With it an hour away, every scenario still runs to its end, in
    small windows (the feeder waits for space many times). (Not the three gated sources: a
    source whose threads lose every race for the jobs gets none until the periodic wake-up,
    and their barrier waits for all three.)"""
    monkeypatch.setattr(fetch_mod, "WAKE", 3600.0)
    monkeypatch.setattr(fetch_mod, "WINDOW_SLOTS", 2)
    monkeypatch.setattr(fetch_mod, "FETCH_IDS", 16)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            scenario(key, chunks)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "a waiter was not woken: the scenario hangs"
    assert outcome == [None], outcome

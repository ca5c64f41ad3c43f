"""StallGuard cancels a call only while a read waits too long, never for the caller's own
time between reads."""

from __future__ import annotations

import threading
import time

from samizdat.rpc.stall import StallGuard


class FakeCall:
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


def test_a_read_that_waits_too_long_is_cancelled() -> None:
    call = FakeCall()
    guard = StallGuard(call, limit=0.2)
    guard.waiting()
    assert call.cancelled.wait(2.0)
    assert guard.fired
    guard.close()


def test_time_between_reads_does_not_count() -> None:
    call = FakeCall()
    guard = StallGuard(call, limit=0.2)
    for _ in range(3):
        guard.waiting()
        time.sleep(0.05)  # the message arrives in time
        guard.received()
        time.sleep(0.3)  # the caller is busy (writing, rate limiting): longer than the limit
    guard.close()
    assert not call.cancelled.is_set() and not guard.fired


def test_closed_guard_never_fires() -> None:
    call = FakeCall()
    guard = StallGuard(call, limit=0.1)
    guard.waiting()
    guard.close()
    time.sleep(0.3)
    assert not call.cancelled.is_set()

"""Giving up on a streaming call whose peer has gone silent.

A connection into a black hole (a seized node's traffic dropped by a firewall) is not reset:
the call would wait for its deadline or for HTTP/2 keepalive to notice, tens of seconds or
more. A `StallGuard` cancels the call when a single wait for its next message lasts longer
than STALL_SECONDS; time the caller spends between messages (writing, rate limiting) does not
count.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

STALL_SECONDS = 15.0


class Cancellable(Protocol):
    def cancel(self) -> bool: ...


class StallGuard:
    """Watches one call; `waiting()` before each read, `received()` after, `close()` at
    the end. `fired` tells whether it cancelled the call.

    Marking a read costs an uncontended lock and no wake-up: one watchdog thread for the
    whole process looks at every open guard a few times per limit (`_Watchdog`), so a
    stalled read is cancelled between `limit` and 1.25 x `limit` after it started."""

    def __init__(self, call: Cancellable, limit: float = STALL_SECONDS) -> None:
        self.call, self.limit = call, limit
        self.fired = False
        self._since: float | None = None
        self._done = False
        self._lock = threading.Lock()
        _WATCHDOG.add(self)

    def waiting(self) -> None:
        with self._lock:
            self._since = time.monotonic()

    def received(self) -> None:
        with self._lock:
            self._since = None

    def close(self) -> None:
        with self._lock:
            self._done = True
        _WATCHDOG.remove(self)

    def _check(self, now: float) -> bool:
        """Cancel the call if its current read has waited `limit`; True once the guard has
        nothing more to watch (fired or closed)."""
        with self._lock:
            if not self._done and self._since is not None and now - self._since >= self.limit:
                self.fired = self._done = True
                self.call.cancel()
            return self._done


class _Watchdog:
    """The one thread that checks every open StallGuard: it sleeps while there is none, else
    wakes every quarter of the shortest limit among them."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._guards: set[StallGuard] = set()
        self._thread: threading.Thread | None = None

    def add(self, guard: StallGuard) -> None:
        with self._cv:
            self._guards.add(guard)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stall-guard", daemon=True)
                self._thread.start()
            self._cv.notify()

    def remove(self, guard: StallGuard) -> None:
        with self._cv:
            self._guards.discard(guard)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._guards:
                    self._cv.wait()
                guards = list(self._guards)
            now = time.monotonic()
            finished = [g for g in guards if g._check(now)]
            with self._cv:
                self._guards.difference_update(finished)
                if self._guards:
                    self._cv.wait(min(g.limit for g in self._guards) / 4)


_WATCHDOG = _Watchdog()

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
    the end. `fired` tells whether it cancelled the call."""

    def __init__(self, call: Cancellable, limit: float = STALL_SECONDS) -> None:
        self.call, self.limit = call, limit
        self.fired = False
        self._since: float | None = None
        self._done = False
        self._cv = threading.Condition()
        threading.Thread(target=self._watch, name="stall-guard", daemon=True).start()

    def _watch(self) -> None:
        with self._cv:
            while not self._done:
                if self._since is None:
                    self._cv.wait()
                    continue
                left = self._since + self.limit - time.monotonic()
                if left <= 0:
                    self.fired = True
                    self.call.cancel()
                    return
                self._cv.wait(left)

    def waiting(self) -> None:
        with self._cv:
            self._since = time.monotonic()
            self._cv.notify()

    def received(self) -> None:
        with self._cv:
            self._since = None

    def close(self) -> None:
        with self._cv:
            self._done = True
            self._cv.notify()

"""Answers that cost O(stored records) to build, built once and shared by every caller.

A stranger may call GetStatus in a loop (it is public); at 10,000 snapshots its snapshot list
cost the node ~70 ms of CPU a call (bench/README, "GetStatus at 10,000 snapshots"). The list
depends only on what the node stores and its config, so `SharedBuild` builds it once per change
of those (a generation the store counts) and hands every caller the same value."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedBuild(Generic[T]):
    """`build()` shared by concurrent callers, rebuilt only when `key()` changes.

    Contract: `get()` returns the result of a build that started after `key()` last changed
    before the call, or after the call arrived: as fresh as building it in the call. At most
    one build runs at a time; callers arriving meanwhile wait for it and take its result, so a
    flood of calls costs one build per change of the key, not one per call. `key()` must be
    cheap and read before the state the build reads (a change during a build then shows as a
    new key next time). A build that raises is not kept; its callers see the error."""

    def __init__(
        self, key: Callable[[], object], build: Callable[[], T], on_build: Callable[[], None]
    ) -> None:
        self._key, self._build, self._on_build = key, build, on_build
        self._cond = threading.Condition()
        self._building = False
        self._started = 0  # builds started so far
        self._value: tuple[object, int, T] | None = None  # (key, build number, value)

    def get(self) -> T:
        with self._cond:
            arrived = self._started
            while True:
                value = self._value
                if value is not None and value[1] > arrived:  # started after this call came
                    return value[2]
                if not self._building:
                    key = self._key()
                    if value is not None and value[0] == key:
                        return value[2]
                    self._building = True
                    self._started += 1
                    number = self._started
                    break
                self._cond.wait()
        kept: tuple[object, int, T] | None = None
        try:
            self._on_build()
            result = self._build()
            kept = (key, number, result)
            return result
        finally:
            with self._cond:
                self._building = False
                if kept is not None:
                    self._value = kept
                self._cond.notify_all()

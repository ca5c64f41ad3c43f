"""PutChunks' hand-written parse runs in a worker thread, never on the node's event loop: a
writer's message that is costly to parse (many tiny entries) cannot hold up the node's other
calls. A parse failure is an undecodable message, as for any other deserializer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from samizdat.server.admission import UNDECODABLE, OffLoop, _BadMessage, _checked, _safe


async def _messages(*raw: bytes) -> AsyncIterator[bytes]:
    for r in raw:
        yield r


def test_off_loop_parse_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def parse(raw: bytes) -> bytes:
        threads.append(threading.get_ident())
        if raw == b"bad":
            raise ValueError("malformed")
        return raw.upper()

    async def run() -> tuple[list[bytes], int]:
        loop_thread = threading.get_ident()
        parsed = [m async for m in _checked(_messages(b"a", b"b"), _safe(parse))]
        with pytest.raises(_BadMessage):
            async for _ in _checked(_messages(b"c", b"bad"), _safe(parse)):
                pass
        return parsed, loop_thread

    parsed, loop_thread = asyncio.run(run())
    assert parsed == [b"A", b"B"]
    assert len(threads) == 4 and loop_thread not in threads


def test_off_loop_is_still_a_deserializer() -> None:
    marked = OffLoop(bytes.upper)
    assert marked(b"x") == b"X"
    assert _safe(OffLoop(lambda raw: raw[10]))(b"") is UNDECODABLE

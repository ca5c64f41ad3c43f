"""PutChunks' hand-written parse never runs on the node's event loop: admission hands each
message on unparsed (a `Deferred`) and the servicer parses it in the worker-thread step that
stores it, so a writer's message that is costly to parse (many tiny entries) cannot hold up
the node's other calls. A parse failure is an undecodable message, as for any other
deserializer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from samizdat.server.admission import Deferred, OffLoop, _BadMessage, _checked


async def _messages(*raw: bytes) -> AsyncIterator[bytes]:
    for r in raw:
        yield r


def test_off_loop_messages_are_parsed_where_the_servicer_steps_never_on_the_loop() -> None:
    threads: list[int] = []

    def parse(raw: bytes) -> bytes:
        threads.append(threading.get_ident())
        if raw == b"bad":
            raise ValueError("malformed")
        return raw.upper()

    async def run() -> tuple[list[bytes], int]:
        loop_thread = threading.get_ident()
        deferred = [m async for m in _checked(_messages(b"a", b"b", b"bad"), parse)]
        assert all(isinstance(m, Deferred) for m in deferred) and threads == []
        with pytest.raises(RuntimeError, match="event loop"):
            deferred[0].parse()
        parsed = [await asyncio.to_thread(m.parse) for m in deferred[:2]]
        with pytest.raises(_BadMessage):
            await asyncio.to_thread(deferred[2].parse)
        return parsed, loop_thread

    parsed, loop_thread = asyncio.run(run())
    assert parsed == [b"A", b"B"]
    assert len(threads) == 3 and loop_thread not in threads


def test_off_loop_is_still_a_deserializer() -> None:
    assert OffLoop(bytes.upper)(b"x").parse() == b"X"
    with pytest.raises(_BadMessage):
        OffLoop(lambda raw: raw[10])(b"").parse()

"""Admission's bookkeeping of a stranger lane's places, in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from samizdat.server.admission import STRANGER, _Displaced, _read_request, _Slot


async def _one(message: object) -> AsyncIterator[object]:
    yield message


def test_a_call_displaced_as_its_request_came_goes_no_further() -> None:
    """Displacement frees the place of a call still waiting for its request; if the request
    arrives in the same loop turn, the call must not go on uncounted (review note on
    admission2: it did)."""
    waiting: dict[_Slot, None] = {}
    slot = _Slot(((STRANGER, ""),), False, waiting)
    slot.displaced = slot.released = True  # what _take does to the oldest waiting call
    with pytest.raises(_Displaced):
        asyncio.run(_read_request(_one("request"), slot))
    assert not waiting

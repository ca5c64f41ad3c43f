"""Every error's reason code survives a real gRPC call from a node's edge (`abort_args`, which
every servicer and the admission layer end a failed call with) to the client's mapping
(`error_from_rpc`) if a node may send it; a made-up, missing or inconsistent code, or one only
the client raises about its own machine, becomes the safe PeerUnavailable or PeerMisbehaved.
docs/json.md lists every code."""

from __future__ import annotations

import asyncio
import re
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from samizdat.core import errors as e
from samizdat.rpc.errors import NODE_REASONS, REASON_METADATA, abort_args, error_from_rpc

_METHOD = "/samizdat.test.Errors/Raise"
# Besides a reason code, the request may name a raw ending: status name, then the metadata.
_RAW = {
    b"raw:made-up": (grpc.StatusCode.NOT_FOUND, ((REASON_METADATA, "no_such_reason"),)),
    b"raw:none": (grpc.StatusCode.DATA_LOSS, ()),
    b"raw:status-mismatch": (grpc.StatusCode.DATA_LOSS, ((REASON_METADATA, "usage"),)),
    b"raw:base-class-name": (grpc.StatusCode.NOT_FOUND, ((REASON_METADATA, "ChunkNotFound"),)),
    b"raw:escapes": (grpc.StatusCode.INVALID_ARGUMENT, ((REASON_METADATA, "usage"),)),
}
_ESCAPES = "\x1b[2K\r\x1b[1A\x1b[2Ksnapshot 5d0c (sequence 8) stored on n1\n"


async def _raise(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    if request in _RAW:
        code, metadata = _RAW[request]
        words = _ESCAPES if request == b"raw:escapes" else "a node's own words"
        await context.abort(code, words, metadata)
    cls = e.error_class(request.decode())
    assert cls is not None
    await context.abort(*abort_args(cls.from_message("what the node said")))
    return b""


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    """A real gRPC server on loopback (its own event loop thread) and a channel to it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "samizdat.test.Errors", {"Raise": grpc.unary_unary_rpc_method_handler(_raise)}
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    chan = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield chan
    finally:
        chan.close()
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _call(channel: grpc.Channel, request: bytes) -> e.SamizdatError:
    call = channel.unary_unary(_METHOD)
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return error_from_rpc(info.value, "n1")


@pytest.mark.parametrize("cls", e.error_classes(), ids=lambda c: c.reason)
def test_every_reason_round_trips_node_to_client(
    channel: grpc.Channel, cls: type[e.SamizdatError]
) -> None:
    err = _call(channel, cls.reason.encode())
    assert err.from_node == "n1"
    if cls.status is e.Status.INTERNAL:  # the node's own failure: try another node
        assert type(err) is e.PeerUnavailable
        assert str(err) == "node n1 is unreachable or failed: what the node said"
    elif cls.reason not in NODE_REASONS:  # about the client's machine: never a node's word
        assert type(err) is e.PeerMisbehaved
        assert str(err) == (
            f"node n1 answered against the protocol (reason {cls.reason!r} with status "
            f"{cls.status.value}): what the node said"
        )
    else:
        assert type(err) is cls
        assert "what the node said" in str(err) and "n1" in str(err)
        assert err.reason == cls.reason


def test_a_node_sends_none_of_the_clients_own_errors() -> None:
    for cls in (e.StaleIdCache, e.StaleFilesCache, e.KeyFileError, e.ConfigError, e.WrongKey):
        assert cls.reason not in NODE_REASONS
    assert {e.UsageError.reason, e.AccessDenied.reason, e.NodeBusy.reason} <= NODE_REASONS


@pytest.mark.parametrize("ending", sorted(set(_RAW) - {b"raw:escapes"}))
def test_a_made_up_missing_or_inconsistent_reason_is_a_generic_failure(
    channel: grpc.Channel, ending: bytes
) -> None:
    err = _call(channel, ending)
    if ending == b"raw:status-mismatch":
        assert type(err) is e.PeerMisbehaved
        assert str(err).endswith("with status DATA_LOSS): a node's own words")
    else:
        assert type(err) is e.PeerUnavailable
        assert str(err) == "node n1 is unreachable or failed: a node's own words"


def test_a_nodes_words_reach_the_client_without_terminal_escapes(
    channel: grpc.Channel,
) -> None:
    err = _call(channel, b"raw:escapes")
    assert type(err) is e.UsageError
    assert r"\x1b[2K\r\x1b[1A\x1b[2Ksnapshot" in str(err) and str(err).endswith(r"n1\n")
    assert str(err).isprintable()


def test_a_node_that_cannot_be_reached_is_unavailable() -> None:
    with grpc.insecure_channel("127.0.0.1:1") as chan:
        err = _call(chan, b"usage")
    assert type(err) is e.PeerUnavailable


def test_reason_codes_are_unique_words_and_documented() -> None:
    classes = e.error_classes()
    assert len({c.reason for c in classes}) == len(classes)
    assert all(re.fullmatch(r"[a-z][a-z_]*", c.reason) for c in classes)
    doc = (Path(__file__).parents[2] / "docs" / "json.md").read_text()
    rows = {
        m[0]: (m[1], m[2], int(m[3]))
        for m in re.findall(r"^\| `(\w+)` \| `(\w+)` \| (\w+) \| (\d+) \|", doc, re.M)
    }
    assert rows == {c.reason: (c.__name__, c.status.value, int(c.exit_code)) for c in classes}


def test_a_subclass_without_its_own_reason_is_refused() -> None:
    with pytest.raises(TypeError, match="must set its own reason"):
        type("Unnamed", (e.UsageError,), {})
    with pytest.raises(TypeError, match="must set its own reason"):  # an attribute is not enough
        type("Plain", (e.UsageError,), {"reason": "plain"})
    with pytest.raises(TypeError, match="is taken"):
        types.new_class("Twin", (e.UsageError,), {"reason": "usage"})

"""Strangers and a rogue peer holding calls open against a node, without a thread per call.

`HoldCalls(address).start(kind, n, ...)` opens `n` calls of one kind on an asyncio loop of its
own and keeps them open until `close()`:

- "watch": grpc.health.v1 Watch streams, no credentials;
- "silent_put": PutChunks streams that never send a message, with a writer token signed by a
  fresh key that no node hosts (self-minted);
- "no_request": GetStatus calls whose request never arrives (sent as a client stream that
  never yields);
- "unread_get": GetChunks streams for `ids` that are never read, with `token` (a configured
  peer's);

and, as an attacker's loop does, re-opened at once each time the node ends one (after 50 ms
when it was refused or displaced as busy), with `token` if given:

- "watch_loop": health Watch streams;
- "withheld": GetStatus calls whose request never comes;
- "withheld_put": PutCustodyRecord calls whose request never comes.

`outcomes()` tells, per kind, how the calls ended so far (status code name, or "open");
`ends` counts the endings of the re-opened kinds, as "kind:CODE".
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from samizdat.core.keys import ArchiveKey
from samizdat.core.tokens import archive_token
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.channel import TLS_SERVER_NAME, fetch_pinned_cert
from samizdat.rpc.limits import AUTH_METADATA, CHANNEL_OPTIONS
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb

KINDS = (
    "watch",
    "silent_put",
    "no_request",
    "unread_get",
    "watch_loop",
    "withheld",
    "withheld_put",
)
WITHHELD = {
    "withheld": "/samizdat.v1.NodeService/GetStatus",
    "withheld_put": "/samizdat.v1.CustodyService/PutCustodyRecord",
}
CONNECTIONS = 16  # calls spread over this many connections per kind


class HoldCalls:
    def __init__(self, address: str) -> None:
        self.address = NodeAddress.parse(address)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.release = asyncio.Event()
        self.tasks: dict[str, list[asyncio.Task[str]]] = {k: [] for k in KINDS}
        self.channels: list[grpc.aio.Channel] = []
        self.ends: Counter[str] = Counter()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def start(self, kind: str, n: int, token: bytes = b"", ids: list[bytes] = ()) -> None:  # type: ignore[assignment]
        self._run(self._start(kind, n, token, list(ids)))

    async def _start(self, kind: str, n: int, token: bytes, ids: list[bytes]) -> None:
        pem = await asyncio.to_thread(fetch_pinned_cert, self.address)
        creds = grpc.ssl_channel_credentials(root_certificates=pem)
        options = [
            *CHANNEL_OPTIONS,
            ("grpc.ssl_target_name_override", TLS_SERVER_NAME),
            ("grpc.use_local_subchannel_pool", 1),  # one connection per channel
        ]
        channels = [
            grpc.aio.secure_channel(self.address.hostport, creds, options=options)
            for _ in range(CONNECTIONS)
        ]
        self.channels += channels
        if kind == "silent_put":
            token = archive_token(ArchiveKey.generate(), pb.ROLE_WRITER, self.address.node_id)
        metadata = [(AUTH_METADATA, token)] if token else []
        for i in range(n):
            call = self._call(kind, channels[i % CONNECTIONS], metadata, ids)
            self.tasks[kind].append(self.loop.create_task(call))
        await asyncio.sleep(0)

    async def _never(self) -> AsyncIterator[bytes]:
        await self.release.wait()
        return
        yield b""

    async def _call(
        self, kind: str, channel: grpc.aio.Channel, metadata: list[Any], ids: list[bytes]
    ) -> str:
        if kind in ("watch_loop", *WITHHELD):
            return await self._loop(kind, channel, metadata)
        try:
            if kind == "watch":
                watch = channel.unary_stream(
                    "/grpc.health.v1.Health/Watch",
                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                )
                call = watch(health_pb2.HealthCheckRequest())
                await call.read()  # the first status, then hold
                await self.release.wait()
                call.cancel()
            elif kind == "unread_get":
                get = channel.unary_stream(
                    "/samizdat.v1.ChunkService/GetChunks",
                    request_serializer=npb.GetChunksRequest.SerializeToString,
                )
                call = get(npb.GetChunksRequest(ids=ids), metadata=metadata)
                await call.initial_metadata()
                done = asyncio.ensure_future(call.code())
                await asyncio.wait(
                    [done, asyncio.ensure_future(self.release.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done.done():
                    call.cancel()
                    return "open"
                return (await call.code()).name
            else:
                path = (
                    "/samizdat.v1.ChunkService/PutChunks"
                    if kind == "silent_put"
                    else "/samizdat.v1.NodeService/GetStatus"
                )
                call = channel.stream_unary(path)(self._never(), metadata=metadata)
                await call
            return "open"
        except grpc.aio.AioRpcError as e:
            return e.code().name
        except asyncio.CancelledError:
            return "open"

    async def _loop(self, kind: str, channel: grpc.aio.Channel, metadata: list[Any]) -> str:
        """Calls of `kind` re-opened as soon as the node ends one, until `close()`."""
        while not self.release.is_set():
            try:
                if kind == "watch_loop":
                    call = channel.unary_stream(
                        "/grpc.health.v1.Health/Watch",
                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                    )(health_pb2.HealthCheckRequest(), metadata=metadata)
                    await call.read()  # the first status, then hold until the node ends it
                    done = asyncio.ensure_future(call.code())
                    stop = asyncio.ensure_future(self.release.wait())
                    await asyncio.wait([done, stop], return_when=asyncio.FIRST_COMPLETED)
                    if not done.done():
                        call.cancel()
                        done.cancel()
                        break
                    stop.cancel()
                    self.ends[f"{kind}:{done.result().name}"] += 1
                else:
                    await channel.stream_unary(WITHHELD[kind])(self._never(), metadata=metadata)
            except grpc.aio.AioRpcError as e:
                self.ends[f"{kind}:{e.code().name}"] += 1
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                break
        return "open"

    def ended(self) -> Counter[str]:
        """A copy of `ends`: how the re-opened kinds' calls ended so far."""

        async def copy() -> Counter[str]:
            return Counter(self.ends)

        return self._run(copy())  # type: ignore[no-any-return]

    def outcomes(self) -> dict[str, Counter[str]]:
        """Per kind, how many calls ended with which status ("open": still held)."""

        async def collect() -> dict[str, Counter[str]]:
            return {
                kind: Counter(t.result() if t.done() else "open" for t in tasks)
                for kind, tasks in self.tasks.items()
                if tasks
            }

        return self._run(collect())  # type: ignore[no-any-return]

    def close(self) -> None:
        async def stop() -> None:
            self.release.set()
            tasks = [t for kind in self.tasks.values() for t in kind]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=5)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for channel in self.channels:
                await channel.close(grace=None)

        try:
            self._run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

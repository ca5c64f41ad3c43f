"""Admission control: who may hold what on a node, decided before anything waits on them.

The node serves from an asyncio gRPC server: a call waiting for a client (its request, its next
message, room to write) is a coroutine, never a thread. The blocking work of the servicers
(RocksDB, hashing) runs in a small thread pool, one short step at a time. Every call passes
through `Admission` first, which, from the call's metadata alone:

1. tells the caller's class: a configured, unrevoked peer (by node id), a holder of a hosted
   archive's key (by archive), or a stranger (anything else: no token, a token that does not
   verify, a key nobody configured);
2. refuses a stranger at once on every method but the public ones (PUBLIC: status, the
   listings, publishing a custody record, health), with the precise error, before reading
   any message: a call refused this way is handled as client-streaming, so its request is
   never waited for;
3. caps what each caller holds at a time (LIMITS: calls, and streams among them; the archive
   key and each member key it certified have budgets of their own); over the cap a call is
   refused at once (RESOURCE_EXHAUSTED, "node busy"), except that in a full stranger lane it
   ends the lane's oldest call still waiting for its request, and takes its place. Every call
   counts from its headers, before its request is read;
4. bounds what unread requests pin: gRPC takes up to a message (the receive limit, 4 MiB)
   of every admitted call's request into memory whether or not it is read yet (HTTP/2 windows
   that BDP probing grows), so each caller pins at most its calls cap x 4 MiB (strangers
   together: 32 MiB). Unary requests are read here, as a one-message client stream, and must
   arrive within REQUEST_WAIT of the headers, else the call ends (DEADLINE_EXCEEDED) and
   frees its slot (review R1 of 2026-12-01: when a unary call was counted only once its
   request had arrived, a stranger sending requests all but their last byte pinned 4 MiB per
   stream, on as many streams and connections as it liked);
5. keeps a reserve: strangers run on at most STRANGER_WORKERS of the pool's WORKERS threads,
   so peers and archive holders always find threads free;
6. bounds time: a stream whose client sends nothing for READ_IDLE is ended
   (DEADLINE_EXCEEDED); a health Watch ends after WATCH_SECONDS;
7. answers an undecodable message with INVALID_ARGUMENT, counted in
   `samizdat_rpc_rejected_total{method,reason}` rather than logged; a deserializer marked
   `OffLoop` (PutChunks' hand-written parse) is left to the servicer's worker-thread step
   (`Deferred`), never run on the loop.

Memory per caller is bounded by its calls cap: every answer (a unary one too) is written
inside the call's slot, so a call whose client does not read holds at most the message being
written (<= 3 MiB a GetChunks part or a listing page) and keeps its slot while gRPC holds that
message: until the client takes it, cancels, or its connection ends (node.CONNECTION_AGE +
CONNECTION_GRACE). gRPC offers no way to end such a call sooner: it keeps the message until it
is sent, cannot send the call's status behind it, and grpc.aio cannot cancel a call. Review R21
of 2026-12-02: when a unary answer was handed to gRPC after the slot was released, a stranger
that granted no HTTP/2 window pinned every answer, 32 per connection on as many connections as
it liked (6 connections of unread custody listings: node RSS 100 -> 1,537 MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc

from samizdat.core.errors import NodeBusy, SamizdatError, UsageError
from samizdat.core.tokens import Caller
from samizdat.rpc.errors import Metadata, abort_args
from samizdat.rpc.limits import AUTH_METADATA
from samizdat.server.access import caller_from_metadata, require_reader, require_writer
from samizdat.server.runtime import NodeRuntime
from samizdat.v1 import records_pb2 as pb

# grpc ships no type information (no stubs installed), so this alias is Any to mypy.
Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
WORKERS = 16
STRANGER_WORKERS = 4
READ_IDLE = 60.0
REQUEST_WAIT = 10.0  # a unary request follows its headers at once; waiting longer only pins memory
WATCH_SECONDS = 60.0
# Methods anyone may call (signed records are public; status hides topology from strangers);
# on the listings, a caller that presents a token must pass the rules (a revoked peer).
LISTINGS = frozenset({"ListSnapshots", "ListCustodyRecords"})
PUBLIC = LISTINGS | {"GetStatus", "PutCustodyRecord", "Check", "Watch"}
WRITES = frozenset({"PutChunks", "PutSnapshot"})


@dataclass(frozen=True)
class Limits:
    """At most `calls` calls of one caller at a time, of which at most `streams` streams."""

    calls: int
    streams: int


STRANGER, PEER, ARCHIVE, MEMBER = "stranger", "peer", "archive key", "member key"
WATCHER, PUBLISHER = "stranger watching", "stranger publishing"
MEMBERS = "archive's member keys"
# Strangers share one budget per lane: they cannot be told apart (loopback, NAT). Health
# Watch streams (held a minute each) and custody records offered without a token have lanes of
# their own, so that holding the strangers' calls keeps out neither a health check nor a
# revocation (review R10). In a full stranger lane a new call ends the lane's oldest call whose
# request has not come yet (review R19): a caller that sends its request with its headers, as
# every client does, is never kept out by calls that withhold theirs.
# Holders of an archive's keys: the archive key (offline, one holder) has a budget of its own,
# and so has each member key it certified (review R15: a seized writer key exhausts only its
# own budget, never the archive key's, so its revocation always gets in); member keys of one
# archive together hold at most MEMBERS. Their number is the archive key's to choose (each
# needs its certificate), and a revoked one is refused before it counts.
# Each admitted call may pin a message (4 MiB): a caller pins at most calls x 4 MiB (strangers,
# all lanes: 64 MiB; an archive's keys: (32 + 64) x 4 = 384 MiB). What members run at once is
# small: restore 2 streams per node, a puller 4, push 1 and its asks.
LIMITS = {
    STRANGER: Limits(8, 8),
    WATCHER: Limits(4, 4),
    PUBLISHER: Limits(4, 0),
    PEER: Limits(16, 8),
    ARCHIVE: Limits(32, 16),
    MEMBER: Limits(32, 16),
    MEMBERS: Limits(64, 32),
}
STRANGER_LANES = {"Watch": WATCHER, "PutCustodyRecord": PUBLISHER}
# A unary answer this small frees its call's place once handed to gRPC, before the client
# takes it: what it pins is small beside what the caller's connection costs the node anyway
# (~45 KiB; 32 calls a connection), and a client that never reads (no HTTP/2 window) cannot
# hold a lane with it until its connection ends (review R27: 4 unread answers of a keyless
# PutCustodyRecord kept every published revocation out for ~70 minutes). Larger answers
# keep their place until taken (review R21).
SMALL_ANSWER_BYTES = 64 * 1024
DISPLACING = frozenset({STRANGER, WATCHER, PUBLISHER})  # lanes where a newcomer may displace


class Undecodable:
    """Stands for a message that did not decode (the deserializer never raises)."""


UNDECODABLE = Undecodable()


@dataclass(frozen=True)
class OffLoop:
    """A client-streaming method's request deserializer too costly for the event loop (a
    hand-written parse of megabytes, whose cost a writer's message of tiny entries drives up):
    admission hands each message to the servicer unparsed, as a `Deferred`, and the servicer
    parses it in the worker-thread step that handles the message (`Deferred.parse`), so the
    node keeps answering every other call meanwhile and each message costs one thread
    hand-off, not two. A failure is an undecodable message, as for any deserializer."""

    parse: Callable[[bytes], Any]

    def __call__(self, raw: bytes) -> Deferred:  # still a deserializer where no Admission runs
        return Deferred(raw, self.parse)


@dataclass(frozen=True, slots=True)
class Deferred:
    """A received message and the parse that `OffLoop` keeps off the event loop."""

    raw: bytes
    parser: Callable[[bytes], Any]

    def parse(self) -> Any:
        """The parsed message. Raises RuntimeError on the event loop (a servicer's mistake)
        and _BadMessage (INVALID_ARGUMENT "undecodable message", counted) for bytes that do
        not parse."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("an OffLoop message parsed on the event loop")
        try:
            return self.parser(self.raw)
        except Exception:  # whatever the parser raises for hostile bytes
            raise _BadMessage from None


class _Abort(Exception):
    """Raised by `SyncContext.abort` in a pool thread; the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata) -> None:
        super().__init__(details)
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


class SyncContext:
    """The part of grpc.ServicerContext the synchronous servicers use, for a pool thread."""

    def __init__(self, context: Ctx) -> None:
        self._metadata = tuple(context.invocation_metadata() or ())
        self._peer = context.peer()

    def invocation_metadata(self) -> Sequence[tuple[str, str | bytes]]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata = ()) -> None:
        raise _Abort(code, details, trailing_metadata)


DISPLACED = NodeBusy(
    "node busy: the call's request did not come before newer calls needed its place; retry"
)
Budget: TypeAlias = tuple[str, str]


def _budgets(who: Budget) -> tuple[Budget, ...]:
    """The budgets a call of `who` counts in: its own, and a member key's archive's too."""
    if who[0] == MEMBER:
        return who, (MEMBERS, who[1].split("/", 1)[0])
    return (who,)


@dataclass(eq=False)
class _Slot:
    """An admitted call's place in its caller's budgets, until it ends or is displaced."""

    budgets: tuple[Budget, ...]
    streaming: bool
    # Stranger lanes: the lane's calls still waiting for their request, oldest first.
    waiting: dict[_Slot, None] | None
    deadline: asyncio.Timeout | None = None
    released: bool = False
    displaced: bool = False


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception:  # protobuf raises DecodeError, and others for some inputs
            return UNDECODABLE

    return decode


class Admission(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The node's one interceptor: classify, refuse or admit, bound, time (see module doc)."""

    def __init__(self, node: NodeRuntime) -> None:
        self.node = node
        self.held: Counter[tuple[str, str]] = Counter()
        self.streams: Counter[tuple[str, str]] = Counter()
        self.waiting: dict[Budget, dict[_Slot, None]] = {}
        self.stranger_workers = asyncio.Semaphore(STRANGER_WORKERS)

    # ------------------------------------------------------------ who is it

    def classify(self, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> tuple[str, str]:
        """(class, key) of the caller; raises SamizdatError for a stranger on a member-only
        method (the error the servicer would give, before any message is read)."""
        has_token = any(k == AUTH_METADATA for k, _ in metadata)
        stranger = STRANGER_LANES.get(method, STRANGER), ""
        try:
            if not has_token and method in PUBLIC:
                return stranger
            caller = caller_from_metadata(metadata, self.node.config, self.node.node_id)
            if method in WRITES:
                require_writer(caller, self.node.config, caller.archive_id, self.node.custody)
            else:
                require_reader(caller, self.node.config, self.node.custody)
        except SamizdatError:
            if method in PUBLIC and method not in LISTINGS:
                return stranger
            raise
        return _member(caller)

    # -------------------------------------------------------------- wrapping

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        metadata = tuple(details.invocation_metadata or ())
        streaming = handler.request_streaming or handler.response_streaming
        try:
            who = self.classify(method, metadata)
        except SamizdatError as e:
            return self._refuse(method, handler, e, "refused")
        if self._over(who, streaming) and self._displaceable(who, streaming) is None:
            return self._refuse(method, handler, self._busy(who, streaming), "busy")
        return self._admit(method, handler, who, streaming)

    # ------------------------------------------------------------ budgets

    def _full(self, budget: Budget, streaming: bool, freed: _Slot | None = None) -> bool:
        """Whether `budget` has no room for a call (once `freed` has left it, if given)."""
        limits = LIMITS[budget[0]]
        calls, streams = self.held[budget], self.streams[budget]
        if freed is not None and budget in freed.budgets:
            calls, streams = calls - 1, streams - freed.streaming
        return calls >= limits.calls or (streaming and streams >= limits.streams)

    def _over(self, who: Budget, streaming: bool) -> bool:
        return any(self._full(b, streaming) for b in _budgets(who))

    def _busy(self, who: Budget, streaming: bool) -> NodeBusy:
        """The refusal naming the budget that is full (a member key's, or its archive's)."""
        full = next((b for b in _budgets(who) if self._full(b, streaming)), who)
        return NodeBusy(f"node busy: too many calls from this {full[0]} at once; retry later")

    def _displaceable(self, who: Budget, streaming: bool) -> _Slot | None:
        """In a full stranger lane, its oldest call still waiting for its request whose end
        makes room for a new call; None elsewhere."""
        if who[0] not in DISPLACING:
            return None
        for slot in self.waiting.get(who, {}):
            if not self._full(who, streaming, freed=slot):
                return slot
        return None

    def _take(self, who: Budget, streaming: bool) -> _Slot | None:
        """Count a call of `who` in its budgets, displacing (ending) a stranger lane's oldest
        call still waiting for its request if that lane is full; None if there is no room."""
        if self._over(who, streaming):
            oldest = self._displaceable(who, streaming)
            if oldest is None:
                return None
            oldest.displaced = True
            self._give(oldest)
            if oldest.deadline is not None:
                oldest.deadline.reschedule(-1.0)  # its request wait ends on the next loop turn
        waiting = self.waiting.setdefault(who, {}) if who[0] in DISPLACING else None
        slot = _Slot(_budgets(who), streaming, waiting)
        for budget in slot.budgets:
            self.held[budget] += 1
            self.streams[budget] += streaming
        return slot

    def _give(self, slot: _Slot) -> None:
        """Free `slot`'s place in its budgets (once)."""
        if slot.waiting is not None:
            slot.waiting.pop(slot, None)
        if slot.released:
            return
        slot.released = True
        for budget in slot.budgets:
            self.held[budget] -= 1
            self.streams[budget] -= slot.streaming
            if self.held[budget] <= 0:
                del self.held[budget]
            if self.streams[budget] <= 0:
                del self.streams[budget]

    def _refuse(
        self,
        method: str,
        handler: grpc.RpcMethodHandler,
        error: SamizdatError,
        reason: str,
    ) -> grpc.RpcMethodHandler:
        """A handler that ends the call at once without waiting for its request."""
        self.node.metrics.rejected_calls.labels(method, reason).inc()
        self.node.metrics.rpc_seconds.labels(method, "error").observe(0.0)

        async def refuse(_requests: Any, context: Ctx) -> None:
            await context.abort(*abort_args(error))

        if handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        return grpc.stream_unary_rpc_method_handler(refuse)

    def _admit(
        self, method: str, handler: grpc.RpcMethodHandler, who: tuple[str, str], streaming: bool
    ) -> grpc.RpcMethodHandler:
        started = time.perf_counter()
        observe = self.node.metrics.rpc_seconds
        rejected = self.node.metrics.rejected_calls
        workers = self.stranger_workers if who[0] in DISPLACING else None

        @contextlib.asynccontextmanager
        async def accounted(context: Ctx) -> AsyncIterator[_Slot]:
            """Counts the call from here (before its request is read) until it ends."""
            slot = self._take(who, streaming)
            if slot is None:
                rejected.labels(method, "busy").inc()
                await context.abort(*abort_args(self._busy(who, streaming)))
                raise AssertionError("unreachable: abort raises")
            outcome = "error"
            try:
                yield slot
                outcome = "ok"
            except _Abort as e:
                await context.abort(e.code, e.details, e.trailing_metadata)
            except _Idle as e:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(e))
            except _BadMessage:
                rejected.labels(method, "undecodable").inc()
                await context.abort(*abort_args(UsageError("undecodable message")))
            except _Displaced:
                rejected.labels(method, "displaced").inc()
                await context.abort(*abort_args(DISPLACED))
            finally:
                self._give(slot)
                observe.labels(method, outcome).observe(time.perf_counter() - started)

        async def blocking(fn: Callable[..., Any], *args: Any) -> Any:
            if workers is None:
                return await asyncio.to_thread(fn, *args)
            async with workers:
                return await asyncio.to_thread(fn, *args)

        deserializer = handler.request_deserializer
        off_loop = deserializer.parse if isinstance(deserializer, OffLoop) else None
        if off_loop is not None and not handler.stream_unary:
            raise TypeError(f"{method}: only client-streaming requests parse off the loop")
        kw = {
            "request_deserializer": None if off_loop else _safe(deserializer),
            "response_serializer": handler.response_serializer,
        }
        # Every call is served as a bidirectional stream (the same bytes on the wire): its
        # request is read, and its answer written, inside `accounted`.
        if handler.unary_unary or handler.unary_stream:
            behavior = handler.unary_unary or handler.unary_stream
            generator = inspect.isgeneratorfunction(behavior)

            if handler.unary_unary:

                async def unary(requests: Any, context: Ctx) -> None:
                    async with accounted(context) as slot:
                        request = await _read_request(requests, slot)
                        if asyncio.iscoroutinefunction(behavior):
                            answer = await behavior(request, context)
                        else:
                            answer = await blocking(behavior, request, SyncContext(context))
                        if _size(answer) <= SMALL_ANSWER_BYTES:
                            self._give(slot)  # _give frees a slot once: the end is a no-op
                        await _write(context, answer)

                return grpc.stream_stream_rpc_method_handler(unary, **kw)

            async def server_stream(requests: Any, context: Ctx) -> None:
                async with accounted(context) as slot:
                    request = await _read_request(requests, slot)
                    if asyncio.iscoroutinefunction(behavior):  # health Watch: bounded in time
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(behavior(request, context), WATCH_SECONDS)
                        return
                    if generator:  # calling it runs nothing: no thread step for that
                        responses = behavior(request, SyncContext(context))
                    else:
                        responses = await blocking(behavior, request, SyncContext(context))
                    ended = False
                    try:
                        # One thread step per answer (the servicer's code runs there), and
                        # none to close a generator that ran to its end.
                        while (item := await blocking(_next, responses)) is not _END:
                            if not await _write(context, item):
                                return  # the client went away: nothing to report
                        ended = True
                    finally:
                        if not ended:
                            await blocking(responses.close)

            return grpc.stream_stream_rpc_method_handler(server_stream, **kw)

        behavior = handler.stream_unary
        if behavior is None or not asyncio.iscoroutinefunction(behavior):
            raise TypeError(f"{method}: client-streaming handlers must be coroutines")

        async def client_stream(requests: Any, context: Ctx) -> None:
            async with accounted(context):
                answer = await behavior(_checked(requests, off_loop), context)
                await _write(context, answer)

        return grpc.stream_stream_rpc_method_handler(client_stream, **kw)


class _Idle(Exception):
    """A stream's client sent or read nothing for too long."""


class _BadMessage(Exception):
    """A message did not decode."""


class _Displaced(Exception):
    """A stranger's call waiting for its request gave its place to a newer call."""


_END = object()


def _size(answer: Any) -> int:
    """Bytes of an answer: a message, or one the servicer serialized itself."""
    return len(answer) if isinstance(answer, bytes) else int(answer.ByteSize())


def _next(responses: Iterator[Any]) -> Any:
    return next(responses, _END)


async def _write(context: Ctx, message: Any) -> bool:
    """Writes `message`; returns once gRPC has handed its last byte to the transport (True),
    which a client takes only as its HTTP/2 flow-control window grants, or once the call ended
    first (False: the client cancelled, or its connection closed). No timeout: gRPC keeps a
    message until it is sent or the call ends, and grpc.aio can neither cancel a call nor send
    its status while a message is pending, so the call keeps its slot for as long as its message
    pins memory, and the node's connection age (node.CONNECTION_AGE + CONNECTION_GRACE) is what
    ends it (review R21)."""
    try:
        await context.write(message)
    except Exception:
        if context.cancelled() or context.done():
            return False
        raise
    return True


async def _read_request(requests: AsyncIterator[Any], slot: _Slot) -> Any:
    """The request of a unary call served as a client stream: its first message, within
    REQUEST_WAIT. Raises _Idle past that, _Displaced if a newer call of its stranger lane took
    its place meanwhile, _BadMessage if it did not decode or the stream ended without one."""
    try:
        async with asyncio.timeout(REQUEST_WAIT) as deadline:
            if slot.waiting is not None:
                slot.deadline = deadline
                slot.waiting[slot] = None
            request = await requests.__aiter__().__anext__()
    except StopAsyncIteration:
        raise _BadMessage from None
    except TimeoutError:
        if slot.displaced:
            raise _Displaced from None
        raise _Idle(f"no request for {REQUEST_WAIT:.0f}s") from None
    finally:
        if slot.waiting is not None:
            slot.waiting.pop(slot, None)
    if slot.displaced:  # its request came in the same loop turn as its displacement
        raise _Displaced
    if request is UNDECODABLE:
        raise _BadMessage
    return request


async def _checked(
    requests: AsyncIterator[Any], parse: Callable[[bytes], Any] | None
) -> AsyncIterator[Any]:
    """The messages of a client stream, each as a `Deferred` of `parse` if given; raises
    _Idle after READ_IDLE without one and _BadMessage for one that did not decode."""
    iterator = requests.__aiter__()
    while True:
        try:
            message = await asyncio.wait_for(iterator.__anext__(), READ_IDLE)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _Idle(f"no message for {READ_IDLE:.0f}s") from None
        if parse is not None:
            message = Deferred(message, parse)
        elif message is UNDECODABLE:
            raise _BadMessage
        yield message


def _member(caller: Caller) -> Budget:
    """A member's own budget: a peer's (by node id), the archive key's, or a member key's."""
    if caller.role == pb.ROLE_PEER:
        return PEER, caller.node_id
    if caller.member_key:
        return MEMBER, f"{caller.archive_id.hex()}/{caller.member_key.hex()}"
    return ARCHIVE, caller.archive_id.hex()

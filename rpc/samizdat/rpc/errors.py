"""samizdat errors on the wire: what a node answers for an error, and what a client raises
for a failed call.

A node ends a failed call with `abort_args(error)`: the status of the error's class and its
reason code in the trailing metadata (REASON_METADATA). A client maps a failed call back by
that reason code alone, never by the wording of the message, and only for the reasons a node
sends (NODE_REASONS): a node must not choose an error about the client's own machine (a stale
local cache, a bad key file, a bad command line). What a node says is only as good as the
node, so the client raises PeerUnavailable ("node ... is unreachable or failed") and tries
another node when the reason is missing (a transport failure, an older node) or unknown, or
names the node's own failure (status INTERNAL: its store, its key file); and PeerMisbehaved
when the reason is one a node never sends or comes with another status than its class. Every
error mapped from a call names its node in `from_node`; the node's words in it are made
printable (samizdat.core.printable: no terminal escapes).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from samizdat.core import errors as e
from samizdat.core.printable import printable

REASON_METADATA = "samizdat-reason"

Metadata = tuple[tuple[str, str], ...]

# The errors a node ends a call with (samizdat.server, samizdat.store, and the core checks
# they call: tokens, records, custody); exact classes, not their subclasses.
NODE_REASONS: frozenset[str] = frozenset(
    cls.reason
    for cls in (
        e.UsageError,  # a malformed request: too many ids, a bad position, an undecodable message
        e.AccessDenied,
        e.Revoked,
        e.MalformedToken,
        e.SignatureError,
        e.IncompleteSnapshot,
        e.NotHosted,
        e.ChunkCorrupt,  # an uploaded chunk does not hash to its id
        e.OutOfSpace,
        e.NodeBusy,
    )
)


def status_of(cls: type[e.SamizdatError]) -> grpc.StatusCode:
    return grpc.StatusCode[cls.status.value]


def abort_args(error: e.SamizdatError) -> tuple[grpc.StatusCode, str, Metadata]:
    """(status, details, trailing metadata) for `context.abort(*abort_args(error))`."""
    return status_of(type(error)), str(error), ((REASON_METADATA, error.reason),)


def reason_of(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The reason code in a call's trailing metadata ("" if there is none)."""
    for key, value in metadata or ():
        if key == REASON_METADATA and isinstance(value, str):
            return value
    return ""


def error_from_rpc(err: grpc.RpcError, node: str) -> e.SamizdatError:
    """Translate a failed call into a samizdat error that names the node (also in its
    `from_node`)."""
    error = _translate(err, node)
    error.from_node = node
    return error


def _translate(err: grpc.RpcError, node: str) -> e.SamizdatError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    detail = printable((err.details() if hasattr(err, "details") else str(err)) or "")
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    reason = reason_of(trailing)
    cls = e.error_class(reason)
    if cls is None or cls.status is e.Status.INTERNAL:
        return e.PeerUnavailable(f"node {node} is unreachable or failed: {detail or code.name}")
    if reason not in NODE_REASONS or status_of(cls) != code:
        return e.PeerMisbehaved(
            f"node {node} answered against the protocol (reason {reason!r} with status "
            f"{code.name}): {detail}"
        )
    if issubclass(cls, e.NodeBusy):
        return cls.from_message(f"node {node} is busy: {detail}")
    return cls.from_message(f"{node}: {detail}")

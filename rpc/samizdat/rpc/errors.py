"""samizdat errors on the wire: what a node answers for an error, and what a client raises
for a failed call.

A node ends a failed call with `abort_args(error)`: the status of the error's class and its
reason code in the trailing metadata (REASON_METADATA). A client maps a failed call back by
that reason code alone, never by the wording of the message. What a node says is only as good
as the node, so the client raises PeerUnavailable ("node ... is unreachable or failed") and
tries another node when the reason is missing (a transport failure, an older node) or unknown,
when the class it names answers with another status than the call ended with, or when it
names the node's own failure (status INTERNAL: its store, its key file).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from samizdat.core import errors as e

REASON_METADATA = "samizdat-reason"

Metadata = tuple[tuple[str, str], ...]


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
    """Translate a failed call into a samizdat error that names the node."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    detail = err.details() if hasattr(err, "details") else str(err)
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    cls = e.error_class(reason_of(trailing))
    if cls is None or cls.status is e.Status.INTERNAL or status_of(cls) != code:
        return e.PeerUnavailable(f"node {node} is unreachable or failed: {detail or code.name}")
    if issubclass(cls, e.NodeBusy):
        return cls.from_message(f"node {node} is busy: {detail}")
    return cls.from_message(f"{node}: {detail}")

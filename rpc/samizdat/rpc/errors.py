"""The one table mapping samizdat errors to gRPC status codes and back."""

from __future__ import annotations

import grpc

from samizdat.core import errors as e

_TO_STATUS: list[tuple[type[e.SamizdatError], grpc.StatusCode]] = [
    (e.MalformedToken, grpc.StatusCode.INVALID_ARGUMENT),
    (e.AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (e.NotHosted, grpc.StatusCode.FAILED_PRECONDITION),
    (e.IncompleteSnapshot, grpc.StatusCode.FAILED_PRECONDITION),
    (e.SignatureError, grpc.StatusCode.INVALID_ARGUMENT),
    (e.IntegrityError, grpc.StatusCode.DATA_LOSS),
    (e.ChunkNotFound, grpc.StatusCode.NOT_FOUND),
    (e.SnapshotNotFound, grpc.StatusCode.NOT_FOUND),
    (e.OutOfSpace, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (e.UsageError, grpc.StatusCode.INVALID_ARGUMENT),
    (e.PeerUnavailable, grpc.StatusCode.UNAVAILABLE),
]

_FROM_STATUS: dict[grpc.StatusCode, type[e.SamizdatError]] = {
    grpc.StatusCode.PERMISSION_DENIED: e.AccessDenied,
    grpc.StatusCode.UNAUTHENTICATED: e.AccessDenied,
    grpc.StatusCode.FAILED_PRECONDITION: e.NotHosted,
    grpc.StatusCode.INVALID_ARGUMENT: e.UsageError,
    grpc.StatusCode.DATA_LOSS: e.IntegrityError,
    grpc.StatusCode.NOT_FOUND: e.SnapshotNotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: e.OutOfSpace,
}


def status_for(error: e.SamizdatError) -> grpc.StatusCode:
    for cls, code in _TO_STATUS:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_from_rpc(err: grpc.RpcError, node: str) -> e.SamizdatError:
    """Translate a failed call into a samizdat error that names the node."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    detail = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.FAILED_PRECONDITION and detail and "incomplete" in detail:
        return e.IncompleteSnapshot(f"{node}: {detail}")
    if code == grpc.StatusCode.INVALID_ARGUMENT and detail and "signature" in detail:
        return e.SignatureError(f"{node}: {detail}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and detail and detail.startswith("node busy"):
        return e.PeerUnavailable(f"node {node} is busy: {detail}")
    cls = _FROM_STATUS.get(code, e.PeerUnavailable)
    if cls is e.PeerUnavailable:
        return e.PeerUnavailable(f"node {node} is unreachable or failed: {detail or code.name}")
    return cls(f"{node}: {detail}")

"""The exception tree of samizdat: every error it raises on purpose is a class here.

Each class carries three class attributes, declared as keywords of its class statement
(`class NodeBusy(PeerUnavailable, reason="node_busy", status=Status.RESOURCE_EXHAUSTED)`);
`status` and `exit_code` are inherited unless given:

- `reason`: a stable code naming the class (each class sets its own; unique). A node sends it
  in the trailing metadata of a failed call and clients map it back to the class
  (samizdat.rpc.errors); `--json` error output carries it. Listed in docs/json.md.
- `status`: the gRPC status a node answers with, by name (core does not import grpc).
- `exit_code`: the `samizdat` exit code when the error ends a command.

Exit codes (`ExitCode`) and the status of every error are decided here and nowhere else.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Self


class ExitCode(enum.IntEnum):
    """The exit codes of `samizdat` and `samizdat-node` (listed in every command's --help)."""

    OK = 0
    FAILURE = 1  # status: degraded; integrity or missing data; any other failure
    USAGE = 2  # usage, configuration or connection error
    INCOMPLETE = 3  # restore/verify: some files damaged; push: some files not saved
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class Status(enum.Enum):
    """The gRPC status codes samizdat answers with, by their grpc.StatusCode names."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    DATA_LOSS = "DATA_LOSS"
    NOT_FOUND = "NOT_FOUND"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


_BY_REASON: dict[str, type[SamizdatError]] = {}


class SamizdatError(Exception):
    """Base of every error samizdat raises on purpose."""

    reason: ClassVar[str] = "error"
    status: ClassVar[Status] = Status.INTERNAL
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE
    # The node that ended a call with this error ("" if it was raised here); set by
    # samizdat.rpc.errors. A command may try another node for an error a node sent.
    from_node: str = ""

    def __init_subclass__(
        cls,
        *,
        reason: str = "",
        status: Status | None = None,
        exit_code: ExitCode | None = None,
    ) -> None:
        """Declare a subclass: `class X(Base, reason="x", status=..., exit_code=...)`."""
        super().__init_subclass__()
        if not reason:
            raise TypeError(f"{cls.__name__} must set its own reason code (reason=...)")
        if reason in _BY_REASON:
            raise TypeError(f"reason {reason!r} of {cls.__name__} is taken")
        cls.reason = reason
        if status is not None:
            cls.status = status
        if exit_code is not None:
            cls.exit_code = exit_code
        _BY_REASON[reason] = cls

    @classmethod
    def from_message(cls, message: str) -> Self:
        """This error rebuilt from its message alone (fields a node does not send are empty)."""
        return cls(message)


_BY_REASON[SamizdatError.reason] = SamizdatError


def error_class(reason: str) -> type[SamizdatError] | None:
    """The class with this reason code, or None for a code samizdat does not know."""
    return _BY_REASON.get(reason)


def error_classes() -> list[type[SamizdatError]]:
    """Every class of the tree (for docs and tests)."""
    return list(_BY_REASON.values())


class UsageError(
    SamizdatError, reason="usage", status=Status.INVALID_ARGUMENT, exit_code=ExitCode.USAGE
):
    """The user asked for something malformed or impossible (bad argument, bad config)."""


class ConfigError(UsageError, reason="config"):
    """A node or cluster configuration file is invalid; the message names the key."""


class ShareError(UsageError, reason="share"):
    """Shares cannot rebuild the key: too few, from different sets, mistyped, unreadable."""


class KeyFileError(SamizdatError, reason="key_file"):
    """An archive key file cannot be read or unlocked (corrupt, wrong passphrase)."""


class KeyRoleError(UsageError, reason="key_role"):
    """The key file cannot do what was asked (a reader key cannot push; only the archive key
    certifies and revokes)."""


class DestinationNotEmpty(UsageError, reason="destination_not_empty"):
    """A restore would overwrite existing files in its destination."""


class IntegrityError(SamizdatError, reason="integrity", status=Status.DATA_LOSS):
    """Bytes do not match what they claim to be (chunk id, signature, AEAD tag, file hash)."""


class ChunkCheck(enum.Enum):
    """Which check a corrupt chunk failed, and so whom to blame."""

    ID_HASH = "id hash"  # BLAKE3(blob) != id: blame whoever sent or stored these bytes
    # The bytes match their id (they are what the archive holds) but fail the AEAD tag or do
    # not decode (header, padding, compression, chunk-list format): the archive itself is
    # damaged or the key is wrong; no other copy can be better.
    CONTENT = "content"


class ChunkCorrupt(IntegrityError, reason="chunk_corrupt"):
    """A chunk's bytes do not hash to its id (`check` ID_HASH), or hash to it but do not
    decrypt under the archive key or decode (`check` CONTENT)."""

    def __init__(self, chunk_id_hex: str, check: ChunkCheck, detail: str = "") -> None:
        self.chunk_id_hex = chunk_id_hex
        self.check = check
        super().__init__(f"chunk {chunk_id_hex[:12]} is corrupt{': ' + detail if detail else ''}")

    @classmethod
    def from_message(cls, message: str) -> Self:
        err = cls("", ChunkCheck.ID_HASH)
        err.args = (message,)
        return err


class SignatureError(IntegrityError, reason="signature", status=Status.INVALID_ARGUMENT):
    """A snapshot record or token signature does not verify."""


class WrongKey(IntegrityError, reason="wrong_key"):
    """The archive key does not match the archive being read."""


class StaleIdCache(IntegrityError, reason="stale_id_cache"):
    """A cached id no longer matches what its chunk encodes to (the cache is cleared)."""


class StaleFilesCache(IntegrityError, reason="stale_files_cache"):
    """A file the cache called unchanged no longer holds a recorded chunk (the cache is
    deleted; the next push reads every file)."""


class SequenceExhausted(SamizdatError, reason="sequence_exhausted"):
    """A verified snapshot of the archive holds the highest sequence number a record can
    carry: no later snapshot can be signed (only a holder of a signing key can cause this)."""


class ChunkNotFound(SamizdatError, reason="chunk_not_found", status=Status.NOT_FOUND):
    """No reachable source holds a chunk. `why` says, per source label, why that source
    could not serve it ("does not hold it", "damaged copy", "dropped: ...")."""

    def __init__(self, chunk_id_hex: str, why: dict[str, str] | None = None) -> None:
        self.chunk_id_hex = chunk_id_hex
        self.why = dict(why or {})
        detail = "; ".join(f"{label}: {reason}" for label, reason in self.why.items())
        super().__init__(
            f"chunk {chunk_id_hex[:12]} is not available from any source"
            + (f" ({detail})" if detail else "")
        )

    @classmethod
    def from_message(cls, message: str) -> Self:
        err = cls("")
        err.args = (message,)
        return err


class SnapshotNotFound(SamizdatError, reason="snapshot_not_found", status=Status.NOT_FOUND):
    """No snapshot matches the requested id or prefix."""


class IncompleteSnapshot(
    SamizdatError, reason="incomplete_snapshot", status=Status.FAILED_PRECONDITION
):
    """A snapshot record references chunks the node does not (yet) hold."""


class NotHosted(SamizdatError, reason="not_hosted", status=Status.FAILED_PRECONDITION):
    """The node does not host the archive a request is about."""


class AccessDenied(SamizdatError, reason="access_denied", status=Status.PERMISSION_DENIED):
    """The caller lacks a valid token for the requested role."""


class Revoked(AccessDenied, reason="revoked"):
    """A record signed by the archive key revoked the key or node that is acting."""


class MalformedToken(
    AccessDenied, reason="malformed_token", status=Status.INVALID_ARGUMENT, exit_code=ExitCode.USAGE
):
    """An authentication token that cannot be decoded (bad encoding, unknown key type or
    curve): an invalid argument rather than a refusal."""


class PeerUnavailable(
    SamizdatError, reason="peer_unavailable", status=Status.UNAVAILABLE, exit_code=ExitCode.USAGE
):
    """A node could not be reached, broke off the call, or failed on its side (an error
    with status INTERNAL, or one without a reason code samizdat knows)."""


class NodeBusy(PeerUnavailable, reason="node_busy", status=Status.RESOURCE_EXHAUSTED):
    """A node refused the call because the caller holds too many at once: retry later."""


class PeerMisbehaved(PeerUnavailable, reason="peer_misbehaved"):
    """A node answered against the protocol (wrong number of answers, ids or positions it
    was not asked for, a listing that does not advance): its answer is not used."""


class UnsafePath(SamizdatError, reason="unsafe_path"):
    """A tree path would escape the restore directory or is otherwise unsafe."""


class OutOfSpace(SamizdatError, reason="out_of_space", status=Status.RESOURCE_EXHAUSTED):
    """The disk is full."""


class DestinationError(SamizdatError, reason="destination"):
    """The restore destination cannot be written (permissions, read-only, I/O error)."""


class StoreError(SamizdatError, reason="store"):
    """A store (the node's chunk store, the client's id cache) could not be opened, read or
    written for a reason other than a full disk."""

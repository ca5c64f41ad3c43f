"""The exception tree of samizdat: every error it raises on purpose is a class here.

Each class carries three class attributes, inherited unless a subclass sets its own:

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

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "reason" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must set its own reason code")
        if cls.reason in _BY_REASON:
            raise TypeError(f"reason {cls.reason!r} of {cls.__name__} is taken")
        _BY_REASON[cls.reason] = cls

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


class UsageError(SamizdatError):
    """The user asked for something malformed or impossible (bad argument, bad config)."""

    reason = "usage"
    status = Status.INVALID_ARGUMENT
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A node or cluster configuration file is invalid; the message names the key."""

    reason = "config"


class ShareError(UsageError):
    """Shares cannot rebuild the key: too few, from different sets, mistyped, unreadable."""

    reason = "share"


class KeyFileError(SamizdatError):
    """An archive key file cannot be read or unlocked (corrupt, wrong passphrase)."""

    reason = "key_file"


class KeyRoleError(UsageError):
    """The key file cannot do what was asked (a reader key cannot push; only the archive key
    certifies and revokes)."""

    reason = "key_role"


class DestinationNotEmpty(UsageError):
    """A restore would overwrite existing files in its destination."""

    reason = "destination_not_empty"


class IntegrityError(SamizdatError):
    """Bytes do not match what they claim to be (chunk id, signature, AEAD tag, file hash)."""

    reason = "integrity"
    status = Status.DATA_LOSS


class ChunkCheck(enum.Enum):
    """Which check a corrupt chunk failed, and so whom to blame."""

    ID_HASH = "id hash"  # BLAKE3(blob) != id: blame whoever sent or stored these bytes
    # The bytes match their id (they are what the archive holds) but fail the AEAD tag or do
    # not decode (header, padding, compression, chunk-list format): the archive itself is
    # damaged or the key is wrong; no other copy can be better.
    CONTENT = "content"


class ChunkCorrupt(IntegrityError):
    """A chunk's bytes do not hash to its id (`check` ID_HASH), or hash to it but do not
    decrypt under the archive key or decode (`check` CONTENT)."""

    reason = "chunk_corrupt"

    def __init__(self, chunk_id_hex: str, check: ChunkCheck, detail: str = "") -> None:
        self.chunk_id_hex = chunk_id_hex
        self.check = check
        super().__init__(f"chunk {chunk_id_hex[:12]} is corrupt{': ' + detail if detail else ''}")

    @classmethod
    def from_message(cls, message: str) -> Self:
        err = cls("", ChunkCheck.ID_HASH)
        err.args = (message,)
        return err


class SignatureError(IntegrityError):
    """A snapshot record or token signature does not verify."""

    reason = "signature"
    status = Status.INVALID_ARGUMENT


class WrongKey(IntegrityError):
    """The archive key does not match the archive being read."""

    reason = "wrong_key"


class StaleIdCache(IntegrityError):
    """A cached id no longer matches what its chunk encodes to (the cache is cleared)."""

    reason = "stale_id_cache"


class StaleFilesCache(IntegrityError):
    """A file the cache called unchanged no longer holds a recorded chunk (the cache is
    deleted; the next push reads every file)."""

    reason = "stale_files_cache"


class SequenceExhausted(SamizdatError):
    """A verified snapshot of the archive holds the highest sequence number a record can
    carry: no later snapshot can be signed (only a holder of a signing key can cause this)."""

    reason = "sequence_exhausted"


class ChunkNotFound(SamizdatError):
    """No reachable source holds a chunk. `why` says, per source label, why that source
    could not serve it ("does not hold it", "damaged copy", "dropped: ...")."""

    reason = "chunk_not_found"
    status = Status.NOT_FOUND

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


class SnapshotNotFound(SamizdatError):
    """No snapshot matches the requested id or prefix."""

    reason = "snapshot_not_found"
    status = Status.NOT_FOUND


class IncompleteSnapshot(SamizdatError):
    """A snapshot record references chunks the node does not (yet) hold."""

    reason = "incomplete_snapshot"
    status = Status.FAILED_PRECONDITION


class NotHosted(SamizdatError):
    """The node does not host the archive a request is about."""

    reason = "not_hosted"
    status = Status.FAILED_PRECONDITION


class AccessDenied(SamizdatError):
    """The caller lacks a valid token for the requested role."""

    reason = "access_denied"
    status = Status.PERMISSION_DENIED


class Revoked(AccessDenied):
    """A record signed by the archive key revoked the key or node that is acting."""

    reason = "revoked"


class MalformedToken(AccessDenied):
    """An authentication token that cannot be decoded (bad encoding, unknown key type or
    curve): an invalid argument rather than a refusal."""

    reason = "malformed_token"
    status = Status.INVALID_ARGUMENT
    exit_code = ExitCode.USAGE


class PeerUnavailable(SamizdatError):
    """A node could not be reached, broke off the call, or failed on its side (an error
    with status INTERNAL, or one without a reason code samizdat knows)."""

    reason = "peer_unavailable"
    status = Status.UNAVAILABLE
    exit_code = ExitCode.USAGE


class NodeBusy(PeerUnavailable):
    """A node refused the call because the caller holds too many at once: retry later."""

    reason = "node_busy"
    status = Status.RESOURCE_EXHAUSTED


class PeerMisbehaved(PeerUnavailable):
    """A node answered against the protocol (wrong number of answers, ids or positions it
    was not asked for, a listing that does not advance): its answer is not used."""

    reason = "peer_misbehaved"


class UnsafePath(SamizdatError):
    """A tree path would escape the restore directory or is otherwise unsafe."""

    reason = "unsafe_path"


class OutOfSpace(SamizdatError):
    """The disk is full."""

    reason = "out_of_space"
    status = Status.RESOURCE_EXHAUSTED


class DestinationError(SamizdatError):
    """The restore destination cannot be written (permissions, read-only, I/O error)."""

    reason = "destination"


class StoreError(SamizdatError):
    """A store (the node's chunk store, the client's id cache) could not be opened, read or
    written for a reason other than a full disk."""

    reason = "store"

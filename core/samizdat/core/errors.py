"""The exception tree of samizdat. Each error names what is wrong and what to do.

The CLI maps these to exit codes (samizdat.client.cli) and the RPC layer to gRPC status codes
(samizdat.rpc.errors); both tables live in one place each.
"""

from __future__ import annotations


class SamizdatError(Exception):
    """Base of every error samizdat raises on purpose."""


class UsageError(SamizdatError):
    """The user asked for something malformed or impossible (bad argument, bad config)."""


class ConfigError(UsageError):
    """A node or cluster configuration file is invalid; the message names the key."""


class KeyFileError(SamizdatError):
    """An archive key file cannot be read or unlocked (corrupt, wrong passphrase)."""


class KeyRoleError(UsageError):
    """The key file cannot do what was asked (a reader key cannot push; only the archive key
    certifies and revokes)."""


class IntegrityError(SamizdatError):
    """Bytes do not match what they claim to be (chunk id, signature, AEAD tag, file hash)."""


class ChunkCorrupt(IntegrityError):
    """A chunk's bytes do not hash to its id, or do not decrypt under the archive key."""

    def __init__(self, chunk_id_hex: str, detail: str = "") -> None:
        self.chunk_id_hex = chunk_id_hex
        super().__init__(f"chunk {chunk_id_hex[:12]} is corrupt{': ' + detail if detail else ''}")


class SignatureError(IntegrityError):
    """A snapshot record or token signature does not verify."""


class WrongKey(IntegrityError):
    """The archive key does not match the archive being read."""


class ChunkNotFound(SamizdatError):
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


class SnapshotNotFound(SamizdatError):
    """No snapshot matches the requested id or prefix."""


class IncompleteSnapshot(SamizdatError):
    """A snapshot record references chunks the node does not (yet) hold."""


class NotHosted(SamizdatError):
    """The node does not host the archive a request is about."""


class AccessDenied(SamizdatError):
    """The caller lacks a valid token for the requested role."""


class Revoked(AccessDenied):
    """A record signed by the archive key revoked the key or node that is acting."""


class MalformedToken(AccessDenied):
    """An authentication token that cannot be decoded (bad encoding, unknown key type or
    curve): an invalid argument rather than a refusal."""


class PeerUnavailable(SamizdatError):
    """A node could not be reached or broke off the call."""


class PeerMisbehaved(PeerUnavailable):
    """A node answered against the protocol (wrong number of answers, ids or positions it
    was not asked for, a listing that does not advance): its answer is not used."""


class UnsafePath(SamizdatError):
    """A tree path would escape the restore directory or is otherwise unsafe."""


class DestinationNotEmpty(UsageError):
    """A restore would overwrite existing files in its destination."""


class OutOfSpace(SamizdatError):
    """The disk is full."""


class DestinationError(SamizdatError):
    """The restore destination cannot be written (permissions, read-only, I/O error)."""

"""Archive keys: the Ed25519 signing key (archive id = public key) and the master secret.

Subkeys are derived from the master secret with BLAKE3's key-derivation mode, one context
string per purpose, so no two purposes ever share key material. The key file format is
`KeyFile` in proto/samizdat/v1/records.proto, preceded by the magic `SZKEY1\\n`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError

from samizdat.core.errors import KeyFileError, SignatureError, UsageError
from samizdat.core.ids import ArchiveId
from samizdat.v1 import records_pb2 as pb

KEY_FILE_MAGIC = b"SZKEY1\n"
KEY_FILE_VERSION = 1
_ARGON2_TIME = 3
_ARGON2_MEMORY_KIB = 64 * 1024
_ARGON2_PARALLELISM = 2


def _derive(master: bytes, purpose: str) -> bytes:
    return blake3.blake3(master, derive_key_context=f"samizdat v1 {purpose}").digest()


@dataclass(frozen=True)
class ArchiveKey:
    """The secrets of one archive. Held only by custodians and restorers, never by nodes."""

    signing_seed: bytes
    master_secret: bytes
    archive_id: ArchiveId = field(init=False)
    encryption_key: bytes = field(init=False, repr=False)
    nonce_key: bytes = field(init=False, repr=False)
    chunker_seed: int = field(init=False, repr=False)
    chunker_cut_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.signing_seed) != 32 or len(self.master_secret) != 32:
            raise KeyFileError("archive key secrets must be 32 bytes each")
        public = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "archive_id", ArchiveId(public))
        object.__setattr__(self, "encryption_key", _derive(self.master_secret, "chunk encryption"))
        object.__setattr__(self, "nonce_key", _derive(self.master_secret, "chunk nonce"))
        seed = int.from_bytes(_derive(self.master_secret, "chunker seed")[:8], "little")
        object.__setattr__(self, "chunker_seed", seed)
        object.__setattr__(self, "chunker_cut_key", _derive(self.master_secret, "chunker cut key"))

    @classmethod
    def generate(cls) -> ArchiveKey:
        return cls(signing_seed=secrets.token_bytes(32), master_secret=secrets.token_bytes(32))

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed)

    def sign(self, context: str, message: bytes) -> bytes:
        """Sign `message` for one purpose (`context`); see `signed_message`."""
        return self._private().sign(signed_message(context, message))


def signed_message(context: str, message: bytes) -> bytes:
    """The bytes an archive or node key actually signs: a per-purpose prefix, so that a
    signature made for one purpose (a snapshot record) can never pass as another (a token)."""
    return b"samizdat v1 " + context.encode() + b"\0" + message


def verify_archive_signature(
    archive_id: bytes, context: str, message: bytes, signature: bytes
) -> None:
    """Raise SignatureError unless `signature` is the archive key's signature of `message`
    for `context`."""
    try:
        Ed25519PublicKey.from_public_bytes(archive_id).verify(
            signature, signed_message(context, message)
        )
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify under the archive key") from None


def _secrets_check(secrets_msg: bytes) -> bytes:
    return blake3.blake3(secrets_msg, derive_key_context="samizdat v1 key file check").digest(
        length=16
    )


def _passphrase_key(passphrase: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    return hash_secret_raw(passphrase.encode(), salt, t, m, p, 32, Type.ID)


def save_key(key: ArchiveKey, path: Path, passphrase: str | None = None) -> None:
    """Write `key` to a new file at `path` with mode 0600; refuses to overwrite."""
    secrets_msg = pb.ArchiveSecrets(
        signing_seed=key.signing_seed, master_secret=key.master_secret
    ).SerializeToString()
    kf = pb.KeyFile(
        version=KEY_FILE_VERSION,
        archive_id=bytes(key.archive_id),
        secrets_check=_secrets_check(secrets_msg),
    )
    if passphrase:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kf.kdf = pb.KDF_ARGON2ID
        kf.argon2_time_cost, kf.argon2_memory_kib = _ARGON2_TIME, _ARGON2_MEMORY_KIB
        kf.argon2_parallelism, kf.salt, kf.nonce = _ARGON2_PARALLELISM, salt, nonce
        wrap = _passphrase_key(passphrase, salt, _ARGON2_TIME, _ARGON2_MEMORY_KIB, 2)
        kf.secrets = AESGCM(wrap).encrypt(nonce, secrets_msg, bytes(key.archive_id))
    else:
        kf.kdf, kf.secrets = pb.KDF_NONE, secrets_msg
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite a key file") from None
    with os.fdopen(fd, "wb") as f:
        f.write(KEY_FILE_MAGIC + kf.SerializeToString())
        f.flush()
        os.fsync(f.fileno())


def read_key_file(path: Path) -> pb.KeyFile:
    """Parse the key file header (no secrets unlocked)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"key file {path} does not exist (create one with `samizdat key new`)"
        ) from None
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    if not raw.startswith(KEY_FILE_MAGIC):
        raise KeyFileError(f"{path} is not a samizdat key file")
    kf = pb.KeyFile()
    try:
        kf.ParseFromString(raw[len(KEY_FILE_MAGIC) :])
    except DecodeError:
        raise KeyFileError(f"key file {path} is corrupt") from None
    if kf.version != KEY_FILE_VERSION:
        raise KeyFileError(f"key file {path} has unsupported version {kf.version}")
    return kf


def load_key(path: Path, passphrase: str | None = None) -> ArchiveKey:
    """Load and unlock an archive key; checks that its secrets match its recorded id."""
    kf = read_key_file(path)
    blob = kf.secrets
    if kf.kdf == pb.KDF_ARGON2ID:
        if not passphrase:
            raise KeyFileError(
                f"key file {path} is protected by a passphrase (set SAMIZDAT_PASSPHRASE)"
            )
        wrap = _passphrase_key(
            passphrase, kf.salt, kf.argon2_time_cost, kf.argon2_memory_kib, kf.argon2_parallelism
        )
        try:
            blob = AESGCM(wrap).decrypt(kf.nonce, kf.secrets, kf.archive_id)
        except InvalidTag:
            raise KeyFileError(f"wrong passphrase for key file {path}") from None
    elif kf.kdf != pb.KDF_NONE:
        raise KeyFileError(f"key file {path} uses an unknown key-derivation function")
    if _secrets_check(blob) != kf.secrets_check:
        raise KeyFileError(f"key file {path} is corrupt: its secrets fail their check value")
    secrets_msg = pb.ArchiveSecrets()
    try:
        secrets_msg.ParseFromString(blob)
        key = ArchiveKey(secrets_msg.signing_seed, secrets_msg.master_secret)
    except (DecodeError, KeyFileError):
        raise KeyFileError(f"key file {path} is corrupt") from None
    if bytes(key.archive_id) != kf.archive_id:
        raise KeyFileError(f"key file {path} is corrupt: secrets do not match the archive id")
    return key

"""Key files: the archive key, and the writer and reader keys it certifies.

The archive key is the Ed25519 signing root (archive id = its public key) plus the master
secret. A writer key holds the master secret (to encrypt and deduplicate) and its own Ed25519
key, certified by the archive key; a reader key likewise, with a certificate that only allows
reads. Subkeys are derived from the master secret with BLAKE3's key-derivation mode, one
context string per purpose, so no two purposes ever share key material. The key file format is
`KeyFile` in proto/samizdat/v1/records.proto, preceded by the magic `SZKEY1\\n`; the custody
model is in docs/format.md, "Custody".
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError

from samizdat.core.custody import CustodyRecord, sign_custody_record, verify_certificate
from samizdat.core.errors import KeyFileError, KeyRoleError, SignatureError, UsageError
from samizdat.core.ids import ArchiveId
from samizdat.core.signing import ed25519_public, ed25519_sign, verify_ed25519
from samizdat.core.signing import signed_message as signed_message
from samizdat.v1 import records_pb2 as pb

KEY_FILE_MAGIC = b"SZKEY1\n"
KEY_FILE_VERSION = 1
_ARGON2_TIME = 3
_ARGON2_MEMORY_KIB = 64 * 1024
_ARGON2_PARALLELISM = 2
KIND_NAMES = {
    pb.KEY_KIND_ARCHIVE: "archive",
    pb.KEY_KIND_WRITER: "writer",
    pb.KEY_KIND_READER: "reader",
}


def _derive(master: bytes, purpose: str) -> bytes:
    return blake3.blake3(master, derive_key_context=f"samizdat v1 {purpose}").digest()


@dataclass(frozen=True)
class ArchiveKey:
    """The secrets a holder has for one archive. Held by custodians and restorers, never by
    nodes.

    The archive key has `signing_seed`. A writer or reader key has instead `member_seed` (its
    own Ed25519 key) and `certificate` (a serialized SignedCustodyRecord by which the archive
    key certifies that key's public half); its archive id comes from the certificate.
    """

    signing_seed: bytes
    master_secret: bytes
    member_seed: bytes = b""
    certificate: bytes = field(default=b"", repr=False)
    archive_id: ArchiveId = field(init=False)
    kind: pb.KeyKind = field(init=False)
    encryption_key: bytes = field(init=False, repr=False)
    nonce_key: bytes = field(init=False, repr=False)
    chunker_seed: int = field(init=False, repr=False)
    chunker_cut_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.master_secret) != 32:
            raise KeyFileError("archive key secrets must be 32 bytes each")
        if self.signing_seed:
            if len(self.signing_seed) != 32 or self.member_seed or self.certificate:
                raise KeyFileError("archive key secrets must be 32 bytes each")
            archive_id, kind = ed25519_public(self.signing_seed), pb.KEY_KIND_ARCHIVE
        else:
            archive_id, kind = self._check_certificate()
        object.__setattr__(self, "archive_id", ArchiveId(archive_id))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "encryption_key", _derive(self.master_secret, "chunk encryption"))
        object.__setattr__(self, "nonce_key", _derive(self.master_secret, "chunk nonce"))
        seed = int.from_bytes(_derive(self.master_secret, "chunker seed")[:8], "little")
        object.__setattr__(self, "chunker_seed", seed)
        object.__setattr__(self, "chunker_cut_key", _derive(self.master_secret, "chunker cut key"))

    def _check_certificate(self) -> tuple[bytes, pb.KeyKind]:
        if len(self.member_seed) != 32:
            raise KeyFileError("a writer or reader key needs its own 32-byte signing seed")
        try:
            signed = pb.SignedCustodyRecord.FromString(self.certificate)
            record = pb.CustodyRecord.FromString(signed.record)
            role = record.certificate.role
            verify_certificate(signed, record.archive_id, self.member_key, role)
        except (DecodeError, SignatureError) as e:
            raise KeyFileError(f"the key's certificate is not valid: {e}") from None
        kind = pb.KEY_KIND_WRITER if role == pb.MEMBER_ROLE_WRITER else pb.KEY_KIND_READER
        return record.archive_id, kind

    @classmethod
    def generate(cls) -> ArchiveKey:
        return cls(signing_seed=secrets.token_bytes(32), master_secret=secrets.token_bytes(32))

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    @property
    def member_key(self) -> bytes:
        """The public key of a writer or reader key (its writer id); b"" for the archive key."""
        return ed25519_public(self.member_seed) if self.member_seed else b""

    @property
    def can_write(self) -> bool:
        return self.kind in (pb.KEY_KIND_ARCHIVE, pb.KEY_KIND_WRITER)

    def require_archive_key(self) -> None:
        """Raise KeyRoleError unless this is the archive key itself."""
        if not self.signing_seed:
            raise KeyRoleError(
                f"this is a {self.kind_name} key: only the archive key can do this "
                "(recover it from its shares with `samizdat key recover`)"
            )

    def sign(self, context: str, message: bytes) -> bytes:
        """Sign `message` for one purpose (`context`) with the archive key itself."""
        self.require_archive_key()
        return ed25519_sign(self.signing_seed, context, message)

    def sign_as_member(self, context: str, message: bytes) -> bytes:
        """Sign with a writer or reader key's own key."""
        return ed25519_sign(self.member_seed, context, message)

    def certificate_record(self) -> pb.SignedCustodyRecord:
        return pb.SignedCustodyRecord.FromString(self.certificate)

    def delegate(self, role: int, name: str, serial: int) -> tuple[ArchiveKey, CustodyRecord]:
        """A new writer or reader key certified by this archive key, and its certificate."""
        self.require_archive_key()
        seed = secrets.token_bytes(32)
        cert = sign_custody_record(
            self,
            pb.CustodyRecord(
                serial=serial,
                certificate=pb.KeyCertificate(
                    member_key=ed25519_public(seed),
                    role=role,  # type: ignore[arg-type]
                    name=name,
                ),
            ),
        )
        member = ArchiveKey(
            b"", self.master_secret, member_seed=seed, certificate=cert.signed.SerializeToString()
        )
        return member, cert


def verify_archive_signature(
    archive_id: bytes, context: str, message: bytes, signature: bytes
) -> None:
    """Raise SignatureError unless `signature` is the archive key's signature of `message`
    for `context`."""
    verify_ed25519(archive_id, context, message, signature)


def _secrets_check(secrets_msg: bytes) -> bytes:
    return blake3.blake3(secrets_msg, derive_key_context="samizdat v1 key file check").digest(
        length=16
    )


def _passphrase_key(passphrase: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    return hash_secret_raw(passphrase.encode(), salt, t, m, p, 32, Type.ID)


def save_key(key: ArchiveKey, path: Path, passphrase: str | None = None) -> None:
    """Write `key` to a new file at `path` with mode 0600; refuses to overwrite."""
    secrets_msg = pb.ArchiveSecrets(
        signing_seed=key.signing_seed,
        master_secret=key.master_secret,
        member_seed=key.member_seed,
        certificate=key.certificate,
    ).SerializeToString()
    kf = pb.KeyFile(
        version=KEY_FILE_VERSION,
        archive_id=bytes(key.archive_id),
        secrets_check=_secrets_check(secrets_msg),
        kind=key.kind,
    )
    if passphrase:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kf.kdf = pb.KDF_ARGON2ID
        kf.argon2_time_cost, kf.argon2_memory_kib = _ARGON2_TIME, _ARGON2_MEMORY_KIB
        kf.argon2_parallelism, kf.salt, kf.nonce = _ARGON2_PARALLELISM, salt, nonce
        wrap = _passphrase_key(
            passphrase, salt, _ARGON2_TIME, _ARGON2_MEMORY_KIB, _ARGON2_PARALLELISM
        )
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
        key = ArchiveKey(
            secrets_msg.signing_seed,
            secrets_msg.master_secret,
            member_seed=secrets_msg.member_seed,
            certificate=secrets_msg.certificate,
        )
    except (DecodeError, KeyFileError):
        raise KeyFileError(f"key file {path} is corrupt") from None
    if bytes(key.archive_id) != kf.archive_id:
        raise KeyFileError(f"key file {path} is corrupt: secrets do not match the archive id")
    if kf.kind not in (pb.KEY_KIND_UNSPECIFIED, key.kind):
        raise KeyFileError(f"key file {path} is corrupt: its kind does not match its secrets")
    return key

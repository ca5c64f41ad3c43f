"""Archive key files: mode 0600, passphrase round trip, wrong passphrase, no overwrite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from samizdat.core.errors import KeyFileError, SignatureError, UsageError
from samizdat.core.keys import (
    KEY_FILE_MAGIC,
    ArchiveKey,
    load_key,
    read_key_file,
    save_key,
    verify_archive_signature,
)


def test_plain_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    key = ArchiveKey.generate()
    path = tmp_path / "k.key"
    old = os.umask(0)  # even with a permissive umask
    try:
        save_key(key, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(KEY_FILE_MAGIC)
    back = load_key(path)
    assert back == key
    assert read_key_file(path).archive_id == bytes(key.archive_id)


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    key = ArchiveKey.generate()
    path = tmp_path / "k.key"
    save_key(key, path, passphrase="correct horse")
    raw = path.read_bytes()
    assert key.master_secret not in raw and key.signing_seed not in raw
    assert load_key(path, "correct horse") == key
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_key(path, "wrong horse")
    with pytest.raises(KeyFileError, match="passphrase"):
        load_key(path, None)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = ArchiveKey.generate()
    save_key(first, path)
    with pytest.raises(UsageError, match="refusing to overwrite"):
        save_key(ArchiveKey.generate(), path)
    assert load_key(path) == first


def _flip_in_key_file(src: Path, dest: Path, where: str, index: int) -> None:
    """Copy a plain key file, flipping byte `index` of the signing seed, the master secret,
    or the check value, located by parsing (not by offset, so new fields cannot move it)."""
    key = load_key(src)
    raw = bytearray(src.read_bytes())
    part = {
        "signing seed": key.signing_seed,
        "master secret": key.master_secret,
        "check value": read_key_file(src).secrets_check,
    }[where]
    assert len(part) >= 16 and raw.count(part) == 1
    raw[raw.find(part) + index] ^= 0xFF
    dest.write_bytes(bytes(raw))


def test_corrupt_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_key(tmp_path / "missing.key")
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not a samizdat key file"):
        load_key(foreign)
    path = tmp_path / "k.key"
    save_key(ArchiveKey.generate(), path)
    (tmp_path / "truncated.key").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(KeyFileError, match="corrupt"):
        load_key(tmp_path / "truncated.key")


@pytest.mark.parametrize("where", ["signing seed", "master secret", "check value"])
@pytest.mark.parametrize("index", [0, 5, 15])
def test_any_damage_to_a_plain_key_file_is_detected(tmp_path: Path, where: str, index: int) -> None:
    # A flipped master-secret bit used to load silently as another key that still signed
    # as the archive: its snapshots could not be decrypted with the real key.
    path = tmp_path / "k.key"
    save_key(ArchiveKey.generate(), path)
    _flip_in_key_file(path, tmp_path / "bad.key", where, index)
    with pytest.raises(KeyFileError, match="corrupt"):
        load_key(tmp_path / "bad.key")


def test_derived_keys_are_distinct_and_bound_to_the_secret() -> None:
    a = ArchiveKey(b"\x01" * 32, b"\x02" * 32)
    b = ArchiveKey(b"\x01" * 32, b"\x03" * 32)
    assert a.archive_id == b.archive_id
    assert len({a.encryption_key, a.nonce_key, b.encryption_key, b.nonce_key}) == 4
    assert a.chunker_seed != b.chunker_seed
    assert 0 < a.chunker_seed < 2**64


def test_archive_signature() -> None:
    key = ArchiveKey.generate()
    sig = key.sign("snapshot record", b"message")
    verify_archive_signature(bytes(key.archive_id), "snapshot record", b"message", sig)
    with pytest.raises(SignatureError):
        verify_archive_signature(bytes(key.archive_id), "snapshot record", b"messagE", sig)
    with pytest.raises(SignatureError):
        verify_archive_signature(
            bytes(ArchiveKey.generate().archive_id), "snapshot record", b"message", sig
        )
    # A signature made for one purpose never passes for another (domain separation).
    with pytest.raises(SignatureError):
        verify_archive_signature(bytes(key.archive_id), "auth token", b"message", sig)

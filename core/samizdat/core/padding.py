"""Length padding of stored blobs, so that a stored size names a bucket, not a length.

`padded_length(n)` is the size a payload of `n` bytes is padded to (docs/format.md,
"Padding"):

- above `SMALL_LIMIT` (64 KiB): Padmé (Nikitin et al., "Reducing Metadata Leakage from
  Encrypted Files and Communication with PURBs", PETS 2019). A length with exponent
  `E = floor(log2 n)` keeps `floor(log2 E) + 1` bits below its leading one and the rest are
  rounded up, so less than `1/2^(floor(log2 E)+1)` is added: under 3.2 % for every blob size
  samizdat writes (64 KiB to 16 MiB keep 5 bits), about 1 % on average over a chunk size range;
- up to `SMALL_LIMIT`: the next power of two, at least `SMALL_FLOOR` (512 bytes). Blobs this
  small are whole small files (notes) or the last piece of a file, and their absolute sizes
  are what an adversary holding the note can compute; Padmé's buckets are only 16-1024 bytes
  wide there, too narrow to hide a set of known notes on a small archive. Power-of-two
  buckets cost more in ratio but little in bytes (small blobs are a small share of an
  archive of videos).

`pad(data)` appends `0x80` then zero bytes (ISO/IEC 7816-4) up to
`padded_length(len(data) + 1)`; `unpadded_length` finds the data's end and rejects anything
else.
"""

from __future__ import annotations

SMALL_LIMIT = 64 * 1024
SMALL_FLOOR = 512
MARKER = 0x80


def padme(n: int) -> int:
    """Padmé: round `n` up so that below its leading one only floor(log2 E) + 1 bits
    (E = floor(log2 n)) may be non-zero."""
    if n < 2:
        return n
    exponent = n.bit_length() - 1
    kept = exponent.bit_length()  # floor(log2 E) + 1
    mask = (1 << (exponent - kept)) - 1
    return (n + mask) & ~mask


def padded_length(n: int) -> int:
    """The stored length for `n` bytes (n >= 0): a power of two up to SMALL_LIMIT, else
    Padmé. Monotone, idempotent and never below `n`."""
    if n <= SMALL_LIMIT:
        return max(SMALL_FLOOR, 1 << max(0, n - 1).bit_length())
    return padme(n)


def pad(*parts: bytes | memoryview) -> bytes:
    """`parts... || 0x80 || 0x00...`, padded_length(len(parts) + 1) bytes in all (one copy)."""
    length = sum(len(p) for p in parts)
    return b"".join((*parts, bytes([MARKER]), bytes(padded_length(length + 1) - length - 1)))


def unpadded_length(padded: bytes) -> int | None:
    """The payload length inside `padded` (the offset of the marker), or None if `padded`
    does not end in a marker followed only by zero bytes. Does not copy the payload."""
    end = padded.rfind(MARKER)
    if end < 0 or padded.count(0, end + 1) != len(padded) - end - 1:
        return None
    return end

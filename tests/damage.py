"""Building damaged node stores: flip bytes of stored chunks on disk, as a failing disk or an
adversary with write access to a seized disk would."""

from __future__ import annotations

import os
from pathlib import Path


def flip_on_disk(data_dir: Path, needle: bytes, offset: int = 0) -> Path:
    """Flip one bit of the first occurrence of `needle` (plus `offset`) in any file under the
    store directory (blob files, SST tables, WAL); return the damaged file.

    The store must be closed (node stopped). Raises LookupError if `needle` is nowhere.
    """
    for root, _, names in os.walk(data_dir):
        for name in sorted(names):
            path = Path(root) / name
            raw = bytearray(path.read_bytes())
            pos = raw.find(needle)
            if pos >= 0:
                raw[pos + offset] ^= 0x01
                path.write_bytes(bytes(raw))
                return path
    raise LookupError(f"{needle[:8].hex()}... not found under {data_dir}")


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).glob("*.blob"))

"""Sample source trees and exact tree comparison (content, modes, mtimes, symlinks, dirs)."""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass
from pathlib import Path

# Fixed nanosecond mtimes, so a restore that drops sub-second precision is caught.
BASE_MTIME_NS = 1_600_000_000_123_456_789


@dataclass(frozen=True)
class Node:
    kind: str  # "file" | "dir" | "symlink"
    mode: int
    mtime_ns: int
    content: bytes = b""  # file bytes or symlink target


def _set_mtime(path: bytes, i: int) -> None:
    t = BASE_MTIME_NS + i * 1_000_000_007
    os.utime(path, ns=(t, t), follow_symlinks=False)


def build_sample_tree(root: Path, *, big_size: int = 3 << 20, seed: int = 1) -> Path:
    """Create a tree exercising everything a restore must reproduce; return `root`.

    Non-ASCII names (and one non-UTF-8 name), nested and empty directories, an empty file,
    symlinks (relative, dangling, to a directory, absolute target), modes 0400..0755,
    distinct nanosecond mtimes on every entry including directories and symlinks, a
    compressible text file and an incompressible multi-MB file.
    """
    rng = random.Random(seed)
    r = os.fsencode(root)
    os.makedirs(r, exist_ok=True)

    def p(rel: bytes) -> bytes:
        return r + b"/" + rel

    dirs = [
        ("évidence".encode(), 0o755),
        ("évidence/日本語 ディレクトリ".encode(), 0o750),
        ("évidence/日本語 ディレクトリ/深い".encode(), 0o700),
        (b"empty", 0o755),
        (b"empty/nested-empty", 0o711),
        ("Привет".encode(), 0o755),
    ]
    for rel, _ in dirs:
        os.makedirs(p(rel), exist_ok=True)

    files: list[tuple[bytes, int, bytes]] = [
        (
            "évidence/notes — résumé.txt".encode(),
            0o644,
            ("Témoignage n° 1: « ok »\n" * 2000).encode(),
        ),
        ("évidence/日本語 ディレクトリ/動画.bin".encode(), 0o600, rng.randbytes(big_size)),
        ("évidence/日本語 ディレクトリ/深い/🎥 clip.dat".encode(), 0o640, rng.randbytes(70_000)),
        ("Привет/пустой".encode(), 0o644, b""),
        ("Привет/run.sh".encode(), 0o755, b"#!/bin/sh\necho hi\n"),
        (b"readonly.txt", 0o400, b"do not touch\n"),
        (b"raw-\xff\xfe-name.bin", 0o644, rng.randbytes(1000)),  # not valid UTF-8
        (b"top level.txt", 0o664, b"x" * 5000),
    ]
    for rel, mode, data in files:
        with open(p(rel), "wb") as f:
            f.write(data)
        os.chmod(p(rel), mode)

    links = [
        (b"link-to-notes", "évidence/notes — résumé.txt".encode()),
        (b"dangling", b"does/not/exist"),
        ("Привет/to-dir".encode(), "../évidence".encode()),
        (b"absolute-target", b"/etc/hostname"),
    ]
    for rel, target in links:
        os.symlink(target, p(rel))

    # mtimes last, deepest first, so creating children does not disturb parents.
    everything = [rel for rel, _, _ in files] + [rel for rel, _ in links]
    for i, rel in enumerate(everything):
        _set_mtime(p(rel), i)
    for i, (rel, mode) in enumerate(sorted(dirs, key=lambda d: -d[0].count(b"/"))):
        os.chmod(p(rel), mode)
        _set_mtime(p(rel), 100 + i)
    return root


def read_tree(root: Path | str) -> dict[bytes, Node]:
    """Every entry under `root` (not root itself), keyed by relative path bytes."""
    r = os.fsencode(root)
    out: dict[bytes, Node] = {}
    for dirpath, dirnames, filenames in os.walk(r, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, r)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = Node("symlink", 0, st.st_mtime_ns, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Node("dir", mode, st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    out[rel] = Node("file", mode, st.st_mtime_ns, f.read())
            else:
                out[rel] = Node("other", mode, st.st_mtime_ns)
    return out


def tree_differences(expected: dict[bytes, Node], actual: dict[bytes, Node]) -> list[str]:
    """Human-readable differences (empty when identical)."""
    diffs = []
    for rel in sorted(set(expected) | set(actual)):
        name = rel.decode("utf-8", "backslashreplace")
        a, b = expected.get(rel), actual.get(rel)
        if a is None:
            diffs.append(f"unexpected {name}")
        elif b is None:
            diffs.append(f"missing {name}")
        else:
            for attr in ("kind", "mode", "mtime_ns"):
                if getattr(a, attr) != getattr(b, attr):
                    diffs.append(f"{name}: {attr} {getattr(a, attr)!r} != {getattr(b, attr)!r}")
            if a.content != b.content:
                diffs.append(
                    f"{name}: content differs ({len(a.content)} vs {len(b.content)} bytes)"
                )
    return diffs


def assert_same_tree(expected_root: Path | str, actual_root: Path | str) -> None:
    diffs = tree_differences(read_tree(expected_root), read_tree(actual_root))
    assert not diffs, "restored tree differs:\n  " + "\n  ".join(diffs)


def all_files_bytes(root: Path | str) -> list[tuple[str, bytes]]:
    """(path, raw bytes) of every regular file under `root`, symlinks not followed."""
    out = []
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    out.append((full, f.read()))
    return out

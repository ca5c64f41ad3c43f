"""Sample source trees and exact tree comparison (content, modes, mtimes, symlinks, dirs,
hard links, `user.*` xattrs, sparseness), all relative to directory descriptors, so trees
deeper than PATH_MAX work too."""

from __future__ import annotations

import errno
import os
import random
import stat
from dataclasses import dataclass, replace
from pathlib import Path

# Fixed nanosecond mtimes, so a restore that drops sub-second precision is caught.
BASE_MTIME_NS = 1_600_000_000_123_456_789


@dataclass(frozen=True)
class Node:
    kind: str  # "file" | "dir" | "symlink"
    mode: int
    mtime_ns: int
    content: bytes = b""  # file bytes or symlink target
    xattrs: tuple[tuple[str, bytes], ...] = ()  # user.* only, sorted
    links: tuple[bytes, ...] = ()  # files: every path of the tree sharing its inode, if > 1
    sparse: bool = False  # files: fewer bytes allocated than its length


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


def user_xattrs(fd: int) -> tuple[tuple[str, bytes], ...]:
    try:
        names = sorted(n for n in os.listxattr(fd) if n.startswith("user."))
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    return tuple((n, os.getxattr(fd, n)) for n in names)


def xattrs_supported(directory: Path | str) -> bool:
    """Can files in `directory` carry user.* extended attributes?"""
    probe = os.path.join(directory, ".xattr-probe")
    with open(probe, "wb"):
        pass
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise
    finally:
        os.unlink(probe)


def read_tree(root: Path | str) -> dict[bytes, Node]:
    """Every entry under `root` (not root itself), keyed by relative path bytes."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    out: dict[bytes, Node] = {}
    inodes: dict[tuple[int, int], list[bytes]] = {}
    stack = [(os.open(root, os.O_RDONLY | os.O_DIRECTORY), b"")]
    while stack:
        fd, rel_dir = stack.pop()
        try:
            for name in sorted(os.fsencode(n) for n in os.listdir(fd)):
                rel = rel_dir + b"/" + name if rel_dir else name
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(name, dir_fd=fd)
                    out[rel] = Node("symlink", 0, st.st_mtime_ns, target)
                elif stat.S_ISDIR(st.st_mode):
                    child = os.open(name, flags | os.O_DIRECTORY, dir_fd=fd)
                    out[rel] = Node("dir", mode, st.st_mtime_ns, xattrs=user_xattrs(child))
                    stack.append((child, rel))
                elif stat.S_ISREG(st.st_mode):
                    with os.fdopen(os.open(name, flags, dir_fd=fd), "rb") as f:
                        out[rel] = Node(
                            "file",
                            mode,
                            st.st_mtime_ns,
                            f.read(),
                            user_xattrs(f.fileno()),
                            sparse=st.st_blocks * 512 < st.st_size,
                        )
                    if st.st_nlink > 1:
                        inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
                else:
                    out[rel] = Node("other", mode, st.st_mtime_ns)
        finally:
            os.close(fd)
    for paths in inodes.values():
        if len(paths) > 1:
            for rel in paths:
                out[rel] = replace(out[rel], links=tuple(sorted(paths)))
    return out


def tree_differences(expected: dict[bytes, Node], actual: dict[bytes, Node]) -> list[str]:
    """Human-readable differences (empty when identical). A sparse expected file must be
    sparse in `actual`; a dense one may come back sparse (zero blocks become holes)."""
    diffs = []
    for rel in sorted(set(expected) | set(actual)):
        name = rel.decode("utf-8", "backslashreplace")
        a, b = expected.get(rel), actual.get(rel)
        if a is None:
            diffs.append(f"unexpected {name}")
        elif b is None:
            diffs.append(f"missing {name}")
        else:
            for attr in ("kind", "mode", "mtime_ns", "xattrs", "links"):
                if getattr(a, attr) != getattr(b, attr):
                    diffs.append(f"{name}: {attr} {getattr(a, attr)!r} != {getattr(b, attr)!r}")
            if a.content != b.content:
                diffs.append(
                    f"{name}: content differs ({len(a.content)} vs {len(b.content)} bytes)"
                )
            if a.sparse and not b.sparse:
                diffs.append(f"{name}: not sparse")
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


def _write_at(dir_fd: int, name: bytes, data: bytes, i: int) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    t = BASE_MTIME_NS + i * 1_000_000_007
    os.utime(name, ns=(t, t), dir_fd=dir_fd)


def build_long_names(root: Path) -> Path:
    """Names of 240 to 255 bytes (NAME_MAX), ASCII and multibyte, in a file and a directory,
    plus files that sort after them (a restore that stops at a long name misses those)."""
    multibyte = "語".encode() * 85  # 255 bytes, 85 characters
    os.makedirs(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _write_at(fd, b"a" * 255, b"255 ascii\n", 1)
        _write_at(fd, b"b" * 240, b"240 ascii\n", 2)
        _write_at(fd, multibyte, b"255 multibyte\n", 3)
        os.mkdir("é".encode() * 127 + b"d", dir_fd=fd)  # 255 bytes
        sub = os.open("é".encode() * 127 + b"d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        try:
            _write_at(sub, b"c" * 255, os.urandom(200_000), 4)
            _write_at(sub, b"zz after", b"after\n", 5)
        finally:
            os.close(sub)
        _write_at(fd, b"zz after", b"after\n", 6)
    finally:
        os.close(fd)
    return root


def build_deep_tree(root: Path, length: int = 5000) -> bytes:
    """Nested directories of 200-byte names whose deepest path exceeds `length` bytes
    (PATH_MAX is 4096), a file and a symlink at the bottom and a file after them; return
    the deepest directory's path relative to `root`."""
    os.makedirs(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    rel = b""
    i = 0
    while len(rel) <= length:
        name = b"%03d-" % i + b"d" * 195
        os.mkdir(name, dir_fd=fd)
        _write_at(fd, b"file-%03d" % i, b"level %d\n" % i, i)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, rel, i = child, rel + b"/" + name if rel else name, i + 1
    try:
        _write_at(fd, b"bottom.bin", os.urandom(100_000), i)
        os.symlink(b"bottom.bin", b"bottom-link", dir_fd=fd)
    finally:
        os.close(fd)
    return rel


def build_fidelity_tree(root: Path, *, xattrs: bool) -> Path:
    """Hard links (same and other directory, 3 names of one inode), a sparse file with data
    between holes and a trailing hole, a mostly-zero dense file, and, if `xattrs`, user.*
    extended attributes (text, binary, empty value) on files and a directory."""
    rng = random.Random(9)
    os.makedirs(root / "hard")
    os.makedirs(root / "other")
    (root / "hard" / "a.bin").write_bytes(rng.randbytes(150_000))
    os.link(root / "hard" / "a.bin", root / "hard" / "b-link.bin")
    os.link(root / "hard" / "a.bin", root / "other" / "c-link.bin")
    (root / "single.txt").write_bytes(b"one link only\n")
    with open(root / "sparse.img", "wb") as f:
        f.write(b"head" * 1024)
        f.seek(8 << 20)
        f.write(rng.randbytes(5000))
        f.truncate(24 << 20)
    (root / "zeros-dense.bin").write_bytes(bytes(64 << 10) + b"tail")
    if xattrs:
        os.setxattr(root / "single.txt", "user.comment", "témoignage n° 1".encode())
        os.setxattr(root / "single.txt", "user.binary", b"\x00\xff\x01")
        os.setxattr(root / "single.txt", "user.empty", b"")
        os.setxattr(root / "hard" / "a.bin", "user.linked", b"shared by three names")
        os.setxattr(root / "other", "user.directory", b"yes")
    for i, rel in enumerate(["hard/a.bin", "single.txt", "sparse.img", "zeros-dense.bin"]):
        _set_mtime(os.fsencode(root / rel), i)
    for i, rel in enumerate(["hard", "other"]):
        _set_mtime(os.fsencode(root / rel), 10 + i)
    return root

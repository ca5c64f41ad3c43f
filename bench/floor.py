#!/usr/bin/env python3
"""The native floor: the least CPU any implementation with samizdat's checks pays per GiB.

    python bench/floor.py DATA_DIR [--write-dir DIR] [--sample 128M]    # prints JSON

Measured on this machine, on the bench's data, one thread each, CPU seconds (user + system of
the measuring thread, CLOCK_THREAD_CPUTIME_ID) per GiB of each primitive's own input:

  read_tree     every file of DATA_DIR/v1 read into one reused buffer (after an untimed
                pass that brings the tree into the page cache: a page-cache read)
  write_tree    files of the tree (same relative paths and sizes; all of them, or every k-th
                in order of size so that about --write bytes are written) created and
                written in WRITE_DIR (the restore target's file system), mode and mtime set;
                then deleted (not timed)
  write_stream, read_stream
                --write bytes (at most the tree's) as 64 MiB files (a store's packs)
                written, then read back from the page cache into a reused buffer; deleted
  chunk         the product's chunker (samizdat.core.chunker.Chunker, the archive's keyed
                cut points) over a sample of every file (the same share of each file)
  zstd_compress, zstd_decompress
                the codec's level (samizdat.core.codec.DEFAULT_ZSTD_LEVEL), chunk by chunk;
                both per GiB of all plaintext (every chunk is compressed; only those that
                shrank, as the codec stores them, are decompressed)
  blake3        keyed BLAKE3-256 of each padded body (the nonce; a blob id costs the same)
  aes_encrypt, aes_decrypt
                AES-GCM under the archive's encryption key (samizdat.core.keys) of each body
                (flags + payload, padded by samizdat.core.padding)
  Every timed pass discards its output (the outputs the next primitive needs are made in an
  untimed pass first), so no primitive pays for first-touch page faults of kept results.
  tls_send, tls_recv
                TLS 1.3 over loopback with Python's ssl, TLS_AES_128_GCM_SHA256 (what gRPC's
                BoringSSL picks with AES hardware), sendall of 1 MiB / recv_into a reused
                1 MiB buffer, in a child process (OPENSSL_CONF sets the TLS 1.3 suite)

`stored_ratio` = stored blob bytes (padded, with header and tag) / plaintext bytes of the
sample. The floor of a step, per GiB of plaintext (r = stored_ratio):

  push    client  read_tree + chunk + zstd_compress + r * (2 blake3 + aes_encrypt + tls_send)
          node    r * (tls_recv + blake3 + write_stream)
  restore node    r * (read_stream + blake3 + tls_send)
          client  r * (tls_recv + blake3 + aes_decrypt) + zstd_decompress + write_tree

(2 blake3: the keyed nonce over the payload and the id over the blob; the node checks the id
of every blob it stores and serves, as the product does.) Not included: anything a design
could avoid (protobuf, HTTP/2 framing, copies, a database's index, threads), nor the kernel's
write-back of dirty pages (not charged to any process; `cp -a` does not pay it either). The
best MB/s on this machine if perfectly parallel: plaintext GiB / (client + node CPU / cores),
cores = os.sched_getaffinity.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20
TLS_SUITE = "TLS_AES_128_GCM_SHA256"
TLS_BLOCK = MiB
STREAM_FILE = 64 * MiB
# Writes go out in blocks of cp's size: from a buffer that stays in the CPU's cache they cost
# ~25% less CPU than from an 8 MiB one (measured here: 4.9 against 6.3 CPU-s/GiB).
WRITE_BLOCK = 128 * 1024
OPENSSL_CONF = f"""openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = {TLS_SUITE}
"""

# The steps and the primitives (with the byte ratio they apply to: "p" = per plaintext GiB,
# "r" = per stored GiB) each end of each step pays. See the module docstring.
FLOOR_TERMS: dict[str, dict[str, list[tuple[str, float, str]]]] = {
    "push": {
        "client": [
            ("read_tree", 1, "p"),
            ("chunk", 1, "p"),
            ("zstd_compress", 1, "p"),
            ("blake3", 2, "r"),
            ("aes_encrypt", 1, "r"),
            ("tls_send", 1, "r"),
        ],
        "node": [("tls_recv", 1, "r"), ("blake3", 1, "r"), ("write_stream", 1, "r")],
    },
    "restore": {
        "node": [("read_stream", 1, "r"), ("blake3", 1, "r"), ("tls_send", 1, "r")],
        "client": [
            ("tls_recv", 1, "r"),
            ("blake3", 1, "r"),
            ("aes_decrypt", 1, "r"),
            ("zstd_decompress", 1, "p"),
            ("write_tree", 1, "p"),
        ],
    },
}


@dataclass
class StepFloor:
    """The floor of one step: CPU-s per plaintext GiB on each end, and the MB/s it allows."""

    client: float
    node: float
    total: float
    cores: int
    best_mb_s: float


def step_floor(
    cpu_per_gib: dict[str, float], stored_ratio: float, cores: int
) -> dict[str, StepFloor]:
    """The floor of each step from the primitives' CPU-s/GiB (of their own input) and the
    stored/plaintext byte ratio; best MB/s = GiB / (total CPU / cores)."""
    out = {}
    for step, ends in FLOOR_TERMS.items():
        per_end = {
            end: sum(
                times * cpu_per_gib[name] * (stored_ratio if basis == "r" else 1.0)
                for name, times, basis in terms
            )
            for end, terms in ends.items()
        }
        total = sum(per_end.values())
        out[step] = StepFloor(
            client=round(per_end["client"], 3),
            node=round(per_end["node"], 3),
            total=round(total, 3),
            cores=cores,
            best_mb_s=round(GiB * cores / total / 1e6, 1) if total > 0 else 0.0,
        )
    return out


def ceiling_ratio(best_mb_s: float, reference_mb_s: float) -> float:
    """How fast the floor allows a step to be against a reference (e.g. `cp -a`) of the same
    run: 0.9 is reachable only if this is >= 0.9."""
    return round(best_mb_s / reference_mb_s, 2) if reference_mb_s > 0 else 0.0


@dataclass
class FloorResult:
    cpu_s_per_gib: dict[str, float]  # each primitive, per GiB of its own input
    bytes_measured: dict[str, int]  # each primitive's input bytes
    stored_ratio: float
    steps: dict[str, StepFloor]
    cores: int
    tls_cipher: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


# ------------------------------------------------------------------------- measuring


def thread_cpu() -> float:
    return time.thread_time()


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    """(CPU seconds of this thread, bytes) of one call of `fn`, which returns its bytes."""
    c0 = thread_cpu()
    n = fn()
    return thread_cpu() - c0, n


def tree_files(root: Path) -> list[tuple[Path, int]]:
    """(path, size) of every regular file under root, in a stable order."""
    out = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            p = Path(dirpath, n)
            st = os.lstat(p)
            if st.st_mode & 0o170000 == 0o100000:
                out.append((p, st.st_size))
    return out


def read_files(files: list[tuple[Path, int]], buf: memoryview) -> int:
    """Read every file into `buf` (reused), as a restore or push reads: open, read, close."""
    total = 0
    for path, _ in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            while n := os.readv(fd, [buf]):
                total += n
        finally:
            os.close(fd)
    return total


def sample_slices(files: list[tuple[Path, int]], share: float) -> list[bytes]:
    """The first `share` of each file's bytes (at least one byte of a non-empty file)."""
    out = []
    for path, size in files:
        if size:
            with open(path, "rb") as f:
                out.append(f.read(max(1, int(size * share))))
    return out


def every_kth_by_size(files: list[tuple[Path, int]], budget: int) -> list[tuple[Path, int]]:
    """Every k-th file in order of size, k chosen so that about `budget` bytes are chosen:
    a sample with the tree's mix of sizes, hence its bytes per file (all files if the tree
    fits the budget)."""
    total = sum(size for _, size in files)
    k = max(1, -(-total // budget)) if budget > 0 else 1
    return sorted(files, key=lambda f: (f[1], str(f[0])))[k // 2 :: k]


def write_tree(files: list[tuple[Path, int]], root: Path, into: Path, buf: memoryview) -> int:
    """Create each file (same relative path and size) under `into` from `buf`, set its mode
    and mtime; return the bytes written."""
    total = 0
    made: set[Path] = set()
    mtime_ns = time.time_ns() - 86400 * 10**9
    for path, size in files:
        dest = into / path.relative_to(root)
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            left = size
            while left:
                n = os.write(fd, buf[: min(left, len(buf))])
                left -= n
                total += n
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
    return total


def write_stream(into: Path, nbytes: int, buf: memoryview) -> int:
    """Write `nbytes` as STREAM_FILE-sized files (a store's packs); return the bytes."""
    total, i = 0, 0
    while total < nbytes:
        fd = os.open(into / f"pack-{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            left = min(STREAM_FILE, nbytes - total)
            while left:
                n = os.write(fd, buf[: min(left, len(buf))])
                left -= n
                total += n
        finally:
            os.close(fd)
        i += 1
    return total


# --------------------------------------------------------------------------- TLS child


def tls_transfer(nbytes: int) -> dict[str, object]:
    """Send `nbytes` over TLS 1.3 on loopback between two threads of this process; CPU of
    each end's thread and the negotiated suite."""
    from samizdat.server.identity import CERT_FILE, KEY_FILE, create_identity

    with tempfile.TemporaryDirectory(prefix="floor-tls-") as d:
        create_identity(Path(d))  # a node's own kind of key and certificate (ECDSA P-256)
        cert, key = Path(d, CERT_FILE), Path(d, KEY_FILE)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.load_verify_locations(cert)
        client_ctx.check_hostname = False
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        listener = socket.create_server(("127.0.0.1", 0))
        result: dict[str, object] = {}

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                block = memoryview(os.urandom(TLS_BLOCK))
                c0, sent = thread_cpu(), 0
                while sent < nbytes:
                    n = min(TLS_BLOCK, nbytes - sent)
                    tls.sendall(block[:n])
                    sent += n
                result["send_cpu_s"] = thread_cpu() - c0
                tls.recv(1)  # the client's acknowledgement: all bytes arrived

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        with client_ctx.wrap_socket(
            socket.create_connection(listener.getsockname()), server_hostname="floor"
        ) as tls:
            suite = tls.cipher()
            buf = memoryview(bytearray(TLS_BLOCK))
            c0, got = thread_cpu(), 0
            while got < nbytes:
                n = tls.recv_into(buf)
                if not n:
                    break
                got += n
            result["recv_cpu_s"] = thread_cpu() - c0
            tls.sendall(b"k")
        server.join(60)
        listener.close()
        result |= {"bytes": got, "cipher": suite[0] if suite else ""}
        return result


def measure_tls(nbytes: int) -> dict[str, object]:
    """tls_transfer in a child process whose OpenSSL offers only TLS_SUITE for TLS 1.3
    (Python's ssl cannot set TLS 1.3 suites; OpenSSL's configuration can)."""
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", prefix="floor-openssl-") as conf:
        conf.write(OPENSSL_CONF)
        conf.flush()
        env = dict(os.environ, OPENSSL_CONF=conf.name)
        p = subprocess.run(
            [sys.executable, __file__, "--tls-child", str(nbytes)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    if p.returncode != 0:
        raise RuntimeError(f"TLS measurement failed: {p.stderr.strip()[-500:]}")
    out: dict[str, object] = json.loads(p.stdout)
    return out


# ------------------------------------------------------------------------------ whole


@contextlib.contextmanager
def scratch(parent: Path) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="floor-", dir=parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def measure(
    tree: Path,
    write_dir: Path,
    sample_bytes: int = 128 * MiB,
    write_bytes: int = 512 * MiB,
    tls_bytes: int = 512 * MiB,
    say: Callable[[str], None] = lambda _: None,
) -> FloorResult:
    """Measure every primitive on `tree` (the bench's v1) and compute the steps' floors."""
    import blake3
    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from samizdat.core import codec
    from samizdat.core.chunker import Chunker
    from samizdat.core.keys import ArchiveKey
    from samizdat.core.padding import pad

    t0 = time.perf_counter()
    cpu: dict[str, float] = {}
    nbytes: dict[str, int] = {}

    def record(name: str, seconds: float, n: int) -> None:
        cpu[name] = round(seconds / (n / GiB), 3) if n else 0.0
        nbytes[name] = n

    files = tree_files(tree)
    total = sum(size for _, size in files)
    buf = memoryview(bytearray(8 * MiB))
    read_files(files, buf)  # untimed: bring the tree into the page cache
    say("  floor: read_tree")
    record("read_tree", *timed(lambda: read_files(files, buf)))

    with scratch(write_dir) as d:
        say("  floor: write_tree, write_stream, read_stream")
        chosen = every_kth_by_size(files, write_bytes)
        block = buf[:WRITE_BLOCK]
        record("write_tree", *timed(lambda: write_tree(chosen, tree, d / "tree", block)))
        (d / "stream").mkdir()
        stream_bytes = min(total, write_bytes)
        record("write_stream", *timed(lambda: write_stream(d / "stream", stream_bytes, block)))
        packs = [(p, p.stat().st_size) for p in sorted((d / "stream").iterdir())]
        record("read_stream", *timed(lambda: read_files(packs, buf)))

    say("  floor: chunk, zstd, blake3, AES-GCM")
    key = ArchiveKey.generate()
    slices = sample_slices(files, min(1.0, sample_bytes / total) if total else 1.0)
    chunker = Chunker.for_archive(key)
    chunks: list[bytes] = []

    def chunk_all() -> int:
        for s in slices:
            chunks.extend(chunker.iter_buffer(s))
        return sum(len(s) for s in slices)

    record("chunk", *timed(chunk_all))
    plain = sum(len(c) for c in chunks)
    compressor = zstandard.ZstdCompressor(level=codec.DEFAULT_ZSTD_LEVEL)
    compressed = [compressor.compress(c) for c in chunks]  # kept for the next primitives

    def compress() -> int:
        for c in chunks:
            compressor.compress(c)
        return plain

    record("zstd_compress", *timed(compress))
    zipped = [z if len(z) < len(c) else None for z, c in zip(compressed, chunks, strict=True)]
    decompressor = zstandard.ZstdDecompressor()

    def decompress() -> int:  # per GiB of all plaintext: a chunk stored raw costs nothing
        for z in zipped:
            if z is not None:
                decompressor.decompress(z, max_output_size=codec.MAX_PLAINTEXT)
        return plain

    record("zstd_decompress", *timed(decompress))
    bodies = [
        pad(bytes([codec.FLAG_ZSTD if z is not None else 0]), z if z is not None else c)
        for z, c in zip(zipped, chunks, strict=True)
    ]
    body_bytes = sum(len(b) for b in bodies)

    def hash_all() -> int:
        for b in bodies:
            blake3.blake3(b, key=key.nonce_key).digest()
        return body_bytes

    record("blake3", *timed(hash_all))
    aead = AESGCM(key.encryption_key)
    nonce, aad = bytes(12), bytes(key.archive_id)
    sealed = [aead.encrypt(nonce, b, aad) for b in bodies]  # kept for decrypt

    def encrypt() -> int:
        for b in bodies:
            aead.encrypt(nonce, b, aad)
        return body_bytes

    def decrypt() -> int:
        for s in sealed:
            aead.decrypt(nonce, s, aad)
        return body_bytes

    record("aes_encrypt", *timed(encrypt))
    record("aes_decrypt", *timed(decrypt))
    stored_ratio = (body_bytes + codec.OVERHEAD * len(bodies)) / plain if plain else 1.0

    say("  floor: TLS over loopback")
    tls = measure_tls(tls_bytes)
    got = int(tls["bytes"])  # type: ignore[call-overload]
    record("tls_send", float(tls["send_cpu_s"]), got)  # type: ignore[arg-type]
    record("tls_recv", float(tls["recv_cpu_s"]), got)  # type: ignore[arg-type]

    cores = len(os.sched_getaffinity(0))
    notes = []
    if tls["cipher"] != TLS_SUITE:
        notes.append(f"TLS negotiated {tls['cipher']}, not {TLS_SUITE}")
    return FloorResult(
        cpu_s_per_gib=cpu,
        bytes_measured=nbytes,
        stored_ratio=round(stored_ratio, 4),
        steps=step_floor(cpu, stored_ratio, cores),
        cores=cores,
        tls_cipher=str(tls["cipher"]),
        seconds=round(time.perf_counter() - t0, 1),
        notes=notes,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, nargs="?", help="bench data dir (holds v1/)")
    ap.add_argument("--write-dir", type=Path, default=None, help="default: DATA/..")
    ap.add_argument("--sample", default="128M")
    ap.add_argument("--write", default="512M")
    ap.add_argument("--tls", default="512M")
    ap.add_argument("--tls-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tls_child:
        print(json.dumps(tls_transfer(args.tls_child)))
        return 0
    if args.data is None:
        ap.error("DATA is required")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen_data import parse_size

    result = measure(
        args.data / "v1",
        args.write_dir or args.data.parent,
        parse_size(args.sample),
        parse_size(args.write),
        parse_size(args.tls),
        say=lambda s: print(s, file=sys.stderr),
    )
    print(json.dumps(result.as_json(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

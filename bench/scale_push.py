#!/usr/bin/env python3
"""Memory at scale: push a large tree (default 20 GiB) into a real node and report the peak
RSS of the CLI and of the node, which must stay bounded (DESIGN.md §5: < 300 MiB whatever
the archive size).

The tree is written under --dir (default /tmp/samizdat-scale): --size bytes of incompressible
"videos" (1 GiB each, AES-256-CTR keystream, ~2 GB/s) plus --notes small text files, so that
the data, the node's store and one restore never need more than ~2x --size of disk. Then a
node is started (TLS on loopback) and `samizdat push` runs once; wall time, CPU and peak RSS
(VmHWM) of both processes are printed as JSON. Everything is deleted at the end unless
--keep.

Usage: python bench/scale_push.py [--size 20G] [--notes 5000] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_data import parse_size  # noqa: E402
from harness import Sampler, read_hwm, run_measured  # noqa: E402

BIN = Path(sys.executable).parent
GiB = 1 << 30
MiB = 1 << 20


def write_tree(root: Path, size: int, notes: int) -> None:
    videos = root / "videos"
    videos.mkdir(parents=True)
    block = bytes(8 * MiB)
    for i in range((size + GiB - 1) // GiB):
        enc = Cipher(algorithms.AES(i.to_bytes(32, "big")), modes.CTR(bytes(16))).encryptor()
        with open(videos / f"clip-{i:04d}.bin", "wb") as f:
            left = min(GiB, size - i * GiB)
            while left > 0:
                n = min(left, len(block))
                f.write(enc.update(block[:n]))
                left -= n
    text = root / "notes"
    for i in range(notes):
        d = text / f"case-{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"note-{i:05d}.txt").write_text(f"statement {i}\n" * (20 + i % 200))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=20 * GiB)
    ap.add_argument("--notes", type=int, default=5000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/samizdat-scale"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = args.dir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = dict(os.environ, SAMIZDAT_CACHE_DIR=str(root / "id-cache"))
    node = None
    try:
        t = time.perf_counter()
        write_tree(root / "tree", args.size, args.notes)
        print(
            f"wrote {args.size / GiB:.1f} GiB in {time.perf_counter() - t:.0f} s", file=sys.stderr
        )

        def run(*a: str) -> str:
            return subprocess.run(
                [str(BIN / a[0]), *a[1:]], check=True, capture_output=True, text=True, env=env
            ).stdout.strip()

        archive = run("samizdat", "key", "new", str(root / "archive.key"))
        node_id = run("samizdat-node", "init", str(root / "node"), "--listen", "127.0.0.1:0")
        run("samizdat-node", "host", str(root / "node"), archive)
        ready = root / "ready"
        node = subprocess.Popen(
            [
                str(BIN / "samizdat-node"),
                "serve",
                str(root / "node"),
                "--ready-file",
                str(ready),
                "--log-level",
                "warning",
            ],
            stdin=subprocess.DEVNULL,
        )
        while not (ready.exists() and ready.read_text().strip()):
            if node.poll() is not None:
                raise SystemExit("node failed to start")
            time.sleep(0.05)
        port = ready.read_text().strip()
        node_cpu0 = cpu_seconds(node.pid)
        subprocess.run(["sync"], check=False)
        sampler = Sampler()
        sampler.start()
        try:
            push = run_measured(
                [
                    str(BIN / "samizdat"),
                    "push",
                    "--key",
                    str(root / "archive.key"),
                    "--node",
                    f"{node_id}@127.0.0.1:{port}",
                    str(root / "tree"),
                ],
                sampler,
                env=env,
            )
        finally:
            sampler.stop()
        result = {
            "plaintext_gib": round(args.size / GiB, 2),
            "notes": args.notes,
            "push_seconds": round(push.seconds, 1),
            "push_mb_s": round(args.size / push.seconds / 1e6, 1),
            "cli_cpu_s": round(push.cpu_seconds, 1),
            "cli_peak_rss_mib": round(push.peak_rss / MiB, 1),
            "node_peak_rss_mib": round(read_hwm(node.pid) / MiB, 1),
            "node_cpu_s": round(cpu_seconds(node.pid) - node_cpu0, 1),
            "cli_summary": push.stdout.strip().splitlines()[-1],
        }
        print(json.dumps(result, indent=1))
        return 0
    finally:
        if node is not None and node.poll() is None:
            node.terminate()
            node.wait(30)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

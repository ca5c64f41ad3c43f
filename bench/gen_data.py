#!/usr/bin/env python3
"""Deterministic generator of archive-like bench data: v1 and an edited v2.

Layout of OUT (default /tmp/samizdat-bench/data-2G-s1):

    OUT/v1/          the first version of the archive
    OUT/v2/          v1 plus edits that shift content (see below)
    OUT/manifest.json what was generated and every edit made (read by bench.py)

v1 looks like the evidence archive of DESIGN.md: ~96 % of the bytes are large incompressible
"videos" (50-500 MB at the default 2 GiB; the range scales down with smaller totals), spread
over nested case directories, plus thousands of small compressible text files (notes,
JSON metadata, transcripts, an index per case).

v2 is v1 copied, then edited:
- half of the videos get 2-5 edits each at random offsets: insertions of random bytes
  or deletions, 4 KiB to 4 MiB (content after the edit shifts);
- a few videos get data appended (1-16 MiB);
- ~3 % of the notes are edited (a paragraph inserted or replaced), ~1 % of the small files are
  deleted and ~1 % new notes are added.

Everything is reproducible from --seed: file contents come from AES-256-CTR keystreams keyed by
(seed, file number) (6 GB/s with AES-NI) and text from `random.Random(seed)`. Generation of
2 GiB takes a few seconds plus the disk writes. Files already in place with the right
manifest are reused; `--force` regenerates.

Usage: python bench/gen_data.py [--size 2G] [--seed 1] [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GENERATOR_VERSION = 2
BLOCK = 8 << 20
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

WORDS = (  # noqa: SIM905
    "the a of and to in detainee guard cell block night camera footage corridor hearing "
    "witness statement interview transfer facility prison report medical injury lawyer "
    "family visit denied date time location source verified unverified metadata timestamp "
    "duration frame audio original copy hash received courier encrypted contact redacted "
    "testimony officer unit shift record evidence appendix translation summary note review "
    "interrogation room yard isolation hunger strike complaint petition court ruling appeal "
    "ministry spokesperson denied confirmed reportedly allegedly according was were is are "
    "had has been not no with without from by at on for after before during under between"
).split()


def parse_size(text: str) -> int:
    """'2G', '512M', '100GB', '1.5GiB', '123456' -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    for suffix, m in (("K", KiB), ("M", MiB), ("G", GiB), ("T", 1 << 40)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 2G, 512M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return int(value * mult)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


class Stream:
    """A seeded pseudo-random byte stream (AES-256-CTR keystream)."""

    def __init__(self, seed: int, *labels: object) -> None:
        key = hashlib.sha256(repr((GENERATOR_VERSION, seed) + labels).encode()).digest()
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._zeros = bytes(BLOCK)
        self._buf = bytearray(BLOCK + 16)

    def read(self, n: int) -> memoryview:
        """Next n (<= BLOCK) bytes; the view is valid until the next call."""
        if n > BLOCK:
            raise ValueError("read at most BLOCK bytes")
        written = self._enc.update_into(memoryview(self._zeros)[:n], self._buf)
        return memoryview(self._buf)[:written]

    def write_to(self, f: object, n: int) -> None:
        while n > 0:
            step = min(n, BLOCK)
            f.write(self.read(step))  # type: ignore[attr-defined]
            n -= step


def text_blob(rng: random.Random, size: int) -> str:
    """Compressible prose of about `size` bytes (lines of words, paragraphs)."""
    words = rng.choices(WORDS, k=max(4, size // 6))
    out, line = [], []
    for i, w in enumerate(words):
        line.append(w)
        if len(line) >= rng.randint(8, 16):
            out.append(" ".join(line))
            line = []
            if i % 7 == 0:
                out.append("")
    out.append(" ".join(line))
    return "\n".join(out)[:size] + "\n"


@dataclass
class Plan:
    size: int
    seed: int
    videos: list[tuple[str, int]]  # (relative path, size)
    smalls: list[tuple[str, str]]  # (relative path, kind)


def make_plan(total: int, seed: int) -> Plan:
    rng = random.Random(f"plan-{seed}-{total}")
    small_budget = max(64 * KiB, total // 25)  # ~4 % small files
    video_budget = total - small_budget
    # Video sizes 50-500 MB at 2 GiB and above; scaled down for smaller totals so that a small
    # run still has several files.
    scale = min(1.0, total / (2 * GiB))
    lo, hi = max(64 * KiB, int(50e6 * scale)), max(256 * KiB, int(500e6 * scale))
    sizes: list[int] = []
    left = video_budget
    while left > 0:
        s = rng.randint(lo, hi)
        if left - s < lo:  # last one takes the rest
            s = left
        sizes.append(s)
        left -= s
    years = ["2019", "2020", "2021", "2022", "2023"]
    facilities = [
        "facility-north",
        "facility-east",
        "detention-centre-7",
        "prison-12",
        "transit-camp",
    ]
    videos = []
    cases: list[str] = []
    for i, s in enumerate(sizes):
        case = f"cases/{rng.choice(years)}/{rng.choice(facilities)}/case-{i:04d}"
        cases.append(case)
        videos.append((f"{case}/footage-{i:04d}.mp4", s))
    # Small files: per-case notes + metadata, plus a large "notes" tree of small documents.
    smalls: list[tuple[str, str]] = []
    for case in cases:
        smalls += [
            (f"{case}/notes.md", "note"),
            (f"{case}/metadata.json", "json"),
            (f"{case}/transcript.txt", "note"),
        ]
    avg_small = 6 * KiB
    n_extra = max(20, small_budget // avg_small - len(smalls))
    for j in range(n_extra):
        depth = rng.randint(1, 4)
        parts = ["documents"] + [
            f"{rng.choice(['src', 'batch', 'box', 'folder'])}-{rng.randint(0, 30):02d}"
            for _ in range(depth)
        ]
        kind = rng.choices(["note", "json", "csv"], weights=[6, 3, 1])[0]
        ext = {"note": "txt", "json": "json", "csv": "csv"}[kind]
        smalls.append(("/".join(parts) + f"/doc-{j:05d}.{ext}", kind))
    return Plan(total, seed, videos, smalls)


def small_content(rng: random.Random, kind: str, idx: int) -> bytes:
    if kind == "json":
        doc = {
            "id": f"item-{idx:06d}",
            "received": f"20{rng.randint(19, 23)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
            "source": f"S-{rng.randint(100, 999)}",
            "verified": rng.random() < 0.6,
            "tags": rng.sample(WORDS, 5),
            "sha256": hashlib.sha256(idx.to_bytes(8, "little")).hexdigest(),
            "description": text_blob(rng, rng.randint(200, 3000)),
        }
        return json.dumps(doc, indent=2).encode()
    if kind == "csv":
        rows = ["time,camera,event,confidence"]
        for _ in range(rng.randint(20, 400)):
            rows.append(
                f"{rng.randint(0, 86400)},{rng.randint(1, 40)},"
                f"{rng.choice(WORDS)},{rng.random():.3f}"
            )
        return ("\n".join(rows) + "\n").encode()
    return text_blob(rng, int(rng.lognormvariate(8.3, 0.9)) + 200).encode()


def write_v1(plan: Plan, root: Path) -> dict[str, int]:
    root.mkdir(parents=True)
    total = 0
    for i, (rel, size) in enumerate(plan.videos):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            Stream(plan.seed, "video", i).write_to(f, size)
        total += size
    rng = random.Random(f"small-{plan.seed}")
    for j, (rel, kind) in enumerate(plan.smalls):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = small_content(rng, kind, j)
        p.write_bytes(data)
        total += len(data)
    # A few empty directories and symlinks, as real trees have.
    (root / "inbox" / "unsorted").mkdir(parents=True)
    (root / "README.txt").write_bytes(b"Evidence archive. See cases/ and documents/.\n")
    os.symlink("cases", root / "latest-cases")
    return {"files": len(plan.videos) + len(plan.smalls) + 1, "bytes": total + 46}


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    while length > 0:
        n = os.copy_file_range(src, dst, min(length, 1 << 30), offset)
        if n <= 0:
            raise OSError("copy_file_range returned 0")
        offset += n
        length -= n


def _copy_range_rw(src: int, dst: int, offset: int, length: int) -> None:
    while length > 0:
        data = os.pread(src, min(length, BLOCK), offset)
        if not data:
            raise OSError("unexpected end of file")
        os.write(dst, data)
        offset += len(data)
        length -= len(data)


try:
    os.copy_file_range  # noqa: B018
    copy_range = _copy_range
except AttributeError:  # pragma: no cover - non-Linux
    copy_range = _copy_range_rw


def edit_video(src: Path, dst: Path, edits: list[dict], seed: int, vid: int) -> None:
    """Write dst = src with the edits applied (offsets refer to src, sorted)."""
    size = src.stat().st_size
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pos = 0
        for k, e in enumerate(edits):
            copy_range(sfd, dfd, pos, e["offset"] - pos)
            pos = e["offset"]
            if e["op"] == "insert":
                stream = Stream(seed, "insert", vid, k)
                left = e["length"]
                while left:
                    step = min(left, BLOCK)
                    os.write(dfd, stream.read(step))
                    left -= step
            elif e["op"] == "delete":
                pos += e["length"]
            elif e["op"] == "append":
                pass
        copy_range(sfd, dfd, pos, size - pos)
        for k, e in enumerate(edits):
            if e["op"] == "append":
                stream = Stream(seed, "append", vid, k)
                left = e["length"]
                while left:
                    step = min(left, BLOCK)
                    os.write(dfd, stream.read(step))
                    left -= step
    finally:
        os.close(sfd)
        os.close(dfd)
    st = src.stat()
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns + 86_400 * 10**9))


def write_v2(plan: Plan, v1: Path, v2: Path) -> dict:
    """Copy v1 to v2 and apply edits; return the edit log."""
    rng = random.Random(f"edits-{plan.seed}")
    shutil.copytree(v1, v2, symlinks=True, copy_function=shutil.copy2)
    log: dict = {"videos": [], "notes_edited": [], "deleted": [], "added": []}
    nvid = len(plan.videos)
    edited = set(rng.sample(range(nvid), max(1, round(nvid * 0.5))))
    appended = set(rng.sample(range(nvid), max(1, round(nvid * 0.15))))
    for i, (rel, size) in enumerate(plan.videos):
        if i not in edited and i not in appended:
            continue
        edits = []
        if i in edited:
            offsets = sorted(rng.sample(range(0, size), rng.randint(2, 5)))
            last_end = 0
            for off in offsets:
                if off < last_end:
                    continue
                op = rng.choice(["insert", "insert", "delete"])
                # Sizes log-uniform between 4 KiB and 4 MiB.
                length = int(2 ** rng.uniform(12, 22))
                if op == "delete":
                    length = min(length, size - off)
                edits.append({"op": op, "offset": off, "length": length})
                last_end = off + (length if op == "delete" else 0)
        if i in appended:
            edits.append({"op": "append", "offset": size, "length": int(2 ** rng.uniform(20, 24))})
        (v2 / rel).unlink()
        edit_video(v1 / rel, v2 / rel, edits, plan.seed, i)
        log["videos"].append({"path": rel, "edits": edits})
    notes = [rel for rel, kind in plan.smalls if kind == "note"]
    for rel in rng.sample(notes, max(1, len(notes) * 3 // 100)):
        p = v2 / rel
        lines = p.read_bytes().split(b"\n")
        at = rng.randrange(len(lines))
        para = text_blob(rng, rng.randint(100, 2000)).encode().split(b"\n")
        if rng.random() < 0.5:
            lines[at:at] = para
        else:
            lines[at : at + 3] = para
        p.write_bytes(b"\n".join(lines))
        log["notes_edited"].append(rel)
    smalls = [rel for rel, _ in plan.smalls]
    for rel in rng.sample(smalls, max(1, len(smalls) // 100)):
        if (v2 / rel).exists() and rel not in log["notes_edited"]:
            (v2 / rel).unlink()
            log["deleted"].append(rel)
    for j in range(max(1, len(smalls) // 100)):
        rel = f"documents/incoming-{plan.seed}/new-{j:04d}.txt"
        p = v2 / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(small_content(rng, "note", 100000 + j))
        log["added"].append(rel)
    return log


def tree_totals(root: Path) -> dict[str, int]:
    files = nbytes = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            if not os.path.islink(os.path.join(dirpath, n)):
                files += 1
                nbytes += st.st_size
    return {"files": files, "bytes": nbytes}


def default_out(size: int, seed: int, base: Path | None = None) -> Path:
    base = base or Path(os.environ.get("SAMIZDAT_BENCH_DIR", "/tmp/samizdat-bench"))
    label = f"{size // GiB}G" if size % GiB == 0 else f"{size // MiB}M"
    return base / f"data-{label}-s{seed}"


def generate(size: int, seed: int, out: Path, force: bool = False, quiet: bool = False) -> dict:
    """Generate (or reuse) v1/v2 under `out`; return the manifest."""
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not force:
        m = json.loads(manifest_path.read_text())
        if (
            m.get("size") == size
            and m.get("seed") == seed
            and m.get("generator_version") == GENERATOR_VERSION
        ):
            if not quiet:
                print(f"reusing {out} (v1 {human(m['v1']['bytes'])}, v2 {human(m['v2']['bytes'])})")
            return m
    if out.exists():
        shutil.rmtree(out)
    free = shutil.disk_usage(out.parent if out.parent.exists() else Path("/")).free
    if free < 2.3 * size:
        raise SystemExit(
            f"error: not enough free disk for {human(size)} of bench data "
            f"(v1 + v2 need ~{human(2.1 * size)}, {human(free)} free)"
        )
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    plan = make_plan(size, seed)
    v1 = write_v1(plan, out / "v1")
    t1 = time.perf_counter()
    edits = write_v2(plan, out / "v1", out / "v2")
    t2 = time.perf_counter()
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": seed,
        "v1": tree_totals(out / "v1"),
        "v2": tree_totals(out / "v2"),
        "videos": len(plan.videos),
        "small_files": len(plan.smalls),
        "video_bytes": sum(s for _, s in plan.videos),
        "edits": edits,
        "inserted_bytes": sum(
            e["length"]
            for v in edits["videos"]
            for e in v["edits"]
            if e["op"] in ("insert", "append")
        ),
        "deleted_bytes": sum(
            e["length"] for v in edits["videos"] for e in v["edits"] if e["op"] == "delete"
        ),
        "seconds": {"v1": round(t1 - t0, 2), "v2": round(t2 - t1, 2)},
    }
    del v1
    manifest_path.write_text(json.dumps(manifest, indent=1))
    if not quiet:
        print(
            f"generated {out}: v1 {manifest['v1']['files']} files "
            f"{human(manifest['v1']['bytes'])}"
            f" in {t1 - t0:.1f}s; v2 {manifest['v2']['files']} files "
            f"{human(manifest['v2']['bytes'])} in {t2 - t1:.1f}s; "
            f"{sum(len(v['edits']) for v in edits['videos'])} edits in "
            f"{len(edits['videos'])} videos (+{human(manifest['inserted_bytes'])} "
            f"-{human(manifest['deleted_bytes'])}), {len(edits['notes_edited'])} notes edited, "
            f"{len(edits['deleted'])} deleted, {len(edits['added'])} added"
        )
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=parse_size, default=2 * GiB, help="total size of v1 (2G)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output dir (default /tmp/samizdat-bench/data-SIZE-sSEED)",
    )
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args(argv)
    out = args.out or default_out(args.size, args.seed)
    generate(args.size, args.seed, out, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

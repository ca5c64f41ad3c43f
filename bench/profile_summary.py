#!/usr/bin/env python3
"""Summarise py-spy raw (collapsed-stack) profiles: where the samples go.

    python bench/profile_summary.py PROFILE.txt [--top 25] [--lines]

Prints the share of samples per thread, the top functions by self time (the frame on top of
the stack: for C extensions without --native this is the Python line that called into them)
and by inclusive time. Produce the input with
`py-spy record --format raw --threads [--idle] -o PROFILE.txt -- CMD` (or bench.py --profile).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str, lines: bool) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "/tmp/sz-src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    where = f"{path}:{m.group('line')}" if lines and m.group("line") else path
    return f"{m.group('func')} ({where})"


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def summarise(path: Path, top: int = 25, lines: bool = False) -> str:
    stacks = load(path)
    total = sum(c for _, c in stacks)
    if not total:
        return f"{path}: no samples"
    threads: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for frames, count in stacks:
        thread = frames[0] if frames[0].startswith(("thread", "process")) else "?"
        body = frames[1:] if thread != "?" else frames
        # Name threads by their entry function when py-spy gives only an address.
        entry = next(
            (short(f, False) for f in body if "_bootstrap" not in f and "threading.py" not in f),
            thread,
        )
        threads[f"{thread.split(' ')[0]} {entry}"] += count
        if body:
            self_t[short(body[-1], lines)] += count
        for f in {short(f, lines) for f in body}:
            incl[f] += count
    out = [f"{path.name}: {total} samples"]
    out.append("  threads (by first non-threading frame):")
    for name, c in threads.most_common(12):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    out.append("  self (top of stack):")
    for name, c in self_t.most_common(top):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    out.append("  inclusive:")
    for name, c in incl.most_common(top):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--lines", action="store_true", help="self time per source line")
    args = ap.parse_args(argv)
    for p in args.profiles:
        print(summarise(p, args.top, args.lines))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

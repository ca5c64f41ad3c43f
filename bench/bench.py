#!/usr/bin/env python3
"""samizdat benchmark: real node process, real CLI, generated archive-like data.

    python bench/bench.py --size 2G --out bench/out/results.json

Steps (each a named scenario, see SCENARIOS; pick with --only):
  push_v1   `samizdat push` of v1 into an empty node        MB/s = v1 plaintext bytes / wall time
  push_v2   `samizdat push` of v2 (edited v1)                MB/s, and bytes newly stored
  push_v2_again  `samizdat push` of v2 again, unchanged (files cache: no file read)
  restore   `samizdat restore` of the latest snapshot (v2) into a fresh directory, then a
            byte-for-byte comparison with v2 (not timed); again on tmpfs (restore_tmpfs) when
            /dev/shm has room; before each, `cp -a` of v2 to the same file system: the floor
            that creating ~14,000 files and ~18,000 directories costs there
  verify    `samizdat verify` of the latest snapshot (downloads, decrypts, checks, writes nothing)
  backfill  a new, empty node n2 peered with n1 pulls the whole archive; wall time from its
            start until GetStatus shows every snapshot complete (MB/s of plaintext and of
            stored bytes)
  noop      n2 complete, pulling from n1 every 0.2 s through a byte-counting proxy: ms per
            round (the node's own histogram) and bytes per round (both directions, with TLS)
  restore3  a third node n3 back-fills from n1 and n2, then `samizdat restore` of v2 from all
            three nodes at once, compared with v2
  scrub     n1 restarted with an unlimited scrub rate; wall time of one whole pass
  peers     the same push v1 / push v2 / restore / verify with restic and borg (installed with
            apt-get if missing; --no-peers skips), printed as ratios
  floor     the native floor (floor.py): CPU-s/GiB of the work no design with samizdat's
            checks can skip, measured on v1; push and restore against it, and the restore's
            ceiling against `cp -a` (last, ~25 s at 2G)

--repeat N runs push v1, push v2 and restore of samizdat, cp -a, restic and borg N times
(rounds 2..N interleaved, each on a fresh node and repositories; repeat.py) and reports the
medians, min and max. Each step records the machine's conditions (conditions.py: steal,
iowait, others' CPU, Dirty + Writeback, the input's share in the page cache); an input less
than 99% cached is read into the page cache before the step (--no-warm: not).

Every command runs as a subprocess. For each one the bench records wall time, CPU time
(user+sys, from wait4), the CLI's peak RSS (VmHWM, the kernel's high-water mark, read with RSS
by a psutil sampler every 50 ms over the process tree; the largest single process counts), and
each node's peak RSS during the step (its VmHWM is reset through /proc/PID/clear_refs before
each step) and CPU time. Every step reports CPU-seconds per GiB for each process (the CLI and
each node by name) beside MB/s, in the table and in the JSON (`cpu_s_per_gib`).

Nodes are tests/nodeproc.py's NodeProcess (`samizdat-node init/host/serve` on a free loopback
port, TLS, the client pinning the node's id: NODE_ID@127.0.0.1:PORT) in a temporary run
directory under --workdir, always stopped at the end (SIGTERM, then SIGKILL). Data stays in
the page cache (the machine has the RAM, and dropping caches needs privileges a bench should
not need; each step's input is checked and read in if evicted): figures are CPU and pipeline
bound, not disk-read bound. `sync` runs right before each step so that dirty pages of one
step are not written back during the next.

--profile DIR wraps every samizdat CLI run in `py-spy record` and attaches py-spy to each node
for the duration of each step; raw (collapsed) stacks land in DIR (STEP-cli.txt,
STEP-n1.txt ...) and bench/profile_summary.py turns them into top-function tables.

Layout: harness.py (measured processes and nodes: wall time, CPU, RSS sampling),
session.py (one run: its data, nodes and steps), conditions.py (the machine around a step),
scenarios.py (the steps above; restic and borg as a table of commands), repeat.py (--repeat),
floor.py (the floor), report.py (the table and the JSON). Adding a scenario: see
scenarios.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_data  # noqa: E402
from harness import BenchError, tool  # noqa: E402
from repeat import run_round  # noqa: E402
from report import print_report, results  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from session import Bench  # noqa: E402

from tests.nodeproc import NodeError  # noqa: E402


def run_rounds(bench: Bench, n: int, peers: bool) -> bool:
    for k in range(2, n + 1):
        run_round(bench, k, peers)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios: " + ", ".join(SCENARIOS),
    )
    ap.add_argument(
        "--size", type=gen_data.parse_size, default=2 * gen_data.GiB, help="size of v1 (default 2G)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("SAMIZDAT_BENCH_DIR", "/tmp/samizdat-bench")),
        help="generated data (reused) and run directories (default /tmp/samizdat-bench)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="use this data dir (v1/, v2/, manifest.json) instead",
    )
    ap.add_argument("--out", type=Path, default=None, help="write results JSON here")
    ap.add_argument(
        "--only",
        default=None,
        help=f"comma-separated scenarios (default: all of {','.join(SCENARIOS)})",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip the restic/borg comparison")
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record py-spy profiles of the CLI and node into DIR",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the run directory (node store, restores, repositories)",
    )
    ap.add_argument("--sample-interval", type=float, default=0.05)
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        metavar="SECONDS",
        help="before each step, wait up to this long for other processes to "
        "quieten (< 0.2 cores busy); default 60",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=31.0,
        metavar="SECONDS",
        help="after deleting a restored tree on disk, wait this long before the "
        "next step (ext4 without a journal scans recently deleted inodes on "
        "every allocation); default 31",
    )
    ap.add_argument(
        "--drain",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each step, after sync, wait up to this long until Dirty + Writeback "
        "(/proc/meminfo) is below 16 MiB; default 0 (sync only)",
    )
    ap.add_argument(
        "--no-warm",
        action="store_true",
        help="do not read a step's input (tree, store, repository) into the page cache "
        "before the step when less than 99%% of it is there",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run push v1, push v2 and restore of samizdat, restic, borg and cp -a N times "
        "(rounds 2..N interleaved, each on a fresh node and repositories); report medians",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="per command (seconds)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.no_peers and "peers" in names:
        names.remove("peers")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.profile is not None:
        tool("py-spy")
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        bench.setup()
        if "push" not in names and any(n not in ("peers", "floor") for n in names):
            names.insert(0, "push")  # every other samizdat scenario needs the snapshots
        rounds_done = args.repeat <= 1
        for name in names:
            if name == "floor" and not rounds_done:  # the floor stays last
                rounds_done = run_rounds(bench, args.repeat, "peers" in names)
            bench.say(f"[{name}]")
            SCENARIOS[name](bench)
        if not rounds_done:
            run_rounds(bench, args.repeat, "peers" in names)
    except (BenchError, NodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = 130
    finally:
        bench.teardown()
    if bench.steps:
        print_report(bench)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results(bench), indent=1))
            print(f"results written to {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""The bench's report: the table printed at the end of a run, and the results JSON."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

import gen_data
import psutil
from repeat import print_summary, summarize
from session import Bench, Step

HERE = Path(__file__).resolve().parent
TARGETS = {  # DESIGN.md §5
    "push_v1": ("MB/s", 250.0),
    "push_v2": ("MB/s", 250.0),
    "restore": ("MB/s", 300.0),
    "restore_tmpfs": ("MB/s", 300.0),
    "restore3": ("MB/s", 300.0),
    "backfill": ("MB/s", 250.0),
    "scrub": ("MB/s", 1000.0),
    "noop_ms": ("ms", 50.0),
    "noop_bytes": ("B", 16384.0),
    "rss": ("MiB", 300.0),
}
ROWS = [  # step name, label in the table
    ("push_v1", "push v1"),
    ("push_v2", "push v2"),
    ("push_v2_again", "re-push v2"),
    ("restore", "restore v2"),
    ("restore_tmpfs", "restore shm"),
    ("restore3", "restore 3n"),
    ("verify", "verify v2"),
    ("backfill", "back-fill"),
    ("backfill_2_peers", "back-fill2"),
    ("scrub", "scrub"),
]
COMPARED = ("cp -a", "restic", "borg")


def machine_info() -> dict[str, object]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def results(b: Bench) -> dict[str, object]:
    """The results JSON: machine and data, targets, every step (with `cpu_by_process` and
    `cpu_s_per_gib`), the same CPU-s/GiB gathered as {tool: {step: {process: s}}}, notes."""
    per_gib: dict[str, dict[str, dict[str, float]]] = {}
    for s in b.steps:
        if s.cpu_s_per_gib:
            per_gib.setdefault(s.tool, {})[s.name] = s.cpu_s_per_gib
    return {
        "meta": machine_info()
        | {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "commit": git_commit(),
            "data": str(b.data),
            "size": b.manifest.get("size"),
            "seed": b.manifest.get("seed"),
            "v1": b.manifest.get("v1"),
            "v2": b.manifest.get("v2"),
            "edits_inserted_bytes": b.manifest.get("inserted_bytes"),
            "edits_deleted_bytes": b.manifest.get("deleted_bytes"),
            "page_cache": "data and repositories are in the page cache (not dropped)",
            "profiled": b.profile_dir is not None,
            "loadavg_at_start": b.loadavg,
        },
        "targets": {k: {"unit": u, "value": v} for k, (u, v) in TARGETS.items()},
        "steps": [asdict(s) for s in b.steps],
        "cpu_s_per_gib": per_gib,
        "floor": floor_rows(b),
        "repeat": summarize(b.steps),
        "notes": b.notes,
    }


def node_cpu_per_gib(s: Step) -> dict[str, float]:
    return {p: v for p, v in s.cpu_s_per_gib.items() if p not in ("cli", "total")}


def step_line(b: Bench, label: str, s: Step, peers: list[str]) -> str:
    """One row of the table: samizdat's figures, then each compared tool's."""
    target = TARGETS.get(s.name)
    tgt = f"{target[1]:.0f}" if target else "-"
    ok = "" if not target else (" ok" if s.mb_s >= target[1] else " !!")
    nodes = node_cpu_per_gib(s)
    per_node = " ".join(f"{n} {v:.1f}" for n, v in nodes.items()) or "-"
    line = (
        f"{label:<11} {s.mb_s:>7.1f} {tgt:>5}{ok:<2} {s.seconds:>7.1f} "
        f"{s.cpu_s_per_gib.get('cli', 0):>6.1f} {sum(nodes.values()):>6.1f} "
        f"{s.cpu_s_per_gib.get('total', 0):>6.1f}  {per_node:<22} "
        f"{s.peak_rss_mib:>6.0f}Mi {s.extra.get('node_peak_rss_mib', 0):>6.0f}Mi "
        f"{s.extra.get('other_cpu_s', 0):>5.1f}s"
    )
    for t in peers:
        p = b.get(t, s.name)
        if p is None or not p.mb_s:
            line += f" | {'-':>11} {'-':>6} {'-':>6} {'-':>6}"
        else:
            line += (
                f" | {p.mb_s:>11.1f} {s.mb_s / p.mb_s:>5.2f}x "
                f"{p.cpu_s_per_gib.get('total', 0):>6.1f} {p.peak_rss_mib:>4.0f}Mi"
            )
    return line


def print_table(b: Bench) -> None:
    peers = [t for t in COMPARED if any(s.tool == t for s in b.steps)]
    m = b.manifest
    print()
    print(
        f"data: v1 {m['v1']['files']} files {gen_data.human(m['v1']['bytes'])}, "
        f"v2 {gen_data.human(m['v2']['bytes'])} (edits +{gen_data.human(m['inserted_bytes'])}"
        f" -{gen_data.human(m['deleted_bytes'])}); in page cache; "
        f"{os.cpu_count()} cores"
    )
    head = (
        f"{'operation':<11} {'MB/s':>7} {'target':>7} {'wall s':>7} "
        f"{'CLI':>6} {'nodes':>6} {'total':>6}  {'nodes, each':<22} "
        f"{'CLI RSS':>8} {'node RSS':>8} {'others':>6}"
    )
    for t in peers:
        head += f" | {t + ' MB/s':>11} {'ratio':>6} {'s/GiB':>6} {'RSS':>6}"
    print(f"{'':<35}{'--- CPU s per GiB ---':<45}")
    print(head)
    print("-" * len(head))
    for key, label in ROWS:
        s = b.get("samizdat", key)
        if s is not None:
            print(step_line(b, label, s, peers))
    print(
        "CPU s per GiB: CPU seconds (user + system) of the CLI, of the nodes (summed, then each"
        " by name) and of all,\nper GiB of plaintext (scrub: of stored bytes); for a compared"
        " tool, its process. ratio = samizdat MB/s / tool MB/s\n(>1: samizdat faster). RSS ="
        " peak resident set. others = CPU seconds used by the rest of the machine during the\n"
        "step (a shared machine makes wall times unreliable)."
    )


def print_store_growth(b: Bench, peers: list[str]) -> None:
    print("store after v1 and growth from v2 (bytes on disk; samizdat also: stored blob bytes)")
    for t in ["samizdat", *peers]:
        s = b.get(t, "push_v2")
        if s is None:
            continue
        v1s = b.get(t, "push_v1")
        after_v1 = v1s.extra.get("store_disk_bytes", 0) if v1s else 0
        line = (
            f"  {t:<9} after v1 {gen_data.human(after_v1):>10}"
            f" (disk)   v2 adds {gen_data.human(s.extra.get('new_disk_bytes', 0)):>10} (disk)"
        )
        if "new_stored_bytes" in s.extra:
            line += (
                f", {gen_data.human(s.extra['new_stored_bytes'])} in "
                f"{s.extra['new_chunks']} new chunks (GetStatus)"
            )
        print(line)


def print_conditions(b: Bench) -> None:
    """Footnote table: what the machine did during each measured step (bench/conditions.py)."""
    rows = [s for s in b.steps if isinstance(s.extra.get("conditions"), dict)]
    if not rows:
        return
    print(
        "conditions per step (machine-wide CPU s of steal and iowait, CPU s of other processes,"
        " Dirty+Writeback at the start,\nshare of the input in the page cache as found (warm:"
        " MiB then read into it before the step), seconds of sync/drain, wall s; r = round):"
    )
    print(
        f"  {'tool':<8} {'step':<15} {'r':>2} {'steal':>6} {'iowait':>6} {'others':>6} "
        f"{'dirty':>7} {'cached':>6} {'warm':>7} {'sync':>5} {'wall':>6}"
    )
    for s in rows:
        c = s.extra["conditions"]
        assert isinstance(c, dict)
        cached = c.get("input_cached")
        shown = f"{cached * 100:.0f}%" if isinstance(cached, float) else "-"
        print(
            f"  {s.tool:<8} {s.name:<15} {s.extra.get('round', 1)!s:>2} "
            f"{c['steal_s']:>6.1f} {c['iowait_s']:>6.1f} "
            f"{float(s.extra.get('other_cpu_s', 0)):>6.1f} {c['dirty_start_mib']:>5.0f}Mi "  # type: ignore[arg-type]
            f"{shown:>6} {c.get('warmed_mib', 0):>5}Mi {c.get('sync_s', 0):>5.1f} "
            f"{s.seconds:>6.1f}"
        )


FLOOR_ROWS = (("push", "push_v1", "push v1"), ("restore", "restore", "restore v2"))


def floor_rows(b: Bench) -> list[dict[str, object]]:
    """samizdat's CPU-s/GiB and MB/s beside the floor's for push v1 and restore (disk), with
    the restore's ceiling against the same run's `cp -a` (floor.ceiling_ratio)."""
    import floor

    f = b.get("floor", "floor")
    if f is None:
        return []
    steps = f.extra["steps"]
    assert isinstance(steps, dict)
    rows = []
    for kind, name, label in FLOOR_ROWS:
        s = b.get("samizdat", name)
        fl = steps[kind]
        fl = fl if isinstance(fl, dict) else vars(fl)
        row: dict[str, object] = {
            "step": name,
            "label": label,
            "floor_client": fl["client"],
            "floor_node": fl["node"],
            "floor_total": fl["total"],
            "floor_best_mb_s": fl["best_mb_s"],
        }
        if s is not None:
            row |= {
                "cli": s.cpu_s_per_gib.get("cli", 0.0),
                "node": round(sum(node_cpu_per_gib(s).values()), 2),
                "total": s.cpu_s_per_gib.get("total", 0.0),
                "mb_s": s.mb_s,
            }
            ours = summarize(b.steps).get(name, {}).get("samizdat", {})
            if isinstance(ours, dict) and len(ours.get("rounds", [])) > 1:  # --repeat: medians
                cpu = ours["cpu_s_per_gib"]
                row |= {
                    "cli": cpu["cli"]["median"],
                    "node": cpu["nodes"]["median"],
                    "total": cpu["total"]["median"],
                    "mb_s": ours["mb_s"]["median"],
                }
        cp = b.get("cp -a", name)
        if kind == "restore" and cp is not None and cp.mb_s:
            cp_mb_s = cp.mb_s  # with --repeat: the median over the rounds
            cp_spread = summarize(b.steps).get(name, {}).get("cp -a", {})
            if isinstance(cp_spread, dict) and isinstance(cp_spread.get("mb_s"), dict):
                cp_mb_s = float(cp_spread["mb_s"]["median"])
            row["cp_mb_s"] = cp_mb_s
            row["floor_vs_cp"] = floor.ceiling_ratio(float(fl["best_mb_s"]), cp_mb_s)
            if s is not None:
                row["samizdat_vs_cp"] = round(s.mb_s / cp.mb_s, 2)
            ratio = cp_spread.get("ratio") if isinstance(cp_spread, dict) else None
            if isinstance(ratio, dict) and ratio.get("n", 0) > 1:  # --repeat: the median
                row["samizdat_vs_cp"] = ratio["median"]
        rows.append(row)
    return rows


def print_floor(b: Bench) -> None:
    """The floor section: the primitives, then each step's CPU against its floor."""
    f = b.get("floor", "floor")
    if f is None:
        return
    e = f.extra
    per = e["cpu_s_per_gib"]
    assert isinstance(per, dict)
    print(
        f"native floor (bench/floor.py; {e['cores']} cores, stored/plaintext "
        f"{e['stored_ratio']}, TLS {e['tls_cipher']}; measured in {e['seconds']} s):"
    )
    print(
        "  CPU s per GiB of each primitive's input: "
        + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
    )
    print(
        f"  {'step':<11} {'samizdat CPU s/GiB':>24} | {'floor CPU s/GiB':>22} | "
        f"{'MB/s':>6} {'floor best':>10} {'cp -a':>6} {'floor/cp':>8} {'ours/cp':>7}"
    )
    print(
        f"  {'':<11} {'CLI':>7} {'node':>7} {'total':>8} | {'client':>6} {'node':>6} {'total':>8} |"
    )
    for r in floor_rows(b):
        print(
            f"  {r['label']:<11} {r.get('cli', 0):>7.2f} {r.get('node', 0):>7.2f} "
            f"{r.get('total', 0):>8.2f} | {r['floor_client']:>6.2f} {r['floor_node']:>6.2f} "
            f"{r['floor_total']:>8.2f} | {r.get('mb_s', 0):>6.1f} {r['floor_best_mb_s']:>10.1f} "
            + (
                f"{r['cp_mb_s']:>6.1f} {r['floor_vs_cp']:>7.2f}x "
                f"{r.get('samizdat_vs_cp', 0):>6.2f}x"
                if "cp_mb_s" in r
                else f"{'-':>6} {'-':>8} {'-':>7}"
            )
        )
    print(
        "  floor = CPU no implementation with samizdat's checks can skip (client: read, chunk,"
        " zstd, BLAKE3, AES-GCM, TLS;\n  node: TLS, BLAKE3 id check, pack write/read; restore"
        " client also writes the files), per GiB of plaintext;\n  floor best = MB/s with that"
        " CPU spread perfectly over the cores; floor/cp: the share of the same run's `cp -a`\n"
        "  the floor allows (restore at 0.9x cp -a is reachable only if >= 0.9)."
    )
    for n in e.get("notes", []) or []:  # type: ignore[attr-defined]
        print(f"  note: {n}")


def print_report(b: Bench) -> None:
    """The table, store growth, the no-op round, restore checks, memory peaks, notes."""
    print_table(b)
    print()
    print_conditions(b)
    print()
    print_summary(b)
    print()
    print_floor(b)
    print()
    peers = [t for t in COMPARED if t != "cp -a" and any(s.tool == t for s in b.steps)]
    print_store_growth(b, peers)
    noop = b.get("samizdat", "noop_round")
    if noop is not None:
        print(
            f"no-op replication round: {noop.extra['ms_per_round']} ms and "
            f"{noop.extra['bytes_per_round']} B per round and peer over "
            f"{noop.extra['rounds']} rounds, store of {noop.extra['store_chunks']} chunks "
            f"(target < {TARGETS['noop_ms'][1]:.0f} ms, < {TARGETS['noop_bytes'][1]:.0f} B)"
        )
    for t in ["samizdat", *peers]:
        r = b.get(t, "restore")
        if r is not None:
            print(f"  {t} restore identical to v2: {r.extra.get('identical')}")
    ours = [s for s in b.steps if s.tool == "samizdat"]
    worst = max((s.peak_rss_mib for s in ours), default=0)
    worst_node = max((float(s.extra.get("node_peak_rss_mib", 0)) for s in ours), default=0)  # type: ignore[arg-type]
    print(
        f"memory: CLI peak {worst:.0f} MiB, node peak {worst_node:.0f} MiB "
        f"(target < {TARGETS['rss'][1]:.0f} MiB)"
    )
    for n in b.notes:
        print(f"note: {n}")

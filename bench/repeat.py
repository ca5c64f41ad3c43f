"""`--repeat N`: rounds 2..N of push v1, push v2 and restore, every tool interleaved, and the
medians over all rounds.

Round 1 is the ordinary run (its steps carry no `round`). Each further round k uses a fresh,
empty node `rk` (its own id cache), fresh restic and borg repositories, and runs each step for
every tool back to back, so that the tools of one round see the same machine:

    push v1:  samizdat, restic, borg        push v2:  samizdat, restic, borg
    restore:  samizdat, cp -a, restic, borg (each compared with v2, then deleted)

The round's node and repositories are deleted after it. Every step stays in the JSON's
`steps` with `extra.round`; `summarize` gives, per tool and step, the median, min and max of
MB/s and CPU-s/GiB, and of samizdat's ratio to each tool (taken within each round).
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Iterable

from scenarios import PEER_TOOLS, PeerRepo, cp_floor, samizdat_restore
from session import Bench, Step

REPEATED = ("push_v1", "push_v2", "restore")
TOOLS = ("samizdat", "cp -a", "restic", "borg")


def run_round(b: Bench, k: int, peers: bool) -> None:
    """Round `k` (>= 2) of the repeated steps; see the module docstring."""
    from harness import tool

    b.say(f"[round {k}]")
    first = len(b.steps)
    node = b.node(f"r{k}").init()
    node.host(b.archive_id)
    node.start()
    env = dict(b.env, SAMIZDAT_CACHE_DIR=str(b.run_dir / f"id-cache-r{k}"))
    repos = [PeerRepo.make(b, t, f"-r{k}") for t in PEER_TOOLS] if peers else []
    try:
        for r in repos:
            r.init(b)
        for version in ("v1", "v2"):
            b.run_step(
                f"push_{version}",
                [
                    tool("samizdat"),
                    "push",
                    "--key",
                    str(b.key_path),
                    "--node",
                    node.address,
                    str(b.data / version),
                ],  # fmt: skip
                nodes=[node],
                nbytes=b.manifest[version]["bytes"],
                env=env,
                inputs=[b.data / version],
            )
            for r in repos:
                r.push(b, version, version)
        samizdat_restore(b, node, b.run_dir / f"restore-samizdat-r{k}")
        cp_floor(b, b.run_dir / f"cp-floor-r{k}")
        for r in repos:
            r.restore(b)
    finally:
        for s in b.steps[first:]:
            s.extra["round"] = k
        node.stop()
        if not b.args.keep:
            shutil.rmtree(node.directory, ignore_errors=True)
            for r in repos:
                shutil.rmtree(r.repo, ignore_errors=True)


def round_of(s: Step) -> int:
    r = s.extra.get("round", 1)
    return r if isinstance(r, int) else 1


def spread(values: Iterable[float]) -> dict[str, float] | None:
    """Median, min and max (None for no values)."""
    v = sorted(values)
    if not v:
        return None
    return {"median": round(statistics.median(v), 2), "min": v[0], "max": v[-1], "n": len(v)}


def cpu_groups(s: Step) -> dict[str, float]:
    """A step's CPU-s/GiB as cli, nodes (every node summed: each round has its own node
    names) and total."""
    out = {p: v for p, v in s.cpu_s_per_gib.items() if p in ("cli", "total")}
    nodes = [v for p, v in s.cpu_s_per_gib.items() if p not in ("cli", "total")]
    if nodes:
        out["nodes"] = round(sum(nodes), 2)
    return out


def summarize(steps: list[Step]) -> dict[str, dict[str, object]]:
    """{step: {tool: {"mb_s": spread, "cpu_s_per_gib": {cli|nodes|total: spread}, "ratio":
    spread}}}
    over every round; ratio = samizdat MB/s / the tool's MB/s in the same round."""
    by: dict[tuple[str, str], dict[int, Step]] = {}
    for s in steps:
        if s.name in REPEATED and s.tool in TOOLS and s.mb_s:
            by.setdefault((s.name, s.tool), {}).setdefault(round_of(s), s)
    out: dict[str, dict[str, object]] = {}
    for (name, tool_name), rounds in sorted(by.items()):
        ours = by.get((name, "samizdat"), {})
        groups = {k: cpu_groups(s) for k, s in rounds.items()}
        processes = sorted({p for g in groups.values() for p in g})
        entry: dict[str, object] = {
            "rounds": sorted(rounds),
            "mb_s": spread(s.mb_s for s in rounds.values()),
            "cpu_s_per_gib": {
                p: spread(g[p] for g in groups.values() if p in g) for p in processes
            },
        }
        if tool_name != "samizdat":
            entry["ratio"] = spread(
                round(ours[k].mb_s / s.mb_s, 3) for k, s in rounds.items() if k in ours
            )
        out.setdefault(name, {})[tool_name] = entry
    return out


def print_summary(b: Bench) -> None:
    """The medians table (only when some step ran in more than one round)."""
    summary = summarize(b.steps)
    if not any(
        len(e["rounds"]) > 1  # type: ignore[arg-type]
        for tools in summary.values()
        for e in tools.values()
    ):
        return
    print("over all rounds: median [min - max] of MB/s, total CPU s/GiB, samizdat's ratio")

    def fmt(sp: object, digits: int = 1) -> str:
        if not isinstance(sp, dict):
            return "-"
        return f"{sp['median']:.{digits}f} [{sp['min']:.{digits}f}-{sp['max']:.{digits}f}]"

    for name, tools in summary.items():
        for tool_name, e in tools.items():
            cpu = e["cpu_s_per_gib"]
            assert isinstance(cpu, dict)
            print(
                f"  {name:<9} {tool_name:<8} n={len(e['rounds']):<2} "  # type: ignore[arg-type]
                f"MB/s {fmt(e['mb_s']):<22} CPU s/GiB {fmt(cpu.get('total'), 2):<20} "
                + (f"ratio {fmt(e.get('ratio'), 2)}" if "ratio" in e else "")
            )

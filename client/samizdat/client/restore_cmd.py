"""`samizdat restore` and `samizdat verify`: sources from the command line, summary, --json.

Sources are every `--node`, every node of `--cluster`, and every `--store` (a copied node data
directory). Unreachable ones are reported and skipped; the rest are used in parallel.

Files that cannot be restored or verified (chunks no source can serve) are listed at the end
(samizdat.client.damage) and the command exits with EXIT_INCOMPLETE.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from samizdat.client import jsonout, terminal
from samizdat.client.cluster import load_cluster
from samizdat.client.damage import EXIT_INCOMPLETE
from samizdat.client.fetch import SourcePool
from samizdat.client.restore import Restorer, RestoreStats, normalize_paths
from samizdat.client.sources import ChunkSource, SourceSnapshot, resolve_snapshot
from samizdat.core.errors import OutOfSpace, SamizdatError, UsageError
from samizdat.core.keys import ArchiveKey
from samizdat.core.memory import tune_allocator
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.rpc.remote import NodeClient
from samizdat.store.localpeer import LocalPeer

RESUME_HINT = "run the same command again to continue where it stopped"


def open_sources(
    key: ArchiveKey, nodes: Sequence[str], cluster: Path | None, stores: Sequence[Path]
) -> list[ChunkSource]:
    addresses = [NodeAddress.parse(n) for n in nodes]
    if cluster is not None:
        addresses += [n.address for n in load_cluster(cluster).nodes]
    seen: set[tuple[str, int]] = set()
    sources: list[ChunkSource] = []
    for a in addresses:
        if (a.host, a.port) not in seen:
            seen.add((a.host, a.port))
            sources.append(GrpcPeer(NodeClient(a, key)))
    try:
        sources += [LocalPeer.open_copy(p) for p in stores]
    except BaseException:
        for s in sources:
            s.close()
        raise
    if not sources:
        raise UsageError(
            "name at least one source: --node NODE_ID@HOST:PORT, --cluster FILE or --store DIR"
        )
    return sources


def _summary(verb: str, found: SourceSnapshot, stats: RestoreStats) -> dict[str, object]:
    snap = found.snapshot
    return {
        "snapshot": snap.id.hex(),
        "sequence": snap.record.sequence,
        "verb": verb,
        "files": stats.files,
        "bytes": stats.bytes,
        "directories": stats.directories,
        "symlinks": stats.symlinks,
        "skipped_files": stats.skipped_files,
        "skipped_bytes": stats.skipped_bytes,
        "xattrs_refused": stats.xattrs_refused,
        "links_copied": stats.links_copied,
        "chunks_fetched": stats.chunks_fetched,
        "bytes_fetched": stats.bytes_fetched,
        "seconds": round(stats.seconds, 3),
        "mb_per_s": round(stats.bytes / stats.seconds / 1e6, 1) if stats.seconds else 0.0,
        "sources": [r.as_dict() for r in stats.sources],
        "unreachable": list(found.unreachable),
        "complete": not stats.damage,
        "damaged_files": len(stats.damage.files),
        "damaged": stats.damage.as_list(),
    }


def run(
    key: ArchiveKey,
    nodes: Sequence[str],
    cluster: Path | None,
    stores: Sequence[Path],
    snapshot: str,
    dest: str | None,
    paths: Sequence[str],
    overwrite: bool,
    as_json: bool,
    salvage: bool = False,
) -> int:
    """Restore into `dest` (verify if None); return the exit code (0, or EXIT_INCOMPLETE
    when some files are damaged); raise for failures."""
    wanted = normalize_paths(list(paths))
    tune_allocator()
    sources = open_sources(key, nodes, cluster, stores)
    pool: SourcePool | None = None
    try:
        found = resolve_snapshot(sources, bytes(key.archive_id), snapshot)
        for text in found.unreachable:
            terminal.error(f"source {text} is unusable; using the others")
        usable = [s for s, ok in zip(sources, found.reachable, strict=True) if ok]
        complete = [c for c, ok in zip(found.complete, found.reachable, strict=True) if ok]
        pool = SourcePool(usable, complete)
        verb = "restored" if dest is not None else "verified"
        restorer = Restorer(key, pool, found.snapshot, salvage=salvage)
        try:
            with terminal.transfer_progress(verb[:-1] if dest else "verify") as progress:
                restorer.progress = progress
                stats = restorer.run(dest, wanted, overwrite)
        except KeyboardInterrupt:  # click would turn it into a generic "aborted" (exit 1)
            done = f" after {restorer.stats.files} files; {RESUME_HINT}" if dest else ""
            terminal.fail(f"interrupted{done}", "Interrupted", 130)
        except (OutOfSpace, SamizdatError) as e:
            _report_sources(restorer.stats)
            _report_damage(verb, restorer.stats)
            if dest is not None and not isinstance(e, UsageError):
                e.args = (
                    f"{e} ({restorer.stats.files} files restored so far; after fixing "
                    f"this, {RESUME_HINT})",
                )
            raise
    finally:
        if pool is not None:
            pool.close()
        else:
            for s in sources:
                s.close()
    _report_sources(stats)
    if stats.xattrs_refused:
        terminal.warning(
            f"the destination refused {stats.xattrs_refused} extended attribute(s) "
            "(a file system without xattr support?); the files themselves are restored"
        )
    if stats.links_copied:
        terminal.warning(
            f"the destination refused {stats.links_copied} hard link(s); those names were "
            "restored as copies"
        )
    _report_damage(verb, stats)
    code = EXIT_INCOMPLETE if stats.damage else 0
    if as_json:
        jsonout.emit(jsonout.document("restore", **_summary(verb, found, stats)))
        return code
    rate = stats.bytes / stats.seconds / 1e6 if stats.seconds else 0.0
    used = sum(1 for r in stats.sources if r.chunks)
    terminal.say(
        f"{verb} snapshot {found.snapshot.id.hex()[:16]}: {stats.files} files "
        f"({terminal.human_bytes(stats.bytes)}), {stats.directories} dirs, "
        f"{stats.symlinks} symlinks in {stats.seconds:.1f}s ({rate:.0f} MB/s); "
        f"{stats.skipped_files} files already complete; {stats.chunks_fetched} chunks "
        f"fetched ({terminal.human_bytes(stats.bytes_fetched)}) from {used} source(s)"
        + (
            f"; {len(stats.damage.files)} file(s) damaged (listed on stderr)"
            if stats.damage
            else ""
        )
    )
    return code


def _report_damage(verb: str, stats: RestoreStats) -> None:
    lines = stats.damage.lines(verb)
    if lines:
        terminal.error("\n".join(lines))


def _report_sources(stats: RestoreStats) -> None:
    for r in stats.sources:
        if r.damaged_chunks and not r.dropped:
            terminal.error(
                f"source {r.source} has {r.damaged_chunks} damaged chunk(s) (bytes that do "
                f"not match their id, or unreadable); they were taken from other sources "
                f"where any had them, and it stayed a source for everything else"
            )
        if r.corrupt_chunks:
            terminal.error(
                f"source {r.source} served {r.corrupt_chunks} chunk(s) whose bytes "
                f"do not match their id and was dropped; every byte restored was "
                f"verified against its id and came from other sources"
            )
        elif r.dropped:
            terminal.error(
                f"source {r.source} was dropped after {r.failures} failure(s) "
                f"({r.reason}); the other sources took over its share"
            )
        elif r.failures:
            terminal.error(
                f"source {r.source} failed {r.failures} time(s) ({r.reason}); "
                f"the other sources took over"
            )
        elif r.overtaken:
            terminal.error(
                f"source {r.source} was slow or stopped answering: {r.overtaken} batch(es) "
                f"came from other sources instead"
            )

"""`samizdat restore`, `samizdat verify` and `samizdat ls`: sources from the command line,
summary, --json.

Sources are every `--node`, every node of `--cluster`, and every `--store` (a copied node data
directory). Unreachable ones are reported and skipped; the rest are used in parallel.

Files that cannot be restored or verified (chunks no source can serve) are listed at the end
(samizdat.client.damage) and the command exits with ExitCode.INCOMPLETE.
"""

from __future__ import annotations

import base64
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samizdat.client import jsonout, terminal
from samizdat.client.cluster import named_nodes
from samizdat.client.fetch import SourcePool
from samizdat.client.options import EPILOG, open_key, snapshot_option, source_options
from samizdat.client.restore import Restorer, RestoreStats, normalize_paths
from samizdat.client.sources import ChunkSource, SourceSnapshot, resolve_snapshot
from samizdat.core.errors import ExitCode, OutOfSpace, SamizdatError, UsageError
from samizdat.core.interrupt import Interrupted
from samizdat.core.keys import ArchiveKey
from samizdat.core.memory import tune_allocator
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.rpc.remote import NodeClient
from samizdat.store.localpeer import LocalPeer

if TYPE_CHECKING:
    from samizdat.v1.records_pb2 import TreeEntry

RESUME_HINT = "run the same command again to continue where it stopped"
RESTORE_EPILOG = (
    "Sources: any mix of --node, --cluster and --store; chunks are fetched from all of them "
    "in parallel and every byte is verified. A source that fails or serves bad bytes is "
    "dropped and the others take over (a --store copy with damaged chunks stays a source for "
    "the rest). A file that needs a chunk no source can serve is not written under its name; "
    "the others are restored, and the damaged ones are listed at the end. Rerunning continues "
    "the restore: files already complete are kept, missing ones are tried again. "
    "Exit codes: 0 complete; 3 finished, but some files are damaged (listed on stderr and in "
    "--json); 1 failure; 2 usage or connection error; 130 interrupted."
)
VERIFY_EPILOG = (
    "Sources as for restore. Every file is checked, however many are damaged; the damaged "
    "ones (with their lost chunks and why no source could serve them) are listed at the end. "
    "Exit codes: 0 every file verified; 3 some files are damaged (listed on stderr and in "
    "--json); 1 failure; 2 usage or connection error; 130 interrupted."
)


@click.command(epilog=RESTORE_EPILOG)
@source_options
@snapshot_option
@click.option("--overwrite", is_flag=True, help="Replace existing files in DEST that differ")
@click.option(
    "--salvage-partial",
    is_flag=True,
    help="Write what verifies of a damaged file as NAME.samizdat-salvaged (lost ranges "
    "zero-filled, listed in NAME.samizdat-salvaged.json), never under NAME",
)
@jsonout.option("restore")
@click.argument("args", nargs=-1, required=True, metavar="[PATH ...] DEST")
def restore(
    key_path: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    stores: tuple[Path, ...],
    snapshot: str,
    overwrite: bool,
    salvage_partial: bool,
    as_json: bool,
    args: tuple[str, ...],
) -> None:
    """Restore a snapshot (or only the PATHs of it) into DEST, verifying every byte."""
    *paths, dest = args
    sys.exit(
        run(
            open_key(key_path),
            nodes,
            cluster,
            stores,
            snapshot,
            dest,
            paths,
            overwrite,
            as_json,
            salvage=salvage_partial,
        )
    )


@click.command(epilog=VERIFY_EPILOG)
@source_options
@snapshot_option
@jsonout.option("restore")
@click.argument("paths", nargs=-1)
def verify(
    key_path: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    stores: tuple[Path, ...],
    snapshot: str,
    as_json: bool,
    paths: tuple[str, ...],
) -> None:
    """Fetch, decrypt and check every file of a snapshot (or PATHs) end to end; writes
    nothing."""
    sys.exit(run(open_key(key_path), nodes, cluster, stores, snapshot, None, paths, False, as_json))


@click.command("ls", epilog=EPILOG)
@source_options
@jsonout.option("ls")
@click.argument("snapshot")
@click.argument("path", required=False, default="")
def ls(
    key_path: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    stores: tuple[Path, ...],
    as_json: bool,
    snapshot: str,
    path: str,
) -> None:
    """List the files of SNAPSHOT (id prefix or 'latest'), optionally under PATH."""
    from samizdat.client.restore import load_tree, selected
    from samizdat.core.codec import ChunkCodec
    from samizdat.core.tree import iter_tree

    k = open_key(key_path)
    sources = open_sources(k, nodes, cluster, stores)
    pool = SourcePool(sources)
    try:
        found = resolve_snapshot(sources, k.archive_id, snapshot)
        for i, ok in enumerate(found.reachable):
            if not ok:
                pool.sources[i].dropped = True
        tree = load_tree(pool, ChunkCodec(k), found.snapshot)
    finally:
        pool.close()
    want = normalize_paths([path])
    entries = (e for e in iter_tree(tree) if not want or selected(e.path, want))
    if as_json:
        jsonout.emit_lines(_ls_json(e) for e in entries)
        return
    for entry in entries:
        name = entry.path.decode("utf-8", "replace")
        if entry.symlink_target:
            name += " -> " + entry.symlink_target.decode("utf-8", "replace")
        terminal.out(
            f"{_mode_string(entry.kind, entry.mode)} {entry.size:>14} "
            f"{terminal.local_time(entry.mtime_ns)} {name}"
        )


def _mode_string(kind: int, mode: int) -> str:
    from samizdat.v1 import records_pb2 as pb

    prefix = stat.S_IFREG
    if kind == pb.ENTRY_KIND_DIRECTORY:
        prefix = stat.S_IFDIR
    elif kind == pb.ENTRY_KIND_SYMLINK:
        prefix = stat.S_IFLNK
    return stat.filemode(prefix | mode)


def _ls_json(entry: TreeEntry) -> dict[str, object]:
    """One line of `ls --json` (docs/ls.schema.json)."""
    from samizdat.v1 import records_pb2 as pb

    kind = {pb.ENTRY_KIND_DIRECTORY: "directory", pb.ENTRY_KIND_SYMLINK: "symlink"}
    doc: dict[str, object] = {
        "path": entry.path.decode("utf-8", "replace"),
        "type": kind.get(entry.kind, "file"),
        "mode": entry.mode,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
    }
    try:
        entry.path.decode("utf-8")
    except UnicodeDecodeError:
        doc["path_base64"] = base64.b64encode(entry.path).decode()
    if entry.kind == pb.ENTRY_KIND_SYMLINK:
        doc["target"] = entry.symlink_target.decode("utf-8", "replace")
    return doc


def open_sources(
    key: ArchiveKey, nodes: Sequence[str], cluster: Path | None, stores: Sequence[Path]
) -> list[ChunkSource]:
    """A source for each node named (once per HOST:PORT) and each `--store` directory."""
    named, _ = named_nodes(nodes, cluster)
    seen: set[tuple[str, int]] = set()
    sources: list[ChunkSource] = []
    for n in named:
        a = n.address
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
    """Restore into `dest` (verify if None); return the exit code (0, or ExitCode.INCOMPLETE
    when some files are damaged); raise for failures."""
    wanted = normalize_paths(list(paths))
    tune_allocator()
    sources = open_sources(key, nodes, cluster, stores)
    pool: SourcePool | None = None
    try:
        found = resolve_snapshot(sources, key.archive_id, snapshot)
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
        except (Interrupted, KeyboardInterrupt):  # Ctrl-C: the partial file is removed
            done = f" after {restorer.stats.files} files; {RESUME_HINT}" if dest else ""
            terminal.fail(f"interrupted{done}", "Interrupted", ExitCode.INTERRUPTED)
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
    code = ExitCode.INCOMPLETE if stats.damage else ExitCode.OK
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
    terminal.error_lines(stats.damage.lines(verb))


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

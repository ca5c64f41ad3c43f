"""`samizdat`: the custodian's and restorer's command line.

Exit codes: 0 success (status: healthy); 1 failure (status: degraded; integrity or missing
data); 2 usage, configuration or connection error; 3 (restore, verify) finished, but some
files are damaged and listed, or (push) snapshot stored, but some files or directories could
not be read and are not in it.
"""

from __future__ import annotations

import base64
import datetime
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samizdat.client import custody_cmd, jsonout, terminal
from samizdat.client.cluster import load_cluster
from samizdat.core.errors import PeerUnavailable, SamizdatError, UsageError
from samizdat.core.keys import ArchiveKey, load_key, read_key_file, save_key
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient

if TYPE_CHECKING:
    from samizdat.client.ingest import PushStats
    from samizdat.v1.records_pb2 import TreeEntry

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
EPILOG = "Exit codes: 0 success, 1 failure or degraded, 2 usage or connection error."
PUSH_EPILOG = (
    "Exit codes: 0 success, 1 failure, 2 usage or connection error, 3 snapshot stored but "
    "some files could not be read (each named on stderr; they are not in the snapshot)."
)


def _passphrase() -> str | None:
    return os.environ.get("SAMIZDAT_PASSPHRASE") or None


def open_key(path: Path) -> ArchiveKey:
    from samizdat.v1 import records_pb2 as pb

    kf = read_key_file(path)
    passphrase = _passphrase()
    if kf.kdf == pb.KDF_ARGON2ID and passphrase is None and sys.stdin.isatty():
        passphrase = click.prompt("passphrase", hide_input=True)
    return load_key(path, passphrase)


def node_clients(
    nodes: tuple[str, ...], cluster: Path | None, key: ArchiveKey | None = None
) -> list[NodeClient]:
    addresses = [NodeAddress.parse(n) for n in nodes]
    if cluster is not None:
        addresses += [n.address for n in load_cluster(cluster).nodes]
    if not addresses:
        raise UsageError("name at least one node (--node NODE_ID@HOST:PORT) or --cluster FILE")
    return [NodeClient(a, key) for a in addresses]


node_option = click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="N",
    help="Node as NODE_ID@HOST:PORT (TLS) or HOST:PORT (loopback)",
)
cluster_option = click.option(
    "--cluster",
    type=click.Path(path_type=Path),
    default=None,
    help="Cluster file (TOML) naming the nodes",
)
key_option = click.option(
    "--key", "key_path", type=click.Path(path_type=Path), required=True, help="Archive key file"
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(package_name="samizdat", prog_name="samizdat")
def cli() -> None:
    """samizdat: replicated, end-to-end encrypted, verifiable archives."""


@cli.group()
def key() -> None:
    """Archive keys, their recovery shares, writer and reader keys, revocations."""


def _key_json(file: Path, archive_id: str, passphrase: bool) -> None:
    jsonout.emit(
        jsonout.document("key", archive_id=archive_id, file=str(file), passphrase=passphrase)
    )


@key.command("new")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--passphrase",
    "ask",
    is_flag=True,
    help="Protect the key with a passphrase (Argon2id); or set SAMIZDAT_PASSPHRASE",
)
@jsonout.option("key")
def key_new(file: Path, ask: bool, as_json: bool) -> None:
    """Create a new archive key in FILE (mode 0600) and print the archive id."""
    passphrase = _passphrase()
    if ask and passphrase is None:
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    k = ArchiveKey.generate()
    save_key(k, file, passphrase)
    if as_json:
        _key_json(file, k.archive_id.hex(), passphrase is not None)
    else:
        click.echo(k.archive_id.hex())


for _command in custody_cmd.KEY_COMMANDS:
    key.add_command(_command)
cli.add_command(custody_cmd.node_group)


@key.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@jsonout.option("key")
def key_show(file: Path, as_json: bool) -> None:
    """Print the archive id of a key file (no passphrase needed)."""
    from samizdat.v1 import records_pb2 as pb

    kf = read_key_file(file)
    if as_json:
        _key_json(file, kf.archive_id.hex(), kf.kdf == pb.KDF_ARGON2ID)
    else:
        click.echo(kf.archive_id.hex())


@cli.command(epilog=PUSH_EPILOG)
@key_option
@node_option
@cluster_option
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read and encode everything, without the local id and files caches (~/.cache/samizdat)",
)
@click.option(
    "--force-rehash",
    is_flag=True,
    help="Read every file, even those the files cache says are unchanged since the last push",
)
@jsonout.option("push")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def push(
    key_path: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    no_cache: bool,
    force_rehash: bool,
    as_json: bool,
    directory: Path,
) -> None:
    """Ingest DIRECTORY as a new signed snapshot."""
    from samizdat.client.ingest import push as do_push
    from samizdat.core.memory import tune_allocator
    from samizdat.rpc.grpcpeer import GrpcPeer
    from samizdat.v1 import records_pb2 as pb

    # Process-wide, before the pipeline starts: the encoder threads allocate blobs
    # concurrently, so push keeps glibc's default arena count and a larger reserve.
    tune_allocator(arenas=8 * (os.cpu_count() or 1), keep_bytes=256 << 20)
    k = open_key(key_path)
    clients = node_clients(nodes, cluster, k)
    last: SamizdatError | None = None
    for client in clients:
        try:
            with terminal.transfer_progress("push") as transfer:
                if terminal.err_console.is_terminal:  # the ETA needs the total size
                    _size_in_background(directory, transfer)
                stats = do_push(
                    k,
                    GrpcPeer(client, has_role=pb.ROLE_WRITER),
                    str(directory),
                    progress=transfer.advance,
                    use_cache=not no_cache,
                    warn=terminal.warning,
                    force_rehash=force_rehash,
                )
        except PeerUnavailable as e:
            last = e
            terminal.error(f"{e}; trying the next node")
            continue
        assert stats.snapshot is not None
        if as_json:
            _push_json(stats, client.label)
        else:
            terminal.say(
                f"snapshot {stats.snapshot.id.hex()} (sequence {stats.snapshot.record.sequence})"
                f" stored on {client.label}\n"
                f"  {stats.files} files, {stats.directories} dirs, {stats.symlinks} symlinks, "
                f"{terminal.human_bytes(stats.plaintext_bytes)}; {stats.chunks} chunks "
                f"({len_unique(stats)} unique); uploaded {stats.uploaded_chunks} chunks, "
                f"{terminal.human_bytes(stats.uploaded_bytes)}"
            )
        if stats.not_saved:
            n = stats.not_saved
            terminal.warning(
                f"{n} {'entry' if n == 1 else 'entries'} could not be read and "
                f"{'is' if n == 1 else 'are'} not in the snapshot (named above); the rest "
                "was saved"
            )
            sys.exit(EXIT_INCOMPLETE)
        return
    raise last if last else UsageError("no node given")


def _push_json(stats: PushStats, node: str) -> None:
    assert stats.snapshot is not None
    snap = stats.snapshot
    jsonout.emit(
        jsonout.document(
            "push",
            snapshot=snap.id.hex(),
            sequence=snap.record.sequence,
            archive=snap.archive_id.hex(),
            node=node,
            files=stats.files,
            directories=stats.directories,
            symlinks=stats.symlinks,
            plaintext_bytes=stats.plaintext_bytes,
            chunks=stats.chunks,
            new_chunks=stats.new_chunks,
            uploaded_chunks=stats.uploaded_chunks,
            uploaded_bytes=stats.uploaded_bytes,
            not_saved=stats.not_saved,
        )
    )


def _size_in_background(directory: Path, transfer: terminal.Transfer) -> None:
    """Sum the sizes of the regular files under `directory` in a thread (a walk of stat
    calls, no reads) and give the progress bar its total, so it can show an ETA."""
    import stat
    import threading

    from samizdat.client.walk import iter_source

    def scan() -> None:
        try:
            total = sum(
                e.st.st_size
                for e in iter_source(str(directory), on_skip=lambda path, reason: None)
                if stat.S_ISREG(e.st.st_mode)
            )
        except (OSError, SamizdatError):
            return  # the push itself reports what is wrong with the directory
        transfer.total(total)

    threading.Thread(target=scan, name="push-size", daemon=True).start()


def len_unique(stats: object) -> int:
    return int(getattr(stats, "new_chunks", 0))


def _time(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


@cli.command(epilog=EPILOG)
@node_option
@cluster_option
@click.option("--archive", default=None, help="Only this archive id (hex)")
@jsonout.option("snapshots")
def snapshots(
    nodes: tuple[str, ...], cluster: Path | None, archive: str | None, as_json: bool
) -> None:
    """List the signed snapshots the nodes hold (signatures verified)."""
    from samizdat.client.listing import verify_listings
    from samizdat.core.ids import ArchiveId
    from samizdat.core.peer import ListedSnapshot, all_snapshots
    from samizdat.rpc.grpcpeer import GrpcPeer

    archive_id = bytes(ArchiveId.parse(archive)) if archive else b""
    rows = []
    reachable = 0
    unreachable = []
    listings: list[tuple[str, list[ListedSnapshot] | None]] = []
    for client in node_clients(nodes, cluster):
        try:
            listings.append((client.label, all_snapshots(GrpcPeer(client), archive_id)))
        except PeerUnavailable as e:
            terminal.error(str(e))
            unreachable.append(client.label)
            listings.append((client.label, None))
            continue
        reachable += 1
    verified = verify_listings(listings, archive_id)
    for forged in verified.forged:
        terminal.error(f"node {forged.label} serves a forged record, skipped: {forged.reason}")
    for sid, snap in verified.snapshots.items():
        index, item = next((i, x) for i, x in enumerate(verified.listed_by[sid]) if x)
        label = listings[index][0]
        r = snap.record
        rows.append(
            (
                r.archive_id.hex(),
                r.sequence,
                {
                    "snapshot": snap.id.hex(),
                    "archive": r.archive_id.hex(),
                    "sequence": r.sequence,
                    "created_unix_ns": r.created_unix_ns,
                    "files": r.totals.files,
                    "plaintext_bytes": r.totals.plaintext_bytes,
                    "chunks_held": item.chunks_held,
                    "chunks_total": item.chunks_total,
                    "node": label,
                },
                [
                    snap.id.hex()[:16],
                    snap.archive_id.hex()[:12],
                    str(r.sequence),
                    _time(r.created_unix_ns),
                    str(r.totals.files),
                    terminal.human_bytes(r.totals.plaintext_bytes),
                    f"{item.chunks_held}/{item.chunks_total}",
                    label,
                ],
            )
        )
    if not reachable:
        raise PeerUnavailable("no node could be reached")
    rows.sort(key=lambda t: (t[0], t[1]))
    if as_json:
        found = [r[2] for r in rows]
        jsonout.emit(jsonout.document("snapshots", snapshots=found, unreachable=unreachable))
        return
    terminal.print_table(
        None,
        ["snapshot", "archive", "seq", "created", "files", "size", "chunks held", "node"],
        [r[3] for r in rows],
    )


def _mode_string(kind: int, mode: int) -> str:
    from samizdat.v1 import records_pb2 as pb

    prefixes: dict[int, int] = {
        pb.ENTRY_KIND_DIRECTORY: stat.S_IFDIR,
        pb.ENTRY_KIND_SYMLINK: stat.S_IFLNK,
    }
    prefix = prefixes.get(kind, stat.S_IFREG)
    return stat.filemode(prefix | mode)


store_option = click.option(
    "--store",
    "stores",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A copy of a node's data directory (or node directory) to read from, offline",
)


@cli.command("ls", epilog=EPILOG)
@key_option
@node_option
@cluster_option
@store_option
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
    from samizdat.client.fetch import SourcePool
    from samizdat.client.restore import load_tree, normalize_paths, selected
    from samizdat.client.restore_cmd import open_sources
    from samizdat.client.sources import resolve_snapshot
    from samizdat.core.codec import ChunkCodec
    from samizdat.core.tree import iter_tree

    k = open_key(key_path)
    sources = open_sources(k, nodes, cluster, stores)
    pool = SourcePool(sources)
    try:
        found = resolve_snapshot(sources, bytes(k.archive_id), snapshot)
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
        click.echo(
            f"{_mode_string(entry.kind, entry.mode)} {entry.size:>14} "
            f"{_time(entry.mtime_ns)} {name}"
        )


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


@cli.command(epilog=RESTORE_EPILOG)
@key_option
@node_option
@cluster_option
@store_option
@click.option(
    "--snapshot", default="latest", show_default=True, help="Snapshot id prefix, or 'latest'"
)
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
    from samizdat.client import restore_cmd

    *paths, dest = args
    sys.exit(
        restore_cmd.run(
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


VERIFY_EPILOG = (
    "Sources as for restore. Every file is checked, however many are damaged; the damaged "
    "ones (with their lost chunks and why no source could serve them) are listed at the end. "
    "Exit codes: 0 every file verified; 3 some files are damaged (listed on stderr and in "
    "--json); 1 failure; 2 usage or connection error; 130 interrupted."
)


@cli.command(epilog=VERIFY_EPILOG)
@key_option
@node_option
@cluster_option
@store_option
@click.option(
    "--snapshot", default="latest", show_default=True, help="Snapshot id prefix, or 'latest'"
)
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
    from samizdat.client import restore_cmd

    sys.exit(
        restore_cmd.run(
            open_key(key_path), nodes, cluster, stores, snapshot, None, paths, False, as_json
        )
    )


STATUS_EPILOG = (
    "Exit codes: 0 healthy: every snapshot has the target number of complete copies on "
    "reachable nodes, in enough jurisdictions, and nothing is corrupt or failed an audit; "
    "1 degraded: a node is unreachable, a snapshot is below target, corrupt chunks await "
    "repair, or an audit failed (the findings name them); 2 usage error or no node reachable."
)


@cli.command(epilog=STATUS_EPILOG)
@node_option
@cluster_option
@jsonout.option("status")
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=None,
    help="Target copies per snapshot [default: the cluster file's, else min(3, nodes)]",
)
@click.option(
    "--min-jurisdictions",
    type=click.IntRange(min=0),
    default=None,
    help="Jurisdictions that must hold a complete copy [default: cluster file's "
    "min_jurisdictions, else min(replicas, jurisdictions of the nodes)]",
)
@click.option(
    "--verified-within",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="A copy counts as verified if scrubbed or audited within this (30m, 12h, 7d)",
)
@click.option(
    "--audit",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Fetch N random chunks from each node and check them against their ids; "
    "needs --key (reading chunks needs the archive key)",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Archive key file (required by --audit)",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each node",
)
def status(
    nodes: tuple[str, ...],
    cluster: Path | None,
    as_json: bool,
    replicas: int | None,
    min_jurisdictions: int | None,
    verified_within: str,
    audit: int,
    key_path: Path | None,
    timeout: float,
) -> None:
    """Replication health: is every snapshot held by enough nodes, in enough jurisdictions,
    and do those nodes really hold it? Asks every node for its counters (cheap at any
    archive size); --audit N checks N random chunks per node without trusting its word."""
    from samizdat.client.status import (
        Options,
        check_status,
        exit_code,
        parse_duration,
        targets_from,
        to_json,
    )

    if audit and key_path is None:
        raise UsageError("--audit needs --key FILE: reading chunks needs the archive key")
    targets, loaded = targets_from(nodes, cluster)
    options = Options(
        replicas=replicas,
        min_jurisdictions=min_jurisdictions,
        verified_window=parse_duration(verified_within),
        audit=audit,
        timeout=timeout,
    )
    k = open_key(key_path) if key_path is not None else None
    report = check_status(targets, loaded, options, k)
    code = exit_code(report)
    if as_json:
        jsonout.emit(to_json(report, code))
    else:
        terminal.print_status(report, code)
    sys.exit(code)


def main() -> None:
    """Run the CLI; map errors to exit codes (and to JSON on stderr under --json)."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        terminal.fail("aborted", "Aborted", EXIT_FAILURE)
    except click.ClickException as e:
        if not jsonout.requested():
            e.show()
            sys.exit(EXIT_USAGE)
        terminal.fail(e.format_message(), "UsageError", EXIT_USAGE)
    except (UsageError, PeerUnavailable) as e:
        terminal.fail(str(e), type(e).__name__, EXIT_USAGE)
    except SamizdatError as e:
        terminal.fail(str(e), type(e).__name__, EXIT_FAILURE)
    except KeyboardInterrupt:
        terminal.fail("interrupted", "Interrupted", 130)


if __name__ == "__main__":
    main()

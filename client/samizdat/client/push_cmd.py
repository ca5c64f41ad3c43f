"""`samizdat push`: ingest a directory as a new signed snapshot on the first node that takes
it (the pipeline itself is samizdat.client.ingest). A node that cannot be reached, or that ends
a call with any error, is the node's fault: push tries the next node."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samizdat.client import jsonout, terminal
from samizdat.client.options import key_option, node_clients, node_options, open_key
from samizdat.core.errors import ExitCode, PeerUnavailable, SamizdatError, UsageError

if TYPE_CHECKING:
    from samizdat.client.ingest import PushStats

PUSH_EPILOG = (
    "Exit codes: 0 success, 1 failure, 2 usage or connection error, 3 snapshot stored but "
    "some files could not be read (each named on stderr; they are not in the snapshot), "
    "130 interrupted (Ctrl-C; push again to complete)."
)


@click.command(epilog=PUSH_EPILOG)
@key_option
@node_options()
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
        except SamizdatError as e:
            if not (isinstance(e, PeerUnavailable) or e.from_node):
                raise  # about this machine (a key, a cache, the directory): no node helps
            last = e
            terminal.error(f"{e}; trying the next node")
            continue
        assert stats.snapshot is not None
        if as_json:
            _push_json(stats, client.label)
        else:
            terminal.say(
                f"snapshot {stats.snapshot.id.hex()} (sequence {stats.snapshot.record.sequence})"
                f" stored on {client.label}"
            )
            terminal.say(
                f"  {stats.files} files, {stats.directories} dirs, {stats.symlinks} symlinks, "
                f"{terminal.human_bytes(stats.plaintext_bytes)}; {stats.chunks} chunks "
                f"({stats.new_chunks} unique); uploaded {stats.uploaded_chunks} chunks, "
                f"{terminal.human_bytes(stats.uploaded_bytes)}"
            )
        if stats.not_saved:
            n = stats.not_saved
            terminal.warning(
                f"{n} {'entry' if n == 1 else 'entries'} could not be read and "
                f"{'is' if n == 1 else 'are'} not in the snapshot (named above); the rest "
                "was saved"
            )
            sys.exit(ExitCode.INCOMPLETE)
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

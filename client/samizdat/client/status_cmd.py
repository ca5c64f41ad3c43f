"""`samizdat snapshots` and `samizdat status`: what the nodes hold, and how healthy that is
(the checks are samizdat.client.status, their human form samizdat.client.status_text)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from samizdat.client import jsonout, terminal
from samizdat.client.options import EPILOG, node_clients, node_options, open_key
from samizdat.core.errors import PeerUnavailable, UsageError
from samizdat.core.memory import limit_arenas


@click.command(epilog=EPILOG)
@node_options()
@click.option("--archive", default=None, help="Only this archive id (hex)")
@jsonout.option("snapshots")
def snapshots(
    nodes: tuple[str, ...], cluster: Path | None, archive: str | None, as_json: bool
) -> None:
    """List the signed snapshots the nodes hold (signatures verified)."""
    from samizdat.client.listing import ListingVerifier, forged_lines
    from samizdat.core.ids import ArchiveId, short_hex
    from samizdat.core.peer import listing_pages
    from samizdat.rpc.grpcpeer import GrpcPeer

    limit_arenas()  # the listing's pages are parsed one at a time: see status below
    archive_id = ArchiveId.parse(archive) if archive else None
    rows = []
    reachable = 0
    unreachable = []
    clients = node_clients(nodes, cluster)
    listing = ListingVerifier([c.label for c in clients], archive_id)
    for index, client in enumerate(clients):
        try:
            for page in listing_pages(GrpcPeer(client), archive_id):
                listing.take(index, page)  # verified as it comes, then dropped
        except PeerUnavailable as e:
            terminal.error(str(e))
            unreachable.append(client.label)
            listing.failed(index)
            continue
        reachable += 1
    verified = listing.result()
    for line in forged_lines(
        verified, lambda f: f"node {f.label} serves a forged record, skipped: {f.reason}"
    ):
        terminal.error(line)
    for sid, snap in verified.snapshots.items():
        index, item = next((i, x) for i, x in enumerate(verified.listed_by[sid]) if x)
        label = verified.labels[index]
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
                    short_hex(snap.archive_id),
                    str(r.sequence),
                    terminal.local_time(r.created_unix_ns),
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


STATUS_EPILOG = (
    "Exit codes: 0 healthy: every snapshot has the target number of complete copies on "
    "reachable nodes, in enough jurisdictions, and nothing is corrupt or failed an audit; "
    "1 degraded: a node is unreachable, a snapshot is below target, corrupt chunks await "
    "repair, or an audit failed (the findings name them); 2 usage error or no node reachable; "
    "130 interrupted (Ctrl-C)."
)


@click.command(epilog=STATUS_EPILOG)
@node_options()
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
    help="Archive key file (required by --audit; with it, nodes also name their peers' "
    "addresses and last errors)",
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
    from samizdat.client.status_text import print_status

    limit_arenas()  # one page per node in flight, parsed by the node's thread
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
        print_status(report, code)
    sys.exit(code)

"""Custody commands: writer and reader keys, revocations, publishing records (`samizdat key
delegate/reader/revoke-writer/publish`, `samizdat node revoke`).

Records the archive key signs (certificates, revocations) are sent to the nodes named, which
pass them on to their peers; with `--out` they are also written to a file that `samizdat key
publish` sends later, so the archive key can stay on an offline machine (docs/operations.md,
"Custody ceremony").
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from samizdat.client import jsonout, terminal
from samizdat.client.options import (
    env_passphrase,
    key_option,
    node_clients,
    node_options,
    open_key,
    record_out_option,
)
from samizdat.core.custody import (
    CustodyRecord,
    next_serial,
    sign_custody_record,
    verify_custody_record,
)
from samizdat.core.errors import PeerUnavailable, SamizdatError, SignatureError, UsageError
from samizdat.core.ids import ArchiveId, SnapshotId, check_node_id
from samizdat.core.keys import ArchiveKey, save_key
from samizdat.core.records import verify_snapshot
from samizdat.rpc.remote import NodeClient
from samizdat.v1 import records_pb2 as pb

RECORD_LINE_PREFIX = "samizdat-custody-record-v1:"

send_to_options = node_options(
    node_help="Node to send the record to, as NODE_ID@HOST:PORT (TLS) or HOST:PORT (loopback)",
    cluster_help="Cluster file (TOML): send the record to every node in it",
)
json_option = jsonout.option("custody")


def _clients(
    nodes: Sequence[str], cluster: Path | None, key: ArchiveKey | None = None
) -> list[NodeClient]:
    """The nodes to send records to; none is fine (records can go to a file instead). With
    the archive key, calls carry its token: a node hosting the archive counts them as the
    archive's, so strangers holding the strangers' calls cannot keep a revocation out."""
    return node_clients(nodes, cluster, key, required=False)


def emit(as_json: bool, doc: dict[str, Any], *lines: str) -> None:
    """Print the result: `lines` for people, or one object (docs/custody.schema.json)."""
    if as_json:
        jsonout.emit(jsonout.document("custody", **doc))
    else:
        for line in lines:
            terminal.out(line)


# ------------------------------------------------------- member keys


def _send(records: Sequence[CustodyRecord], clients: Sequence[NodeClient]) -> dict[str, Any]:
    """Offer `records` to every node; report where they were stored. Raises PeerUnavailable
    if nodes were named and none took them."""
    stored, failed = [], []
    for client in clients:
        try:
            for rec in records:
                response = client.put_custody_record(rec.signed)
            stored.append({"node": client.label, "already_present": response.already_present})
        except SamizdatError as e:
            failed.append({"node": client.label, "error": str(e)})
            terminal.error(f"{client.label}: {e}")
    if clients and not stored:
        raise PeerUnavailable("no node took the record (see the errors above)")
    return {"stored_on": stored, "failed": failed}


def _known_records(
    clients: Sequence[NodeClient], archive_id: ArchiveId
) -> tuple[list[CustodyRecord], dict[str, str]]:
    """Custody records of the archive the nodes hold (those that verify, every page of each
    node's listing within its bounds: `NodeClient.all_custody_records`), and node label ->
    error for each node whose listing failed, said on stderr: that node is left out of the
    serial, the command goes on with the others (a seized node's endless listing cannot
    keep its own revocation out)."""
    out: list[CustodyRecord] = []
    failed: dict[str, str] = {}
    for client in clients:
        try:
            out.extend(client.all_custody_records(archive_id))
        except SamizdatError as e:
            failed[client.label] = str(e)
            terminal.error(f"{client.label}: custody records not read (node left out): {e}")
    return out, failed


def _write_records(path: Path | None, records: Sequence[CustodyRecord]) -> None:
    if path is None:
        return
    lines = ["# samizdat custody records: send with `samizdat key publish FILE --cluster C`"]
    for rec in records:
        lines.append(f"# {rec.kind} of {rec.subject} (serial {rec.record.serial})")
        lines.append(RECORD_LINE_PREFIX + base64.b64encode(rec.signed.SerializeToString()).decode())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite") from None
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


def _record_doc(rec: CustodyRecord) -> dict[str, Any]:
    return {
        "record_id": rec.id.hex(),
        "kind": rec.kind,
        "subject": rec.subject,
        "serial": rec.record.serial,
    }


def _archive_key_and_nodes(
    key_path: Path, nodes: Sequence[str], cluster: Path | None
) -> tuple[ArchiveKey, list[NodeClient], int, dict[str, str]]:
    """The archive key in `key_path` (a writer or reader key is refused before any network
    call), the nodes to send records to, the serial for new records (next_serial) and the
    nodes whose custody listing failed (`_known_records`)."""
    root = open_key(key_path)
    root.require_archive_key()
    clients = _clients(nodes, cluster, root)
    known, failed = _known_records(clients, root.archive_id)
    return root, clients, next_serial(known), failed


def _delegate(
    file: Path,
    role: int,
    name: str,
    out: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    as_json: bool,
) -> None:
    root, clients, serial, _ = _archive_key_and_nodes(file, nodes, cluster)
    member, cert = root.delegate(role, name, serial)
    save_key(member, out, env_passphrase())
    sent = _send([cert], clients)
    member_id = member.member_key.hex()
    emit(
        as_json,
        {
            "archive_id": root.archive_id.hex(),
            f"{member.kind_name}_id": member_id,
            "name": name,
            "key_file": str(out),
            **_record_doc(cert),
            **sent,
        },
        member_id,
    )


@click.command("delegate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Who holds the writer key (shown by status)")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Writer key file to write (mode 0600)",
)
@send_to_options
@json_option
def key_delegate(
    file: Path,
    name: str,
    out: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    as_json: bool,
) -> None:
    """Make a writer key certified by the archive key in FILE; print the writer id.

    The writer key pushes snapshots (its own signature, the archive's encryption) and can be
    revoked with `key revoke-writer`; the archive key can then stay offline. The certificate
    is stored on the nodes named (it also travels with every push)."""
    _delegate(file, pb.MEMBER_ROLE_WRITER, name, out, nodes, cluster, as_json)


@click.command("reader")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Reader key file to write (mode 0600)",
)
@click.option("--name", default="reader", show_default=True, help="Who holds the reader key")
@send_to_options
@json_option
def key_reader(
    file: Path,
    out: Path,
    name: str,
    nodes: tuple[str, ...],
    cluster: Path | None,
    as_json: bool,
) -> None:
    """Make a reader key from the archive key in FILE: it restores and verifies, and cannot
    push or sign anything."""
    _delegate(file, pb.MEMBER_ROLE_READER, name, out, nodes, cluster, as_json)


# ------------------------------------------------------------ revocation


def _parse_member_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"not a writer id: {text!r} (64 hex digits, as `key delegate` printed)")
    return raw


def _kept_snapshots(
    clients: Sequence[NodeClient],
    archive_id: ArchiveId,
    members: Sequence[bytes],
    through: int | None,
) -> tuple[dict[bytes, dict[bytes, int]], dict[str, str]]:
    """For each member key, snapshot id -> sequence of its snapshots the nodes list (every
    page of each listing: the writer's latest snapshots are the ones that matter; up to
    `through`), and node label -> error for each node whose listing failed."""
    kept: dict[bytes, dict[bytes, int]] = {m: {} for m in members}
    failed: dict[str, str] = {}
    for client in clients:
        found: dict[tuple[bytes, bytes], int] = {}  # (writer, snapshot id) -> sequence
        try:
            for page in client.snapshot_pages(archive_id):  # one page held at a time
                for item in page.snapshots:
                    try:
                        snap = verify_snapshot(item.signed, archive_id)
                    except SignatureError:
                        continue
                    seq = snap.record.sequence
                    if snap.record.writer_key in kept and (through is None or seq <= through):
                        found[snap.record.writer_key, bytes(snap.id)] = seq
        except SamizdatError as e:  # a listing refused midway counts for nothing
            failed[client.label] = str(e)
            terminal.error(f"{client.label}: snapshots not listed: {e}")
            continue
        for (writer, snap_id), seq in found.items():
            kept[writer][snap_id] = seq
    return kept, failed


def _issue(
    key_path: Path,
    nodes: tuple[str, ...],
    cluster: Path | None,
    record_out: Path | None,
    as_json: bool,
    bodies: Callable[[ArchiveKey, list[NodeClient], dict[str, str]], Iterable[pb.CustodyRecord]],
) -> None:
    """Sign the records `bodies` makes (one serial for all; given the nodes whose custody
    listing failed, it may refuse by raising before anything is signed), write them to
    `record_out`, send them to the nodes and print what became of them."""
    root, clients, serial, failed = _archive_key_and_nodes(key_path, nodes, cluster)
    records = []
    for body in list(bodies(root, clients, failed)):
        body.serial = serial
        records.append(sign_custody_record(root, body))
    _write_records(record_out, records)
    sent = _send(records, clients)
    if not clients and record_out is None:
        terminal.error("no node named and no --out: the records were signed but not sent or saved")
    emit(
        as_json,
        {"archive_id": root.archive_id.hex(), "records": [_record_doc(r) for r in records], **sent},
        *(
            f"{r.kind.replace('_', ' ')} of {r.subject.split(':', 1)[1]} (serial "
            f"{r.record.serial}): stored on {len(sent['stored_on'])} of {len(clients)} nodes"
            for r in records
        ),
    )


def _issue_options(command: Callable[..., None]) -> Callable[..., None]:
    """--reason, the nodes to send to, --out and --json: the options every revocation ends
    with (applied in the order of a decorator stack, so --help lists them the same)."""
    reason = click.option("--reason", default="", help="Why (kept in the record)")
    for option in (json_option, record_out_option, send_to_options, reason):
        command = option(command)
    return command


@click.command("revoke-writer")
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("writer_ids", nargs=-1, required=True)
@click.option(
    "--keep-through",
    type=int,
    default=None,
    metavar="SEQ",
    help="Keep only the writer's snapshots up to this sequence [default: all it made so far]",
)
@click.option(
    "--keep",
    "keep_ids",
    multiple=True,
    metavar="SNAPSHOT_ID",
    help="Keep this snapshot of the writer (64 hex digits); for use without nodes",
)
@_issue_options
def key_revoke_writer(
    file: Path,
    writer_ids: tuple[str, ...],
    keep_through: int | None,
    keep_ids: tuple[str, ...],
    reason: str,
    nodes: tuple[str, ...],
    cluster: Path | None,
    record_out: Path | None,
    as_json: bool,
) -> None:
    """Revoke writer (or reader) keys with the archive key in FILE: every node refuses their
    new snapshots and calls. Their snapshots the named nodes list now (up to --keep-through)
    stay valid, and only those: a stolen key cannot back-date a snapshot. If a named node's
    snapshot or custody listing fails, nothing is signed (exit 2), unless --keep names the
    snapshots to keep: then those and the ones the other nodes list are kept."""
    members = [_parse_member_id(w) for w in writer_ids]
    extra = {bytes(SnapshotId.parse(s)) for s in keep_ids}

    def bodies(
        root: ArchiveKey, clients: list[NodeClient], failed: dict[str, str]
    ) -> Iterator[pb.CustodyRecord]:
        listed, unlisted = _kept_snapshots(clients, root.archive_id, members, keep_through)
        failed = {**failed, **unlisted}
        if failed and not extra:
            raise PeerUnavailable(
                "nothing signed: the listings of "
                + ", ".join(sorted(failed))
                + " failed, and a revocation keeps only the writer's snapshots listed (the"
                " ones such a node holds would be refused everywhere). Try again, leave the"
                " node out, or name the snapshots to keep with --keep"
            )
        for member in members:
            kept = listed[member]
            revocation = pb.KeyRevocation(
                member_key=member,
                last_sequence=max(kept.values(), default=0),
                kept_snapshot_ids=sorted(set(kept) | extra),
                reason=reason,
            )
            yield pb.CustodyRecord(key_revocation=revocation)

    _issue(file, nodes, cluster, record_out, as_json, bodies)


@click.command("revoke")
@key_option
@click.argument("node_ids", nargs=-1, required=True)
@_issue_options
def node_revoke(
    key_path: Path,
    node_ids: tuple[str, ...],
    reason: str,
    nodes: tuple[str, ...],
    cluster: Path | None,
    record_out: Path | None,
    as_json: bool,
) -> None:
    """Revoke seized nodes with the archive key: every node hosting the archive learns it from
    its peers, then refuses them, stops pulling from them and stops serving them."""
    ids = [check_node_id(n) for n in node_ids]

    def bodies(
        root: ArchiveKey, clients: list[NodeClient], failed: dict[str, str]
    ) -> list[pb.CustodyRecord]:
        return [
            pb.CustodyRecord(node_revocation=pb.NodeRevocation(node_id=n, reason=reason))
            for n in ids
        ]

    _issue(key_path, nodes, cluster, record_out, as_json, bodies)


@click.command("publish")
@click.argument("record_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@send_to_options
@json_option
def key_publish(
    record_files: tuple[Path, ...], nodes: tuple[str, ...], cluster: Path | None, as_json: bool
) -> None:
    """Send custody records written with --out (on an offline machine) to the nodes; no key
    needed, each node verifies them."""
    records = []
    for path in record_files:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read record file {path}: {e}") from None
        for line in lines:
            if not line.startswith(RECORD_LINE_PREFIX):
                continue
            try:
                raw = base64.b64decode(line[len(RECORD_LINE_PREFIX) :], validate=True)
                records.append(verify_custody_record(pb.SignedCustodyRecord.FromString(raw)))
            except (ValueError, SignatureError) as e:
                raise UsageError(f"{path}: a record is damaged: {e}") from None
    if not records:
        raise UsageError("no custody records in the files given")
    clients = _clients(nodes, cluster)
    if not clients:
        raise UsageError("name the nodes (--node or --cluster) to send the records to")
    sent = _send(records, clients)
    emit(
        as_json,
        {"records": [_record_doc(r) for r in records], **sent},
        f"{len(records)} records stored on {len(sent['stored_on'])} of {len(clients)} nodes",
    )


KEY_COMMANDS = (key_delegate, key_reader, key_revoke_writer, key_publish)


@click.group("node")
def node_group() -> None:
    """Act on nodes with the archive key (revoke a seized node everywhere)."""


node_group.add_command(node_revoke)

"""Custody records: what the archive key says about who may act for the archive.

A custody record (`CustodyRecord` in proto/samizdat/v1/records.proto) is signed by the archive
key and is one of: a certificate of a member's own key (writer or reader), the revocation of
such a key, or the revocation of a node. Records replicate between nodes like snapshot records;
every node and client verifies them before use. The state they define is a function of the set
of records held, whatever the order they arrived in (docs/format.md, "Custody records"):

- records about one subject (a member key, a node id) are ordered by `serial`, ties broken by
  record id; the newest revocation of a key decides which of its snapshots stay;
- a revocation is final: no certificate, of any serial, undoes it;
- so a replayed older record changes nothing, and only the archive key can revoke.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import blake3
from google.protobuf.message import DecodeError

from samizdat.core.errors import PeerMisbehaved, PeerUnavailable, SignatureError
from samizdat.core.ids import ArchiveId, short_hex
from samizdat.core.peer import CustodyPage
from samizdat.core.signing import parse_signed_body, verify_ed25519
from samizdat.v1 import records_pb2 as pb

if TYPE_CHECKING:
    from samizdat.core.keys import ArchiveKey

K = TypeVar("K")
RECORD_VERSION = 1
SIGNING_CONTEXT = "custody record"
CERTIFICATE, KEY_REVOCATION, NODE_REVOCATION = "certificate", "key_revocation", "node_revocation"

# A custody record's size limit: a certificate or revocation takes ~200 bytes; a revocation
# lists the writer's kept snapshots (34 bytes each), so 1 MiB keeps ~30,000. Three fit a page.
MAX_RECORD_BYTES = 1 << 20
# One ListCustodyRecords page (and one `custody_page` of a store on disk): records of this many
# bytes, or one record that is larger.
CUSTODY_PAGE_BYTES = 3 * 1024 * 1024
# One whole custody listing of one peer, at most (`CustodyListing`). An honest node lists each
# record of the archives it hosts once, in pages of 3 MiB that each hold at least one record.
# Only the archive key makes records, by hand, at custody ceremonies: a certificate (~300
# bytes) per member key, a revocation per revoked key or node (up to MAX_RECORD_BYTES when it
# keeps ~30,000 snapshots). So an honest listing stays far below 100,000 records (a node
# hosting 100 archives, each with 1,000 member keys made and revoked) and 128 MiB (128 of the
# largest revocations), in at most as many pages as records; 1,000 pages cover ~2.9 GB of
# 3 MiB pages. The bounds stop a node whose listing never ends (endless pages of junk, R18)
# from holding a restore or a `samizdat key` command for ever or filling its memory: only the
# records that verify are kept, junk costs a count, and past a bound the listing is refused.
MAX_CUSTODY_PAGES = 1000
MAX_CUSTODY_RECORDS = 100_000
MAX_CUSTODY_BYTES = 128 * 1024 * 1024
# Records naming the archive read that do not verify (each costs a signature check, ~0.1 ms):
# an honest node lists none (it verifies every record before storing it), a damaged copy on
# disk a few.
MAX_CUSTODY_JUNK = 1000
# ... and at most this long (a node answering each page just before its call's deadline).
MAX_CUSTODY_SECONDS = 300.0


@dataclass(frozen=True)
class CustodyRecord:
    """A verified custody record."""

    id: bytes
    signed: pb.SignedCustodyRecord
    record: pb.CustodyRecord

    @property
    def kind(self) -> str:
        return str(self.record.WhichOneof("body"))

    @property
    def archive_id(self) -> ArchiveId:
        return ArchiveId(self.record.archive_id)  # 32 bytes: checked when verified

    @property
    def subject(self) -> str:
        """What the record is about: `key:<hex>` for member keys, `node:<id>` for nodes."""
        if self.kind == CERTIFICATE:
            return "key:" + self.record.certificate.member_key.hex()
        if self.kind == KEY_REVOCATION:
            return "key:" + self.record.key_revocation.member_key.hex()
        return "node:" + self.record.node_revocation.node_id

    def order(self) -> tuple[int, bytes]:
        return self.record.serial, self.id


def sign_custody_record(key: ArchiveKey, record: pb.CustodyRecord) -> CustodyRecord:
    """Fill in version, archive id and time, sign with the archive key (KeyRoleError for any
    other key), and return the record."""
    record.version = RECORD_VERSION
    record.archive_id = bytes(key.archive_id)
    if not record.created_unix_ns:
        record.created_unix_ns = time.time_ns()
    raw = record.SerializeToString(deterministic=True)
    signed = pb.SignedCustodyRecord(record=raw, signature=key.sign(SIGNING_CONTEXT, raw))
    return CustodyRecord(blake3.blake3(raw).digest(), signed, record)


def canonical_custody_record(signed: pb.SignedCustodyRecord) -> pb.SignedCustodyRecord:
    """The record and its signature, without fields nobody signed (unknown ones): whoever
    relays a record cannot pad it (review R12)."""
    return pb.SignedCustodyRecord(record=signed.record, signature=signed.signature)


def verify_custody_record(
    signed: pb.SignedCustodyRecord, archive_id: bytes | None = None
) -> CustodyRecord:
    """Parse a signed custody record and check it; raise SignatureError for anything not
    signed by the archive key it names (or naming another archive than `archive_id`)."""
    record = parse_signed_body(
        pb.CustodyRecord(), signed.record, "custody record", RECORD_VERSION, archive_id
    )
    if record.WhichOneof("body") is None:
        raise SignatureError("custody record says nothing")
    verify_ed25519(record.archive_id, SIGNING_CONTEXT, signed.record, signed.signature)
    return CustodyRecord(blake3.blake3(signed.record).digest(), signed, record)


def verify_certificate(
    signed: pb.SignedCustodyRecord, archive_id: bytes, member_key: bytes, role: int
) -> pb.KeyCertificate:
    """Check that `signed` is the archive key's certificate of `member_key` for `role` (a
    writer certificate also allows reading). Raise SignatureError otherwise."""
    rec = verify_custody_record(signed, archive_id)
    cert = rec.record.certificate
    if rec.kind != CERTIFICATE or cert.member_key != member_key:
        raise SignatureError("the certificate does not certify this key")
    if cert.role != role and not (
        role == pb.MEMBER_ROLE_READER and cert.role == pb.MEMBER_ROLE_WRITER
    ):
        raise SignatureError("the certificate does not grant this role")
    return cert


def next_serial(known: list[CustodyRecord]) -> int:
    """A serial newer than every known one and than any record made earlier on a machine with
    a sane clock: max(now in ms, highest known + 1)."""
    highest = max((r.record.serial for r in known), default=0)
    return max(time.time_ns() // 1_000_000, highest + 1)


class CustodyState:
    """The effective custody state defined by a set of verified records. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[bytes, CustodyRecord] = {}
        self._certificates: dict[tuple[bytes, bytes], CustodyRecord] = {}
        self._key_revocations: dict[tuple[bytes, bytes], CustodyRecord] = {}
        self._node_revocations: dict[str, CustodyRecord] = {}

    def add(self, rec: CustodyRecord) -> bool:
        """Take a verified record into account; return False if it was already known."""
        with self._lock:
            if rec.id in self._records:
                return False
            self._records[rec.id] = rec
            if rec.kind == CERTIFICATE:
                where = (rec.archive_id, rec.record.certificate.member_key)
                _keep_newest(self._certificates, where, rec)
            elif rec.kind == KEY_REVOCATION:
                where = (rec.archive_id, rec.record.key_revocation.member_key)
                _keep_newest(self._key_revocations, where, rec)
            else:
                _keep_newest(self._node_revocations, rec.record.node_revocation.node_id, rec)
            return True

    def __contains__(self, record_id: bytes) -> bool:
        return record_id in self._records

    def __len__(self) -> int:
        """How many records are taken into account (grows with every new one)."""
        return len(self._records)

    def get(self, record_id: bytes) -> CustodyRecord | None:
        """The record with this id, if taken into account."""
        with self._lock:
            return self._records.get(record_id)

    def records(self) -> list[CustodyRecord]:
        with self._lock:
            return list(self._records.values())

    def revoked_nodes(self) -> dict[str, CustodyRecord]:
        """Revoked node ids and the newest record revoking each."""
        with self._lock:
            return dict(self._node_revocations)

    def key_revocation(self, archive_id: bytes, member_key: bytes) -> pb.KeyRevocation | None:
        """The effective (newest) revocation of a member key, or None."""
        with self._lock:
            rec = self._key_revocations.get((archive_id, member_key))
        return rec.record.key_revocation if rec else None

    def members(self, archive_id: bytes) -> list[tuple[bytes, pb.KeyCertificate | None, bool]]:
        """(member key, newest certificate if any, revoked) of every member key known."""
        with self._lock:
            keys = {k for a, k in self._certificates if a == archive_id}
            keys |= {k for a, k in self._key_revocations if a == archive_id}
            out = []
            for member in sorted(keys):
                cert = self._certificates.get((archive_id, member))
                revoked = (archive_id, member) in self._key_revocations
                out.append((member, cert.record.certificate if cert else None, revoked))
            return out

    def snapshot_refusal(self, snapshot_id: bytes, record: pb.SnapshotRecord) -> str:
        """Why a verified snapshot must be refused ("" if it may be accepted): it was signed
        by a revoked writer key and is not one of the snapshots its revocation keeps."""
        return self.writer_refusal(snapshot_id, record.archive_id, record.writer_key)

    def writer_refusal(self, snapshot_id: bytes, archive_id: bytes, writer_key: bytes) -> str:
        """`snapshot_refusal` from the record's archive id and writer key alone."""
        if not writer_key:
            return ""
        revocation = self.key_revocation(archive_id, writer_key)
        if revocation is None or snapshot_id in revocation.kept_snapshot_ids:
            return ""
        return (
            f"writer {short_hex(writer_key)} is revoked (snapshots up to sequence "
            f"{revocation.last_sequence} kept)"
        )


class CustodySource(Protocol):
    """What a custody listing is read from: a `Peer` (samizdat.core.peer), or a NodeClient."""

    @property
    def label(self) -> str: ...

    def custody_page(self, after: int) -> CustodyPage: ...


class CustodyListing:
    """One whole custody listing of one peer, verified and folded page by page: `take` keeps
    the records that verify (of `archive_id` when given, else of the archive each names),
    each once; records of other archives (or malformed) are dropped, and those naming the
    archive that do not verify (`junk`) too; each costs a count. At most MAX_CUSTODY_PAGES
    pages, MAX_CUSTODY_RECORDS records, MAX_CUSTODY_BYTES (of pages as received, or of
    records) and MAX_CUSTODY_JUNK junk records, positions advancing with `more` (else
    PeerMisbehaved naming the peer), in at most MAX_CUSTODY_SECONDS (else PeerUnavailable).
    So a node listing for ever costs a bounded time and keeps nothing it did not sign."""

    def __init__(self, label: str, archive_id: bytes | None = None) -> None:
        self.label = label
        self.archive_id = None if archive_id is None else bytes(archive_id)
        self.after = 0  # the position to ask the next page after
        self.done = False
        self.records: list[CustodyRecord] = []  # verified, in listing order, each once
        self.junk = 0  # records naming the archive that did not verify
        self._deadline = time.monotonic() + MAX_CUSTODY_SECONDS
        self._pages = 0
        self._count = 0
        self._bytes = 0
        self._seen: set[bytes] = set()

    def take(self, page: CustodyPage) -> None:
        """Check, verify and fold the next page (asked after `self.after`); advance `after`,
        or set `done`."""
        if page.last_position < self.after or (page.more and page.last_position == self.after):
            more = " with more to come" if page.more else ""
            raise PeerMisbehaved(
                f"node {self.label} answered a custody listing after position {self.after} "
                f"with one ending at {page.last_position}{more}"
            )
        self._pages += 1
        self._count += len(page.records)
        size = 0
        for signed in page.records:
            size += signed.ByteSize()
            record_id = blake3.blake3(signed.record).digest()
            if record_id in self._seen or not self._names_archive(signed.record):
                continue
            try:
                rec = verify_custody_record(signed, self.archive_id)
            except SignatureError:
                self.junk += 1
                if self.junk > MAX_CUSTODY_JUNK:
                    raise PeerMisbehaved(
                        f"node {self.label} lists more than {MAX_CUSTODY_JUNK} custody "
                        "records the archive key did not sign"
                    ) from None
                continue
            self._seen.add(record_id)
            self.records.append(rec)
        self._bytes += max(page.nbytes, size)
        if (
            self._bytes > MAX_CUSTODY_BYTES
            or self._count > MAX_CUSTODY_RECORDS
            or (page.more and self._pages >= MAX_CUSTODY_PAGES)
        ):
            raise PeerMisbehaved(
                f"node {self.label} lists more than {MAX_CUSTODY_PAGES} pages, "
                f"{MAX_CUSTODY_RECORDS} records or {MAX_CUSTODY_BYTES >> 20} MiB of custody "
                "records: a listing that does not end"
            )
        if page.more and time.monotonic() > self._deadline:
            raise PeerUnavailable(
                f"node {self.label} took more than {MAX_CUSTODY_SECONDS:.0f} s to list its "
                "custody records: given up"
            )
        self.after = page.last_position
        self.done = not page.more

    def _names_archive(self, raw: bytes) -> bool:
        """Whether a listed record (unverified) names the archive read (any, without one)."""
        if self.archive_id is None:
            return True
        try:
            return pb.CustodyRecord.FromString(raw).archive_id == self.archive_id
        except DecodeError:
            return False


def read_custody(source: CustodySource, archive_id: bytes | None = None) -> list[CustodyRecord]:
    """The custody records `source` holds that verify (of `archive_id`, or of any archive),
    every page of its listing, through `CustodyListing`'s bounds. Raises PeerMisbehaved (a
    listing past the bounds or going nowhere), PeerUnavailable."""
    listing = CustodyListing(source.label, archive_id)
    while not listing.done:
        listing.take(source.custody_page(listing.after))
    return listing.records


def _keep_newest(table: dict[K, CustodyRecord], where: K, rec: CustodyRecord) -> None:
    current = table.get(where)
    if current is None or rec.order() > current.order():
        table[where] = rec

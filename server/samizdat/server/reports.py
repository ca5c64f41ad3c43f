"""What a node reports about its workers, as plain data: the servicers (samizdat.server.service)
turn these into GetStatus messages and the metrics read them, so no worker builds a wire
message."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Finding:
    """A corrupt chunk the scrubber found (and when it was repaired, 0: not yet)."""

    chunk_hex: str
    found_unix: int
    detail: str
    repaired_unix: int = 0


@dataclass
class ScrubProgress:
    """The scrubber's counters: what it persists (samizdat.server.scrub.ScrubState) and what
    it reports (ScrubReport)."""

    chunks_checked: int = 0
    bytes_checked: int = 0
    corrupt_found: int = 0
    repaired: int = 0
    last_pass_completed_unix: int = 0
    passes_completed: int = 0
    pass_started_unix: int = 0  # 0: idle between passes
    verified_since_unix: int = 0


@dataclass
class ScrubReport(ScrubProgress):
    """The scrubber's progress and findings (samizdat.server.scrub.Scrubber.status)."""

    position_fraction: float = 0.0
    enabled: bool = False
    rate_mb: float = 0.0
    pending_repair: int = 0
    findings: tuple[Finding, ...] = ()


@dataclass
class PeerSync:
    """How syncing with one peer goes: what the peer book keeps of each peer
    (samizdat.server.peerbook.PeerState, persisted) and what status and metrics report of it
    (PeerReport)."""

    node_id: str
    address: str = ""
    jurisdiction: str = ""
    last_success_unix: int = 0
    last_error: str = ""
    bad_chunks: int = 0
    bad_records: int = 0
    offences: int = 0
    last_offence: str = ""
    last_offence_unix: int = 0
    chunks_pulled: int = 0
    bytes_pulled: int = 0
    backed_off_until_unix: float = 0.0
    # What a stranger's status shows instead of the texts: the error's reason code
    # (samizdat.core.errors) and the offence's kind.
    last_error_reason: str = ""
    last_offence_kind: str = ""


@dataclass
class PeerReport(PeerSync):
    """One peer as status and metrics show it (samizdat.server.peerbook.PeerState.report)."""

    revoked: bool = False


def shared_fields(base: type[Any], state: object) -> dict[str, Any]:
    """`state`'s values of the fields of dataclass `base`, which `state`'s class extends: the
    part of a worker's state that its report (another extension of `base`) copies."""
    return {f.name: getattr(state, f.name) for f in fields(base)}


@dataclass(frozen=True, slots=True)
class SnapshotReport:
    """A listed snapshot record's id, archive, position and counters, without the record
    (GetStatus lists them; the metrics label them by snapshot and archive)."""

    snapshot_id: bytes
    archive_id: bytes
    position: int
    chunks_held: int
    chunks_total: int
    bytes_total: int

"""What this node knows of each peer, and the one place where a peer's offences are recorded.

An offence is any wrong answer: a chunk that does not hash to its id, a record that does not
verify, or an answer against the protocol (wrong counts, ids or positions not asked for, a
claimed chunk then reported missing, a flood). Each is counted against the peer, logged,
exported (`samizdat_peer_offences_total{peer,kind}`), shown in status, and backs the peer off:
no call goes to it until `backed_off_until`, the back-off doubling with each offence in a row
(60 s up to an hour) and starting over after a clean round. Records of any kind that peers
replicate use the same book.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from enum import Enum

from samizdat.core.errors import SamizdatError
from samizdat.rpc.address import NodeAddress, split_host_port
from samizdat.server.config import PeerConfig
from samizdat.server.metrics import NodeMetrics
from samizdat.server.reports import PeerReport, PeerSync, shared_fields
from samizdat.store.chunkstore import ChunkStore

log = logging.getLogger(__name__)

BACKOFF_BASE = 60.0
BACKOFF_MAX = 3600.0


class Offence(Enum):
    """Kinds of wrong answers (the metric's `kind` label)."""

    BAD_CHUNK = "bad_chunk"  # bytes that do not hash to their id
    BAD_RECORD = "bad_record"  # a record that does not verify, or names no tree
    BAD_ANSWER = "bad_answer"  # an answer against the protocol


@dataclass
class PeerState(PeerSync):
    """One peer as this node knows it (persisted in the store's node column family)."""

    position: int = 0
    custody_position: int = 0
    streak: int = field(default=0, repr=False)  # offences since the last clean round
    failed_round: int = field(default=-1, repr=False)  # the last round a call to it failed

    def to_json(self) -> bytes:
        return json.dumps({k: v for k, v in self.__dict__.items() if k != "failed_round"}).encode()

    def report(self) -> PeerReport:
        """A copy of the synced part, for status and metrics."""
        return PeerReport(**shared_fields(PeerSync, self))


class PeerBook:
    """Peer states by node id: loaded from the store on first use, saved on change."""

    def __init__(self, store: ChunkStore, metrics: NodeMetrics) -> None:
        self.store, self.metrics = store, metrics
        self.peers: dict[str, PeerState] = {}
        self.round = 0

    def state(self, cfg: PeerConfig) -> PeerState:
        state = self.peers.get(cfg.node_id)
        if state is None:
            state = PeerState(cfg.node_id)
            raw = self.store.get_state(b"peer:" + cfg.node_id.encode())
            if raw:
                for k, v in json.loads(raw).items():
                    if hasattr(state, k):
                        setattr(state, k, v)
            self.peers[cfg.node_id] = state
        state.address, state.jurisdiction = cfg.address, cfg.jurisdiction
        return state

    def save(self, state: PeerState) -> None:
        self.store.put_state(b"peer:" + state.node_id.encode(), state.to_json())

    def offence(
        self, state: PeerState, kind: Offence, what: str, *, chunks: int = 0, records: int = 0
    ) -> None:
        """Record a wrong answer of `state`'s peer and back it off."""
        state.offences += 1
        state.bad_chunks += chunks
        state.bad_records += records
        state.streak += 1
        backoff = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(state.streak - 1, 6))
        state.backed_off_until_unix = time.time() + backoff
        state.last_offence, state.last_offence_unix = unnamed(what, state), int(time.time())
        state.last_offence_kind = kind.value
        peer = state.node_id[:12]
        self.metrics.offences.labels(peer=peer, kind=kind.value).inc()
        if chunks:
            self.metrics.bad_chunks.labels(peer=peer).inc(chunks)
        log.warning("peer=%s offence=%s backoff=%.0fs: %s", peer, kind.value, backoff, what)
        self.save(state)

    def clean(self, state: PeerState) -> None:
        """A round with this peer went by without an offence: the next back-off starts short."""
        state.streak = 0

    def usable(self, state: PeerState) -> bool:
        """Not backed off, and no call to it failed in this round (so a black-holed peer costs
        a round one timeout, not one per batch)."""
        return state.backed_off_until_unix <= time.time() and state.failed_round != self.round

    def unreachable(self, state: PeerState, error: SamizdatError) -> None:
        state.last_error, state.last_error_reason = unnamed(str(error), state), error.reason
        state.failed_round = self.round
        log.info("peer=%s unreachable: %s", state.node_id[:12], error)

    def reached(self, state: PeerState) -> None:
        """A round with this peer succeeded: its last error is over."""
        state.last_success_unix = int(time.time())
        state.last_error = state.last_error_reason = ""


def unnamed(text: str, state: PeerState) -> str:
    """`text` naming the peer by node id only: its address (NODE@HOST:PORT labels, HOST:PORT
    and an IP or dotted host name) left out. The book's texts go into status, where a peer's
    address is shown to members only, in a field of its own (review R20)."""
    try:
        host, port = split_host_port(state.address)
    except SamizdatError:
        return text
    hostport = NodeAddress(host, port).hostport
    text = text.replace("@" + hostport, "").replace(hostport, "<peer address>")
    if "." in host or ":" in host:  # not a bare word that the text may use otherwise
        text = text.replace(host, "<peer host>")
    return text

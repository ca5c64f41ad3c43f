"""What a restore or verify could not deliver: the damaged files, their lost chunks, and why.

Restore and verify go on past a file they cannot complete (samizdat.client.restore) and
collect one `DamagedFile` per such file: which of its chunks no source could serve (with the
chunk's byte range in the file and, per source, why that source could not serve it), or that
its content did not match its recorded hash. The command prints the list on stderr, carries it
in `--json` (schema: docs/damage.schema.json) and exits with ExitCode.INCOMPLETE
(docs/restore.md, "Salvage").

Memory: one small record per lost chunk, held until the end of the run. A restore from sources
that lack most of the archive lists most of it; that is the list the user needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from samizdat.core.errors import ChunkCorrupt, ChunkNotFound, SamizdatError

# Exit code of restore and verify when they finished but some files are damaged (listed).
SIDECAR_FORMAT = "samizdat-salvage"
SIDECAR_VERSION = 1

# Why a chunk could not be had, as `LostChunk.problem`.
MISSING = "missing"  # no source could serve verified bytes (per-source reasons in `sources`)
UNDECRYPTABLE = "undecryptable"  # authentic bytes that do not decrypt or decode
WRONG_LENGTH = "wrong-length"  # decrypted, but not the length the tree records


def shown_path(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def _is_utf8(path: bytes) -> bool:
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class LostChunk:
    """One chunk of a file that could not be had: its place in the file and why."""

    index: int  # position in the file's chunk list
    chunk_hex: str
    offset: int  # first byte of the file it covers
    length: int  # plaintext bytes it covers
    problem: str  # MISSING, UNDECRYPTABLE or WRONG_LENGTH
    detail: str  # one line for humans
    sources: dict[str, str] = field(default_factory=dict)  # source label -> why not there

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "chunk": self.chunk_hex,
            "offset": self.offset,
            "length": self.length,
            "problem": self.problem,
            "detail": self.detail,
            "sources": dict(self.sources),
        }


def lost_chunk(
    index: int, chunk_id: bytes, offset: int, length: int, error: SamizdatError
) -> LostChunk:
    """The record of a chunk the fetcher could not deliver (`error` from OrderedFetch.next)."""
    if isinstance(error, ChunkNotFound):
        return LostChunk(index, chunk_id.hex(), offset, length, MISSING, str(error), error.why)
    if isinstance(error, ChunkCorrupt):
        return LostChunk(index, chunk_id.hex(), offset, length, UNDECRYPTABLE, str(error))
    return LostChunk(index, chunk_id.hex(), offset, length, WRONG_LENGTH, str(error))


@dataclass
class DamagedFile:
    """A file restore did not write under its name (or verify found damaged)."""

    path: bytes
    size: int
    chunks: int  # chunks the file has in all
    lost: list[LostChunk]
    problem: str = ""  # set when every chunk verified but the whole file did not
    salvaged_as: bytes | None = None  # tree-relative path of the --salvage-partial copy
    sidecar: bytes | None = None

    @property
    def lost_bytes(self) -> int:
        return sum(c.length for c in self.lost) if self.lost else self.size

    def summary(self) -> str:
        """One line for humans: path, which chunks (byte ranges), why each source failed."""
        name = shown_path(self.path)
        if not self.lost:
            return f"{name}: {self.problem}"
        groups: dict[str, list[str]] = {}  # why -> chunks lost for that reason
        for c in self.lost:
            why = "; ".join(f"{label}: {reason}" for label, reason in c.sources.items())
            where = f"{c.chunk_hex[:12]} (bytes {c.offset}-{c.offset + c.length - 1})"
            groups.setdefault(why or c.detail, []).append(where)
        line = f"{name}: {len(self.lost)} of {self.chunks} chunk(s) lost: " + " | ".join(
            f"{', '.join(chunks)} [{why}]" for why, chunks in groups.items()
        )
        if self.salvaged_as is not None:
            line += f"; what verified is in {shown_path(self.salvaged_as)!r}"
        return line

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "path": shown_path(self.path),
            "size": self.size,
            "chunks": self.chunks,
            "lost_bytes": self.lost_bytes,
            "lost_chunks": [c.as_dict() for c in self.lost],
            "problem": self.problem,
            "salvaged_as": None if self.salvaged_as is None else shown_path(self.salvaged_as),
            "sidecar": None if self.sidecar is None else shown_path(self.sidecar),
        }
        if not _is_utf8(self.path):
            d["path_hex"] = self.path.hex()  # the exact bytes of a name that is not UTF-8
        return d


@dataclass
class DamageReport:
    """Every damaged file of one run, in tree order."""

    files: list[DamagedFile] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files)

    def add(self, damaged: DamagedFile) -> None:
        self.files.append(damaged)

    @property
    def lost_chunks(self) -> int:
        return len({c.chunk_hex for f in self.files for c in f.lost})

    def as_list(self) -> list[dict[str, object]]:
        return [f.as_dict() for f in self.files]

    def lines(self, verb: str) -> list[str]:
        """The stderr report: a heading, then one line per damaged file."""
        if not self.files:
            return []
        not_done = "could not be verified" if verb == "verified" else "could not be restored"
        salvaged = sum(1 for f in self.files if f.salvaged_as is not None)
        head = (
            f"{len(self.files)} file(s) {not_done} ({self.lost_chunks} chunk(s) lost); "
            + (
                f"{salvaged} written as .samizdat-salvaged copies, the rest not written"
                if salvaged
                else "none of them was written under its name"
                if verb != "verified"
                else "they are listed below"
            )
            + ":"
        )
        return [head] + ["  " + f.summary() for f in self.files]


def sidecar_bytes(snapshot_hex: str, damaged: DamagedFile, content_hash: bytes) -> bytes:
    """The JSON sidecar of a salvaged file (docs/damage.schema.json, `$defs/sidecar`)."""
    body = {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "snapshot": snapshot_hex,
        "path": shown_path(damaged.path),
        "size": damaged.size,
        "blake3": content_hash.hex(),
        "zero_filled": [
            {
                "offset": c.offset,
                "length": c.length,
                "chunk": c.chunk_hex,
                "problem": c.problem,
                "detail": c.detail,
            }
            for c in damaged.lost
        ],
    }
    return (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode()

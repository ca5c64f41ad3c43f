"""Push: turn a directory into chunks, a tree, chunk lists and a signed snapshot on a node.

Pipeline: the main thread walks the tree and cuts files into chunks (FastCDC releases the
GIL); a thread pool hashes, compresses and encrypts them (all GIL-free); results are taken
in order, recorded in the tree and chunk lists, and new ones go, in batches, to an asker
thread that asks the node which it lacks (HasChunks), then to an upload thread that streams
only those (PutChunks) while the next batch is asked about. Memory is bounded by the
in-flight window, whatever the size of the tree.

Order: what the node sees must not line up a file's chunks. Each upload batch (up to
BATCH_CHUNKS chunks or BATCH_BYTES) is shuffled before it is offered (HasChunks) and sent
(PutChunks), and chunk lists are sorted by id (samizdat.core.chunklist); the node's store
writes each flush in key order (docs/format.md, "What a node can and cannot learn").

With the local id cache (samizdat.client.idcache) a chunk encoded by an earlier push is only
hashed: its cached id goes into the tree and its plaintext travels to the upload thread, which
encodes it only if the node lacks it (and stops the push if it no longer encodes to the
cached id).

With the files cache (samizdat.client.filescache) a file whose size, mtime, ctime and inode
are those of the last push is not read: its content hash and chunk references come from the
cache, and its chunks go to the upload thread like any other; one the node lacks is read
again from the file at its recorded offset and must encode to the recorded id.
"""

from __future__ import annotations

import os
import queue
import random
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple, TypeVar

import blake3

from samizdat.client.filescache import (
    CachedFile,
    CachedRef,
    FilesCache,
    cacheable,
)
from samizdat.client.idcache import IdCache
from samizdat.client.listing import ListingVerifier, forged_lines
from samizdat.client.treeentry import EntryMaker
from samizdat.client.walk import OpenFile, SourceGone, guard_reads, iter_source, shown
from samizdat.core.chunker import Chunker, ChunkerParams
from samizdat.core.chunklist import ChunkListBuilder
from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import IntegrityError, SequenceExhausted, StaleFilesCache, StaleIdCache
from samizdat.core.ids import ArchiveId, ChunkId, short_hex
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import Peer, listing_pages
from samizdat.core.records import Snapshot, sign_snapshot
from samizdat.core.tree import TREE_VERSION, write_message
from samizdat.rpc.limits import MAX_BATCH_BYTES
from samizdat.v1 import records_pb2 as pb

WINDOW = 48
# One HasChunks question per batch of up to BATCH_CHUNKS chunks or BATCH_BYTES; the upload
# thread then streams the missing ones in PutChunks messages of MAX_BATCH_BYTES. At most
# UPLOAD_QUEUE batches wait for the question, one is being asked about, one waits answered
# and one is being sent: 4 x 8 MiB.
UPLOAD_QUEUE = 1
BATCH_CHUNKS = 512
BATCH_BYTES = 8 << 20
SMALL_FILE = 1 << 20  # files up to this size are read whole (see Pusher._file_chunks)
# Chunks are handed to the encoder threads in groups of up to GROUP_CHUNKS or GROUP_BYTES.
GROUP_CHUNKS = 16
GROUP_BYTES = 256 << 10
_shuffle = random.SystemRandom().shuffle
_T = TypeVar("_T")


@dataclass
class PushStats:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    plaintext_bytes: int = 0
    chunks: int = 0
    new_chunks: int = 0
    uploaded_chunks: int = 0
    uploaded_bytes: int = 0
    stored_bytes: int = 0
    not_saved: int = 0  # entries that vanished, changed type or could not be read
    files_cached: int = 0  # files taken from the files cache, not read
    snapshot: Snapshot | None = field(default=None, repr=False)


Progress = Callable[[int], None]
Warn = Callable[[str], None]


class FileRange(NamedTuple):
    """Where a chunk of a files-cache hit lies: the source root as the user named it, the
    file's path below it, offset, plaintext length."""

    root: bytes
    rel: bytes
    offset: int
    length: int

    @property
    def path(self) -> bytes:
        return self.root + b"/" + self.rel


class _Chunk(NamedTuple):
    """One encoded chunk; `blob` is None for an id-cache hit, whose `plaintext` is kept
    instead until the node says whether it needs the blob, and for a files-cache hit, whose
    `origin` says where to read it again."""

    chunk_id: ChunkId
    blob: bytes | None
    plaintext: bytes | None
    length: int  # plaintext bytes
    blob_length: int
    origin: FileRange | None = None


@dataclass
class _FileRecord:
    """A file on its way through the pipeline: its entry, its chunks so far as the files cache
    records them, and the fstat to record it with (None: not to be recorded)."""

    entry: pb.TreeEntry
    refs: list[CachedRef] = field(default_factory=list)
    cache_stat: os.stat_result | None = None


@dataclass
class _Group:
    """Chunks encoded by one pool task; `future` is set once the group is sent."""

    datas: list[bytes | memoryview] = field(default_factory=list)
    size: int = 0
    future: Future[list[_Chunk]] | None = None


class _Slot(NamedTuple):
    """One chunk of the tree ingest: its group and place in it."""

    group: _Group
    position: int


class _Hit(NamedTuple):
    """A file taken from the files cache: its complete entry and its chunks."""

    entry: pb.TreeEntry
    chunks: list[_Chunk]


class _Uploader:
    """Streams batches of (id, blob) to the node, skipping chunks it already holds. The peer
    asks HasChunks as a writer (GrpcPeer(..., has_role=ROLE_WRITER)).

    Two stages, each a thread: the asker offers each batch (shuffled) with HasChunks and
    hands it on with the answer; the upload thread streams the missing chunks in one
    PutChunks call. The question about the next batch overlaps the upload of this one.
    At most UPLOAD_QUEUE batches wait for the asker and one, answered, for the upload."""

    def __init__(
        self, client: Peer, archive_id: ArchiveId, stats: PushStats, codec: ChunkCodec
    ) -> None:
        self.client, self.archive_id, self.stats = client, archive_id, stats
        self.codec = codec
        self.queue: queue.Queue[list[_Chunk] | None] = queue.Queue(UPLOAD_QUEUE)
        self.answered: queue.Queue[tuple[list[_Chunk], list[bool]] | None] = queue.Queue(1)
        self.error: BaseException | None = None
        self.stale: IntegrityError | None = None
        self.asker = threading.Thread(target=self._ask, name="has-chunks", daemon=True)
        self.thread = threading.Thread(target=self._run, name="upload", daemon=True)
        self.asker.start()
        self.thread.start()

    def _ask(self) -> None:
        try:
            while (batch := _get_until(self.queue, self._failed)) is not None:
                _shuffle(batch)  # neither HasChunks nor PutChunks may follow the tree's order
                present = self.client.has_chunks([c.chunk_id for c in batch])
                _put_until(self.answered, (batch, present), self._failed)
            _put_until(self.answered, None, self._failed)
        except BaseException as e:  # handed to the main thread (by put or finish)
            self._fail(e)

    def _requests(self) -> Iterator[list[tuple[bytes, bytes]]]:
        while (answered := _get_until(self.answered, self._failed)) is not None:
            batch, present = answered
            request: list[tuple[bytes, bytes]] = []
            size = 0
            for (chunk_id, blob, plaintext, _, _, origin), have in zip(batch, present, strict=True):
                if have:
                    continue
                if blob is None:  # a cache hit the node lacks: encode it after all
                    blob = self._encode_again(chunk_id, plaintext, origin)
                if size and size + len(blob) > MAX_BATCH_BYTES:
                    yield request
                    request, size = [], 0
                request.append((chunk_id, blob))
                size += len(blob)
                self.stats.uploaded_chunks += 1
                self.stats.uploaded_bytes += len(blob)
            if request:
                yield request
        yield []  # at least one message, naming the archive

    def _encode_again(
        self, chunk_id: bytes, plaintext: bytes | None, origin: FileRange | None
    ) -> bytes:
        """The blob of a cache hit the node lacks; it must encode to the cached id."""
        if origin is not None:
            plaintext = _read_range(origin)
            if len(plaintext) == origin.length:
                encoded_id, blob = self.codec.encode(plaintext)
                if encoded_id == chunk_id:
                    return blob
            self.stale = StaleFilesCache(
                f"{shown(origin.path)} no longer holds chunk {short_hex(chunk_id)} at offset "
                f"{origin.offset}, though its size and times are unchanged since the last "
                "push; the files cache was deleted, run the push again"
            )
            raise self.stale
        assert plaintext is not None
        encoded_id, blob = self.codec.encode(plaintext)
        if encoded_id != chunk_id:
            self.stale = StaleIdCache(
                f"the local id cache names chunk {short_hex(chunk_id)} but it "
                f"now encodes to {short_hex(encoded_id)}; the cache was cleared, "
                "run the push again"
            )
            raise self.stale
        return blob

    def _run(self) -> None:
        try:
            self.client.put_chunks(self.archive_id, self._requests())
        except BaseException as e:  # handed to the main thread (by put or finish)
            self._fail(e)

    def _fail(self, error: BaseException) -> None:
        """Record the first error (a stale cache's over what it caused) and unblock the
        producer and the other stage."""
        if self.error is None:
            self.error = self.stale or error
        for q in (self.queue, self.answered):
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break

    def _failed(self) -> None:
        """Raise the recorded error, if any (the pusher's view of both stages)."""
        if self.error is not None:
            raise self.error

    def put(self, batch: list[_Chunk]) -> None:
        _put_until(self.queue, batch, self._failed)

    def finish(self) -> None:
        self.put(None)  # type: ignore[arg-type]
        self.asker.join()
        self.thread.join()
        self._failed()


def _put_until(into: queue.Queue[_T], item: _T, check: Callable[[], None]) -> None:
    """Put `item` into a bounded queue, calling `check` (which raises to give up) while the
    queue stays full."""
    while True:
        check()
        try:
            into.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _get_until(source: queue.Queue[_T], check: Callable[[], None]) -> _T:
    """The next item of a queue, calling `check` (which raises to give up) while it stays
    empty."""
    while True:
        check()
        try:
            return source.get(timeout=0.2)
        except queue.Empty:
            continue


class Pusher:
    def __init__(
        self,
        key: ArchiveKey,
        client: Peer,
        params: ChunkerParams,
        progress: Progress | None = None,
        threads: int = 3,
        cache: IdCache | None = None,
        warn: Warn | None = None,
        files: FilesCache | None = None,
    ) -> None:
        self.key, self.client, self.cache, self.files = key, client, cache, files
        self.warn = warn or (lambda text: None)
        self.entries = EntryMaker()
        self.codec = ChunkCodec(key)
        self.chunker = Chunker.for_archive(key, params)
        self.params = params
        self.progress = progress or (lambda n: None)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="encode")
        self.stats = PushStats()
        self.lists = ChunkListBuilder()
        self.batch: list[_Chunk] = []
        self.batch_bytes = 0
        self._group = _Group()

    def _record_chunk(self, chunk: _Chunk) -> None:
        self.stats.chunks += 1
        if self.lists.add(chunk.chunk_id, chunk.blob_length):
            self.stats.new_chunks += 1
            self.stats.stored_bytes += chunk.blob_length
            self.batch.append(chunk)
            self.batch_bytes += chunk.blob_length
            if len(self.batch) >= BATCH_CHUNKS or self.batch_bytes >= BATCH_BYTES:
                self._flush_batch()

    def _skip(self, path: bytes, reason: str) -> None:
        """An entry that could not be saved: the push goes on without it."""
        self.stats.not_saved += 1
        self.warn(f"not saved: {shown(path)}: {reason}")

    def _flush_batch(self) -> None:
        if self.batch:
            self.uploader.put(self.batch)
            self.batch, self.batch_bytes = [], 0

    def _encode(self, data: bytes | memoryview) -> _Chunk:
        """Encode a chunk (a pool thread), or only hash it if the id cache knows it (a hit
        keeps its plaintext as bytes: a view would hold a whole read buffer)."""
        if self.cache is None:
            chunk_id, blob = self.codec.encode(data)
            return _Chunk(chunk_id, blob, None, len(data), len(blob))
        cache_key = self.codec.cache_key(data)
        hit = self.cache.get(cache_key)
        if hit is not None:
            return _Chunk(hit[0], None, bytes(data), len(data), hit[1])
        chunk_id, blob = self.codec.encode(data)
        self.cache.put(cache_key, chunk_id, len(blob))
        return _Chunk(chunk_id, blob, None, len(data), len(blob))

    def run(self, source: str, sequence: int) -> PushStats:
        self.uploader = _Uploader(self.client, self.key.archive_id, self.stats, self.codec)
        try:
            with tempfile.TemporaryFile() as tree_body:
                entries = self._ingest_tree(source, tree_body)
                tree_ids = self._store_tree(tree_body, entries)
            list_ids = []
            for list_id, blob in self.lists.finish():
                self.batch.append(_Chunk(list_id, blob, None, len(blob), len(blob)))
                list_ids.append(list_id)
            self._flush_batch()
            self.uploader.finish()
        except StaleIdCache:
            if self.cache is not None:
                self.cache.destroy()
                self.cache = None
            raise
        except StaleFilesCache:
            if self.files is not None:
                self.files.destroy()
                self.files = None
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        s = self.stats
        record = pb.SnapshotRecord(
            sequence=sequence,
            tree_chunk_ids=tree_ids,
            chunk_list_ids=list_ids,
            totals=pb.SnapshotTotals(
                files=s.files,
                directories=s.directories,
                symlinks=s.symlinks,
                plaintext_bytes=s.plaintext_bytes,
                chunks=len(self.lists),
                stored_bytes=s.stored_bytes,
                not_saved=s.not_saved,
            ),
            chunker=self.params.to_proto(),
        )
        snap = sign_snapshot(self.key, record)
        self.client.put_snapshot(snap.signed)
        if self.files is not None:
            self.files.commit()
        s.snapshot = snap
        return s

    def _ingest_tree(self, source: str, out: BinaryIO) -> int:
        pending: deque[tuple[str, pb.TreeEntry | _FileRecord | _Hit | _Slot]] = deque()
        count = 0
        current = _FileRecord(pb.TreeEntry())
        root = os.fsencode(os.path.realpath(source))

        def drain(limit: int) -> None:
            nonlocal count, current
            while len(pending) > limit:
                kind, item = pending.popleft()
                if isinstance(item, _Slot):  # "chunk"
                    chunk = self._encoded(item)
                    current.entry.chunks.append(pb.ChunkRef(id=chunk.chunk_id, length=chunk.length))
                    current.refs.append(CachedRef(chunk.chunk_id, chunk.length, chunk.blob_length))
                    self._record_chunk(chunk)
                    self.progress(chunk.length)
                elif kind == "start":
                    assert isinstance(item, _FileRecord)
                    current = item
                elif isinstance(item, _Hit):  # a file taken from the files cache
                    for chunk in item.chunks:
                        self._record_chunk(chunk)
                        self.progress(chunk.length)
                    write_message(out, item.entry)
                    count += 1
                elif kind == "end":  # entry complete
                    if isinstance(item, _FileRecord):
                        self._remember(item)
                        item = item.entry
                    write_message(out, item)
                    count += 1
                # "drop": a file that failed midway: its chunks stay unused

        for src in iter_source(source, self._skip):
            try:
                entry, f = self.entries.make(src)
            except SourceGone as e:
                self._skip(src.path, str(e))
                continue
            if entry.kind == pb.ENTRY_KIND_DIRECTORY:
                self.stats.directories += 1
            elif entry.kind == pb.ENTRY_KIND_SYMLINK:
                self.stats.symlinks += 1
            else:
                assert f is not None
                with f:
                    st = f.st
                    hit = self.files.lookup(src.path, st) if self.files is not None else None
                    if hit is not None:
                        pending.append(("hit", self._hit(entry, hit, root, src.path)))
                        drain(WINDOW)
                        continue
                    record = _FileRecord(entry)
                    pending.append(("start", record))
                    hasher = blake3.blake3()
                    size = 0
                    read_start = time.time_ns()
                    try:
                        chunks = self._file_chunks(f, st.st_size, hasher)
                        for data in guard_reads(chunks):
                            size += len(data)
                            pending.append(("chunk", self._submit(data)))
                            drain(WINDOW)
                        if self.files is not None and cacheable(st, os.fstat(f.fd), read_start):
                            record.cache_stat = st
                    except (SourceGone, OSError) as e:  # the file failed midway (an I/O error)
                        self._skip(src.path, str(e))
                        pending.append(("drop", entry))
                        continue
                entry.size = size
                entry.content_hash = hasher.digest()
                self.stats.files += 1
                self.stats.plaintext_bytes += size
                pending.append(("end", record))
                drain(WINDOW)
                continue
            pending.append(("end", entry))
            drain(WINDOW)
        drain(0)
        return count

    def _hit(self, entry: pb.TreeEntry, hit: CachedFile, root: bytes, rel: bytes) -> _Hit:
        """Complete the entry of a file taken from the files cache; return it with its chunks
        (each knowing where to read it again should the node lack it)."""
        chunks, offset = [], 0
        for chunk_id, length, blob_length in hit.refs:
            origin = FileRange(root, rel, offset, length)
            chunks.append(_Chunk(chunk_id, None, None, length, blob_length, origin))
            entry.chunks.append(pb.ChunkRef(id=chunk_id, length=length))
            offset += length
        entry.size = offset
        entry.content_hash = hit.content_hash
        self.stats.files += 1
        self.stats.files_cached += 1
        self.stats.plaintext_bytes += offset
        assert self.files is not None
        self.files.keep(hit)
        return _Hit(entry, chunks)

    def _remember(self, record: _FileRecord) -> None:
        """Record a complete file in the files cache (if it may be)."""
        if self.files is None or record.cache_stat is None:
            return
        entry = record.entry
        self.files.record(entry.path, record.cache_stat, entry.content_hash, record.refs)

    def _file_chunks(
        self, f: OpenFile, size_hint: int, hasher: blake3.blake3
    ) -> Iterator[bytes | memoryview]:
        """The chunks of an open file, all of whose bytes are in `hasher` once the iterator
        is exhausted: a small one is read whole and cut in memory, a larger one streamed (its
        chunks are views into the chunker's read buffers, hashed a read buffer at a time);
        the cut points are the same."""
        if size_hint <= SMALL_FILE:
            data = f.read(SMALL_FILE + 1)
            if len(data) <= SMALL_FILE:
                hasher.update(data)
                yield from self.chunker.iter_buffer(data)
                return
            # it grew since it was listed: stream it
        yield from self.chunker.iter_chunks(f.stream(), hasher=hasher)

    def _submit(self, data: bytes | memoryview) -> _Slot:
        """Queue a chunk for encoding. Chunks go to the pool in groups of up to GROUP_CHUNKS
        or GROUP_BYTES: one thread hand-off (and Future) per group, not per small chunk."""
        group = self._group
        group.datas.append(data)
        group.size += len(data)
        slot = _Slot(group, len(group.datas) - 1)
        if group.size >= GROUP_BYTES or len(group.datas) >= GROUP_CHUNKS:
            self._send_group()
        return slot

    def _send_group(self) -> None:
        group, self._group = self._group, _Group()
        if group.datas:
            group.future = self.pool.submit(self._encode_all, group.datas)

    def _encode_all(self, datas: list[bytes | memoryview]) -> list[_Chunk]:
        return [self._encode(data) for data in datas]

    def _encoded(self, slot: _Slot) -> _Chunk:
        """The encoded chunk of a slot (sending its group first if it still collects)."""
        if slot.group.future is None:
            self._send_group()
        assert slot.group.future is not None
        return slot.group.future.result()[slot.position]

    def _store_tree(self, body: BinaryIO, count: int) -> list[ChunkId]:
        """Chunk and encode the serialized tree (header + entries); return its chunk ids."""
        with tempfile.TemporaryFile() as stream:
            write_message(stream, pb.TreeHeader(version=TREE_VERSION, entry_count=count))
            body.seek(0)
            while block := body.read(1 << 20):
                stream.write(block)
            stream.seek(0)
            ids = []
            futures: deque[Future[_Chunk]] = deque()
            for data in self.chunker.iter_chunks(stream):
                futures.append(self.pool.submit(self._encode, data))
            for fut in futures:
                chunk = fut.result()
                ids.append(chunk.chunk_id)
                self._record_chunk(chunk)
            return ids


def _read_range(where: FileRange) -> bytes:
    """The bytes at `where`; fewer (or none) if the file is shorter, cannot be read, or is no
    longer a regular file. The path is resolved one component at a time from the root (as the
    walk does: paths of any length, no symlink followed below the root), and the file is
    opened non-blocking, so a FIFO put in its place cannot hang the push."""
    try:
        fd = _open_below(where.root, where.rel)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        parts, done = [], 0
        while done < where.length:
            part = os.pread(fd, where.length - done, where.offset + done)
            if not part:
                break
            parts.append(part)
            done += len(part)
        return b"".join(parts)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _open_below(root: bytes, rel: bytes) -> int:
    """A read-only descriptor of ROOT/REL, walking REL's components with O_NOFOLLOW."""
    *dirs, name = rel.split(b"/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in dirs:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return os.open(name, file_flags, dir_fd=fd)
    finally:
        os.close(fd)


MAX_SEQUENCE = 2**64 - 1  # SnapshotRecord.sequence is a uint64


def next_sequence(client: Peer, archive_id: ArchiveId, warn: Warn | None = None) -> int:
    """One past the highest sequence among the node's verified records of the archive
    (samizdat.client.listing; each forged record is named to `warn` and skipped). Raises
    SequenceExhausted, before anything is uploaded, if a verified record holds the last one."""
    listing = ListingVerifier([client.label], archive_id)
    for page in listing_pages(client, archive_id):
        listing.take(0, page)  # verified as it comes, then dropped
    verified = listing.result()
    for line in forged_lines(verified):
        (warn or _ignore)(line)
    last = max(verified.snapshots.values(), key=lambda s: s.record.sequence, default=None)
    if last is None:
        return 1
    if last.record.sequence >= MAX_SEQUENCE:
        raise SequenceExhausted(
            f"snapshot {last.id.short()} on {client.label} holds the last sequence number "
            f"({last.record.sequence}): no later snapshot can be signed for this archive"
        )
    return last.record.sequence + 1


def _ignore(message: str) -> None:
    pass


def push(
    key: ArchiveKey,
    client: Peer,
    source: str,
    params: ChunkerParams = ChunkerParams(),
    progress: Progress | None = None,
    use_cache: bool = True,
    warn: Warn | None = None,
    force_rehash: bool = False,
) -> PushStats:
    """Ingest `source` as a new snapshot on the node behind `client`, with the local id and
    files caches unless `use_cache` is false; `force_rehash` reads every file (the files
    cache is then only written). Entries that vanish, change type or cannot be read are
    left out, each reported to `warn`, and counted in `PushStats.not_saved`."""
    sequence = next_sequence(client, key.archive_id, warn)
    cache = IdCache.open_for(key) if use_cache else None
    files = (
        FilesCache.open_for(key, params, source, read_old=not force_rehash) if use_cache else None
    )
    try:
        pusher = Pusher(key, client, params, progress, cache=cache, warn=warn, files=files)
        return pusher.run(source, sequence)
    finally:
        if cache is not None:
            cache.close()
        if files is not None:
            files.close()

from samizdat.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Chunk(_message.Message):
    __slots__ = ("id", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    data: bytes
    def __init__(self, id: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...

class GetChunksRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetChunksResponse(_message.Message):
    __slots__ = ("chunks", "missing_ids")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    missing_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HasChunksRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HasChunksResponse(_message.Message):
    __slots__ = ("present",)
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    present: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, present: _Optional[_Iterable[bool]] = ...) -> None: ...

class PutChunksRequest(_message.Message):
    __slots__ = ("archive_id", "chunks")
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    archive_id: bytes
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    def __init__(self, archive_id: _Optional[bytes] = ..., chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ...) -> None: ...

class PutChunksResponse(_message.Message):
    __slots__ = ("chunks_received", "chunks_stored", "bytes_stored")
    CHUNKS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_STORED_FIELD_NUMBER: _ClassVar[int]
    BYTES_STORED_FIELD_NUMBER: _ClassVar[int]
    chunks_received: int
    chunks_stored: int
    bytes_stored: int
    def __init__(self, chunks_received: _Optional[int] = ..., chunks_stored: _Optional[int] = ..., bytes_stored: _Optional[int] = ...) -> None: ...

class PutSnapshotRequest(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _records_pb2.SignedSnapshot
    def __init__(self, snapshot: _Optional[_Union[_records_pb2.SignedSnapshot, _Mapping]] = ...) -> None: ...

class PutSnapshotResponse(_message.Message):
    __slots__ = ("snapshot_id", "already_present")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: bytes
    already_present: bool
    def __init__(self, snapshot_id: _Optional[bytes] = ..., already_present: _Optional[bool] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("archive_id", "after_position", "max_count")
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    archive_id: bytes
    after_position: int
    max_count: int
    def __init__(self, archive_id: _Optional[bytes] = ..., after_position: _Optional[int] = ..., max_count: _Optional[int] = ...) -> None: ...

class StoredSnapshot(_message.Message):
    __slots__ = ("snapshot_id", "snapshot", "position", "chunks_held", "chunks_total", "bytes_total")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_HELD_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: bytes
    snapshot: _records_pb2.SignedSnapshot
    position: int
    chunks_held: int
    chunks_total: int
    bytes_total: int
    def __init__(self, snapshot_id: _Optional[bytes] = ..., snapshot: _Optional[_Union[_records_pb2.SignedSnapshot, _Mapping]] = ..., position: _Optional[int] = ..., chunks_held: _Optional[int] = ..., chunks_total: _Optional[int] = ..., bytes_total: _Optional[int] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots", "last_position", "more")
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[StoredSnapshot]
    last_position: int
    more: bool
    def __init__(self, snapshots: _Optional[_Iterable[_Union[StoredSnapshot, _Mapping]]] = ..., last_position: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerSyncStatus(_message.Message):
    __slots__ = ("node_id", "address", "jurisdiction", "last_success_unix", "last_error", "bad_chunks_received", "chunks_pulled", "bytes_pulled", "revoked", "bad_records_received", "last_offence", "last_offence_unix", "offences", "backed_off_until_unix")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_CHUNKS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_PULLED_FIELD_NUMBER: _ClassVar[int]
    BYTES_PULLED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    BAD_RECORDS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFENCE_UNIX_FIELD_NUMBER: _ClassVar[int]
    OFFENCES_FIELD_NUMBER: _ClassVar[int]
    BACKED_OFF_UNTIL_UNIX_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    jurisdiction: str
    last_success_unix: int
    last_error: str
    bad_chunks_received: int
    chunks_pulled: int
    bytes_pulled: int
    revoked: bool
    bad_records_received: int
    last_offence: str
    last_offence_unix: int
    offences: int
    backed_off_until_unix: int
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., last_success_unix: _Optional[int] = ..., last_error: _Optional[str] = ..., bad_chunks_received: _Optional[int] = ..., chunks_pulled: _Optional[int] = ..., bytes_pulled: _Optional[int] = ..., revoked: _Optional[bool] = ..., bad_records_received: _Optional[int] = ..., last_offence: _Optional[str] = ..., last_offence_unix: _Optional[int] = ..., offences: _Optional[int] = ..., backed_off_until_unix: _Optional[int] = ...) -> None: ...

class ScrubFinding(_message.Message):
    __slots__ = ("chunk_id", "found_unix", "repaired_unix", "detail")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    FOUND_UNIX_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_UNIX_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    chunk_id: bytes
    found_unix: int
    repaired_unix: int
    detail: str
    def __init__(self, chunk_id: _Optional[bytes] = ..., found_unix: _Optional[int] = ..., repaired_unix: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ScrubStatus(_message.Message):
    __slots__ = ("chunks_checked", "bytes_checked", "corrupt_found", "repaired", "last_pass_completed_unix", "passes_completed", "position_fraction", "enabled", "rate_mb", "pass_started_unix", "verified_since_unix", "pending_repair", "findings")
    CHUNKS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    BYTES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FOUND_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    LAST_PASS_COMPLETED_UNIX_FIELD_NUMBER: _ClassVar[int]
    PASSES_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    POSITION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    RATE_MB_FIELD_NUMBER: _ClassVar[int]
    PASS_STARTED_UNIX_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_SINCE_UNIX_FIELD_NUMBER: _ClassVar[int]
    PENDING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    chunks_checked: int
    bytes_checked: int
    corrupt_found: int
    repaired: int
    last_pass_completed_unix: int
    passes_completed: int
    position_fraction: float
    enabled: bool
    rate_mb: float
    pass_started_unix: int
    verified_since_unix: int
    pending_repair: int
    findings: _containers.RepeatedCompositeFieldContainer[ScrubFinding]
    def __init__(self, chunks_checked: _Optional[int] = ..., bytes_checked: _Optional[int] = ..., corrupt_found: _Optional[int] = ..., repaired: _Optional[int] = ..., last_pass_completed_unix: _Optional[int] = ..., passes_completed: _Optional[int] = ..., position_fraction: _Optional[float] = ..., enabled: _Optional[bool] = ..., rate_mb: _Optional[float] = ..., pass_started_unix: _Optional[int] = ..., verified_since_unix: _Optional[int] = ..., pending_repair: _Optional[int] = ..., findings: _Optional[_Iterable[_Union[ScrubFinding, _Mapping]]] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("node_id", "name", "jurisdiction", "software_version", "hosted_archive_ids", "chunks_stored", "bytes_stored", "disk_free_bytes", "quarantined_chunks", "peers", "scrub", "snapshots", "time_unix", "disk_total_bytes", "unrepairable_chunks", "custody_records")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTED_ARCHIVE_IDS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_STORED_FIELD_NUMBER: _ClassVar[int]
    BYTES_STORED_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    SCRUB_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    UNREPAIRABLE_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CUSTODY_RECORDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    jurisdiction: str
    software_version: str
    hosted_archive_ids: _containers.RepeatedScalarFieldContainer[bytes]
    chunks_stored: int
    bytes_stored: int
    disk_free_bytes: int
    quarantined_chunks: int
    peers: _containers.RepeatedCompositeFieldContainer[PeerSyncStatus]
    scrub: ScrubStatus
    snapshots: _containers.RepeatedCompositeFieldContainer[StoredSnapshot]
    time_unix: int
    disk_total_bytes: int
    unrepairable_chunks: int
    custody_records: _containers.RepeatedCompositeFieldContainer[_records_pb2.SignedCustodyRecord]
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., software_version: _Optional[str] = ..., hosted_archive_ids: _Optional[_Iterable[bytes]] = ..., chunks_stored: _Optional[int] = ..., bytes_stored: _Optional[int] = ..., disk_free_bytes: _Optional[int] = ..., quarantined_chunks: _Optional[int] = ..., peers: _Optional[_Iterable[_Union[PeerSyncStatus, _Mapping]]] = ..., scrub: _Optional[_Union[ScrubStatus, _Mapping]] = ..., snapshots: _Optional[_Iterable[_Union[StoredSnapshot, _Mapping]]] = ..., time_unix: _Optional[int] = ..., disk_total_bytes: _Optional[int] = ..., unrepairable_chunks: _Optional[int] = ..., custody_records: _Optional[_Iterable[_Union[_records_pb2.SignedCustodyRecord, _Mapping]]] = ...) -> None: ...

class PutCustodyRecordRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _records_pb2.SignedCustodyRecord
    def __init__(self, record: _Optional[_Union[_records_pb2.SignedCustodyRecord, _Mapping]] = ...) -> None: ...

class PutCustodyRecordResponse(_message.Message):
    __slots__ = ("record_id", "already_present")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    record_id: bytes
    already_present: bool
    def __init__(self, record_id: _Optional[bytes] = ..., already_present: _Optional[bool] = ...) -> None: ...

class ListCustodyRecordsRequest(_message.Message):
    __slots__ = ("after_position",)
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    def __init__(self, after_position: _Optional[int] = ...) -> None: ...

class ListCustodyRecordsResponse(_message.Message):
    __slots__ = ("records", "last_position", "more")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.SignedCustodyRecord]
    last_position: int
    more: bool
    def __init__(self, records: _Optional[_Iterable[_Union[_records_pb2.SignedCustodyRecord, _Mapping]]] = ..., last_position: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class NotifySnapshotsRequest(_message.Message):
    __slots__ = ("archive_id",)
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    archive_id: bytes
    def __init__(self, archive_id: _Optional[bytes] = ...) -> None: ...

class NotifySnapshotsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

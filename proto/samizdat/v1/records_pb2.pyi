from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Kdf(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KDF_UNSPECIFIED: _ClassVar[Kdf]
    KDF_NONE: _ClassVar[Kdf]
    KDF_ARGON2ID: _ClassVar[Kdf]

class KeyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_KIND_UNSPECIFIED: _ClassVar[KeyKind]
    KEY_KIND_ARCHIVE: _ClassVar[KeyKind]
    KEY_KIND_WRITER: _ClassVar[KeyKind]
    KEY_KIND_READER: _ClassVar[KeyKind]

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_FILE: _ClassVar[EntryKind]
    ENTRY_KIND_DIRECTORY: _ClassVar[EntryKind]
    ENTRY_KIND_SYMLINK: _ClassVar[EntryKind]

class MemberRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_ROLE_UNSPECIFIED: _ClassVar[MemberRole]
    MEMBER_ROLE_WRITER: _ClassVar[MemberRole]
    MEMBER_ROLE_READER: _ClassVar[MemberRole]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_PEER: _ClassVar[Role]
    ROLE_READER: _ClassVar[Role]
    ROLE_WRITER: _ClassVar[Role]
KDF_UNSPECIFIED: Kdf
KDF_NONE: Kdf
KDF_ARGON2ID: Kdf
KEY_KIND_UNSPECIFIED: KeyKind
KEY_KIND_ARCHIVE: KeyKind
KEY_KIND_WRITER: KeyKind
KEY_KIND_READER: KeyKind
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_FILE: EntryKind
ENTRY_KIND_DIRECTORY: EntryKind
ENTRY_KIND_SYMLINK: EntryKind
MEMBER_ROLE_UNSPECIFIED: MemberRole
MEMBER_ROLE_WRITER: MemberRole
MEMBER_ROLE_READER: MemberRole
ROLE_UNSPECIFIED: Role
ROLE_PEER: Role
ROLE_READER: Role
ROLE_WRITER: Role

class ArchiveSecrets(_message.Message):
    __slots__ = ("signing_seed", "master_secret", "member_seed", "certificate")
    SIGNING_SEED_FIELD_NUMBER: _ClassVar[int]
    MASTER_SECRET_FIELD_NUMBER: _ClassVar[int]
    MEMBER_SEED_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    signing_seed: bytes
    master_secret: bytes
    member_seed: bytes
    certificate: bytes
    def __init__(self, signing_seed: _Optional[bytes] = ..., master_secret: _Optional[bytes] = ..., member_seed: _Optional[bytes] = ..., certificate: _Optional[bytes] = ...) -> None: ...

class KeyFile(_message.Message):
    __slots__ = ("version", "archive_id", "kdf", "argon2_time_cost", "argon2_memory_kib", "argon2_parallelism", "salt", "nonce", "secrets", "secrets_check", "kind")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    KDF_FIELD_NUMBER: _ClassVar[int]
    ARGON2_TIME_COST_FIELD_NUMBER: _ClassVar[int]
    ARGON2_MEMORY_KIB_FIELD_NUMBER: _ClassVar[int]
    ARGON2_PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_CHECK_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    version: int
    archive_id: bytes
    kdf: Kdf
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    salt: bytes
    nonce: bytes
    secrets: bytes
    secrets_check: bytes
    kind: KeyKind
    def __init__(self, version: _Optional[int] = ..., archive_id: _Optional[bytes] = ..., kdf: _Optional[_Union[Kdf, str]] = ..., argon2_time_cost: _Optional[int] = ..., argon2_memory_kib: _Optional[int] = ..., argon2_parallelism: _Optional[int] = ..., salt: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., secrets: _Optional[bytes] = ..., secrets_check: _Optional[bytes] = ..., kind: _Optional[_Union[KeyKind, str]] = ...) -> None: ...

class ChunkRef(_message.Message):
    __slots__ = ("id", "length")
    ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    length: int
    def __init__(self, id: _Optional[bytes] = ..., length: _Optional[int] = ...) -> None: ...

class TreeHeader(_message.Message):
    __slots__ = ("version", "entry_count")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    version: int
    entry_count: int
    def __init__(self, version: _Optional[int] = ..., entry_count: _Optional[int] = ...) -> None: ...

class TreeEntry(_message.Message):
    __slots__ = ("path", "kind", "mode", "mtime_ns", "size", "symlink_target", "content_hash", "chunks", "link_group", "xattrs")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SYMLINK_TARGET_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    LINK_GROUP_FIELD_NUMBER: _ClassVar[int]
    XATTRS_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    kind: EntryKind
    mode: int
    mtime_ns: int
    size: int
    symlink_target: bytes
    content_hash: bytes
    chunks: _containers.RepeatedCompositeFieldContainer[ChunkRef]
    link_group: int
    xattrs: _containers.RepeatedCompositeFieldContainer[Xattr]
    def __init__(self, path: _Optional[bytes] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., mode: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., size: _Optional[int] = ..., symlink_target: _Optional[bytes] = ..., content_hash: _Optional[bytes] = ..., chunks: _Optional[_Iterable[_Union[ChunkRef, _Mapping]]] = ..., link_group: _Optional[int] = ..., xattrs: _Optional[_Iterable[_Union[Xattr, _Mapping]]] = ...) -> None: ...

class Xattr(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    value: bytes
    def __init__(self, name: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class ChunkList(_message.Message):
    __slots__ = ("version", "ids", "sizes", "padding")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    version: int
    ids: _containers.RepeatedScalarFieldContainer[bytes]
    sizes: _containers.RepeatedScalarFieldContainer[int]
    padding: bytes
    def __init__(self, version: _Optional[int] = ..., ids: _Optional[_Iterable[bytes]] = ..., sizes: _Optional[_Iterable[int]] = ..., padding: _Optional[bytes] = ...) -> None: ...

class ChunkerParams(_message.Message):
    __slots__ = ("min_size", "avg_size", "max_size", "algorithm")
    MIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    AVG_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    min_size: int
    avg_size: int
    max_size: int
    algorithm: int
    def __init__(self, min_size: _Optional[int] = ..., avg_size: _Optional[int] = ..., max_size: _Optional[int] = ..., algorithm: _Optional[int] = ...) -> None: ...

class SnapshotTotals(_message.Message):
    __slots__ = ("files", "directories", "symlinks", "plaintext_bytes", "chunks", "stored_bytes", "not_saved")
    FILES_FIELD_NUMBER: _ClassVar[int]
    DIRECTORIES_FIELD_NUMBER: _ClassVar[int]
    SYMLINKS_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    NOT_SAVED_FIELD_NUMBER: _ClassVar[int]
    files: int
    directories: int
    symlinks: int
    plaintext_bytes: int
    chunks: int
    stored_bytes: int
    not_saved: int
    def __init__(self, files: _Optional[int] = ..., directories: _Optional[int] = ..., symlinks: _Optional[int] = ..., plaintext_bytes: _Optional[int] = ..., chunks: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., not_saved: _Optional[int] = ...) -> None: ...

class SnapshotRecord(_message.Message):
    __slots__ = ("version", "archive_id", "created_unix_ns", "sequence", "tree_chunk_ids", "chunk_list_ids", "totals", "chunker", "writer_key")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TREE_CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_FIELD_NUMBER: _ClassVar[int]
    WRITER_KEY_FIELD_NUMBER: _ClassVar[int]
    version: int
    archive_id: bytes
    created_unix_ns: int
    sequence: int
    tree_chunk_ids: _containers.RepeatedScalarFieldContainer[bytes]
    chunk_list_ids: _containers.RepeatedScalarFieldContainer[bytes]
    totals: SnapshotTotals
    chunker: ChunkerParams
    writer_key: bytes
    def __init__(self, version: _Optional[int] = ..., archive_id: _Optional[bytes] = ..., created_unix_ns: _Optional[int] = ..., sequence: _Optional[int] = ..., tree_chunk_ids: _Optional[_Iterable[bytes]] = ..., chunk_list_ids: _Optional[_Iterable[bytes]] = ..., totals: _Optional[_Union[SnapshotTotals, _Mapping]] = ..., chunker: _Optional[_Union[ChunkerParams, _Mapping]] = ..., writer_key: _Optional[bytes] = ...) -> None: ...

class SignedSnapshot(_message.Message):
    __slots__ = ("record", "signature", "certificate")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    signature: bytes
    certificate: SignedCustodyRecord
    def __init__(self, record: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., certificate: _Optional[_Union[SignedCustodyRecord, _Mapping]] = ...) -> None: ...

class KeyCertificate(_message.Message):
    __slots__ = ("member_key", "role", "name")
    MEMBER_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    member_key: bytes
    role: MemberRole
    name: str
    def __init__(self, member_key: _Optional[bytes] = ..., role: _Optional[_Union[MemberRole, str]] = ..., name: _Optional[str] = ...) -> None: ...

class KeyRevocation(_message.Message):
    __slots__ = ("member_key", "last_sequence", "kept_snapshot_ids", "reason")
    MEMBER_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEPT_SNAPSHOT_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_key: bytes
    last_sequence: int
    kept_snapshot_ids: _containers.RepeatedScalarFieldContainer[bytes]
    reason: str
    def __init__(self, member_key: _Optional[bytes] = ..., last_sequence: _Optional[int] = ..., kept_snapshot_ids: _Optional[_Iterable[bytes]] = ..., reason: _Optional[str] = ...) -> None: ...

class NodeRevocation(_message.Message):
    __slots__ = ("node_id", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    reason: str
    def __init__(self, node_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CustodyRecord(_message.Message):
    __slots__ = ("version", "archive_id", "serial", "created_unix_ns", "certificate", "key_revocation", "node_revocation")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    KEY_REVOCATION_FIELD_NUMBER: _ClassVar[int]
    NODE_REVOCATION_FIELD_NUMBER: _ClassVar[int]
    version: int
    archive_id: bytes
    serial: int
    created_unix_ns: int
    certificate: KeyCertificate
    key_revocation: KeyRevocation
    node_revocation: NodeRevocation
    def __init__(self, version: _Optional[int] = ..., archive_id: _Optional[bytes] = ..., serial: _Optional[int] = ..., created_unix_ns: _Optional[int] = ..., certificate: _Optional[_Union[KeyCertificate, _Mapping]] = ..., key_revocation: _Optional[_Union[KeyRevocation, _Mapping]] = ..., node_revocation: _Optional[_Union[NodeRevocation, _Mapping]] = ...) -> None: ...

class SignedCustodyRecord(_message.Message):
    __slots__ = ("record", "signature")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    signature: bytes
    def __init__(self, record: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AuthClaims(_message.Message):
    __slots__ = ("version", "role", "subject_key", "audience", "expires_unix", "nonce", "archive_id", "certificate")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    version: int
    role: Role
    subject_key: bytes
    audience: str
    expires_unix: int
    nonce: bytes
    archive_id: bytes
    certificate: SignedCustodyRecord
    def __init__(self, version: _Optional[int] = ..., role: _Optional[_Union[Role, str]] = ..., subject_key: _Optional[bytes] = ..., audience: _Optional[str] = ..., expires_unix: _Optional[int] = ..., nonce: _Optional[bytes] = ..., archive_id: _Optional[bytes] = ..., certificate: _Optional[_Union[SignedCustodyRecord, _Mapping]] = ...) -> None: ...

class AuthToken(_message.Message):
    __slots__ = ("claims", "signature")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    claims: bytes
    signature: bytes
    def __init__(self, claims: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

"""Message size and deadline limits shared by clients and servers."""

from samizdat.core.peer import LIST_PAGE_RECORDS as LIST_PAGE_RECORDS

# Batches stay under gRPC's default 4 MiB message limit with room for framing.
MAX_BATCH_BYTES = 3 * 1024 * 1024
MAX_BATCH_IDS = 4096
MAX_MESSAGE_BYTES = 4 * 1024 * 1024 + 64 * 1024
# Chunks in one PutChunksRequest. A blob is at least 542 bytes (a 512-byte padded body, header
# and tag: docs/format.md), so a message of MAX_MESSAGE_BYTES holds under 7,700 real ones; the
# cap bounds what a writer's message of empty entries costs the node to parse and hold.
MAX_PUT_CHUNKS = 16384
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
]
# One ListSnapshots page: records (~700 B each) and their bytes, and positions looked at.
LIST_PAGE_BYTES = 1024 * 1024
LIST_PAGE_SCAN = 8 * LIST_PAGE_RECORDS
# One ListCustodyRecords page: records of this many bytes, or one record (a custody record
# may be up to a message long: a revocation keeping thousands of snapshots, long names).
CUSTODY_PAGE_BYTES = MAX_BATCH_BYTES
UNARY_DEADLINE = 30.0
STREAM_DEADLINE = 3600.0
AUTH_METADATA = "samizdat-auth-bin"

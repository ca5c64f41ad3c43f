"""Message size and deadline limits shared by clients and servers."""

from samizdat.core.custody import CUSTODY_PAGE_BYTES as CUSTODY_PAGE_BYTES
from samizdat.core.custody import MAX_CUSTODY_BYTES as MAX_CUSTODY_BYTES
from samizdat.core.custody import MAX_CUSTODY_PAGES as MAX_CUSTODY_PAGES
from samizdat.core.custody import MAX_CUSTODY_RECORDS as MAX_CUSTODY_RECORDS
from samizdat.core.custody import MAX_CUSTODY_SECONDS as MAX_CUSTODY_SECONDS
from samizdat.core.custody import MAX_RECORD_BYTES as MAX_RECORD_BYTES
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
# Client side, one whole listing is bounded by samizdat.core.peer (MAX_LISTING_RECORDS,
# _BYTES, _PAGES, _SECONDS), and what a client keeps of it by samizdat.client.listing
# (verified entries, FORGED_SHOWN reasons and a count of the rest; one page at a time).
LIST_PAGE_BYTES = 1024 * 1024
LIST_PAGE_SCAN = 8 * LIST_PAGE_RECORDS
# One ListCustodyRecords page: records of this many bytes (MAX_BATCH_BYTES), or one record that
# is larger. A whole custody listing of one node, as every reader takes it (`NodeClient.
# all_custody_records`, restore's sources, `samizdat key`): at most 1,000 pages, 100,000
# records and 128 MiB, in 300 s; only records that verify are kept. An honest node lists each
# record of its hosted archives once, and only the archive key makes them, by hand (a ~300-byte
# certificate per member key, a revocation of at most MAX_RECORD_BYTES = 1 MiB per key or node):
# far below the bounds (see samizdat.core.custody). A node past them is refused as misbehaving.
UNARY_DEADLINE = 30.0
STREAM_DEADLINE = 3600.0
AUTH_METADATA = "samizdat-auth-bin"

"""A real node reading PutChunks with samizdat.rpc.wire's parser: malformed bytes end the call
with INVALID_ARGUMENT "undecodable message" and store nothing; well-formed oddities protobuf
accepts (unknown fields, a second archive_id) are accepted the same way."""

from __future__ import annotations

import os

import blake3
import pytest

from samizdat.core.errors import AccessDenied, IntegrityError, UsageError
from samizdat.rpc.wire import _varint, put_chunks_request
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess
from tests.rpc.test_wire_parse import MALFORMED

pytestmark = pytest.mark.timeout(90)


def test_malformed_put_chunks_are_undecodable_and_oddities_parse_like_protobuf(
    node: NodeProcess, archive_key: KeyFile
) -> None:
    archive_id = bytes(archive_key.key.archive_id)
    blob = os.urandom(70_000)
    chunk_id = blake3.blake3(blob).digest()
    good = put_chunks_request(archive_id, [(chunk_id, blob)])
    client = node.client(archive_key.key)
    try:
        for name, raw in {**MALFORMED, "valid chunk, then a cut": good + b"\x12\x05"}.items():
            with pytest.raises(UsageError, match="undecodable message"):
                client.put_chunks(iter([raw]))
            assert client.has_chunks([chunk_id], role=pb.ROLE_WRITER) == [False], name
        # The blob's last byte flipped: the view handed to the store is checked like bytes.
        bad = good[:-1] + bytes([good[-1] ^ 1])
        with pytest.raises(IntegrityError, match="do not match the id"):
            client.put_chunks(iter([bad]))
        # Another archive's id after the chunks (the last archive_id wins): refused.
        with pytest.raises(AccessDenied):
            client.put_chunks(iter([good + b"\x0a\x20" + os.urandom(32)]))
        # Unknown fields before and inside the chunk message are skipped, as protobuf does.
        chunk = b"\x0a\x20" + chunk_id + b"\x12" + _varint(len(blob)) + blob + b"\x1d1234"
        unknown = b"\x18\x05\x0a\x20" + archive_id + b"\x12" + _varint(len(chunk)) + chunk
        assert client.has_chunks([chunk_id], role=pb.ROLE_WRITER) == [False]
        reply = client.put_chunks(iter([unknown]))
        assert (reply.chunks_received, reply.chunks_stored) == (1, 1)
        assert client.has_chunks([chunk_id], role=pb.ROLE_WRITER) == [True]
    finally:
        client.close()
    assert "level=error" not in node.logs()


def test_a_flood_of_tiny_entries_is_refused_and_the_node_serves_on(
    node: NodeProcess, archive_key: KeyFile
) -> None:
    """4 MiB of empty chunk entries (2 million with protobuf's parse): past MAX_PUT_CHUNKS the
    message is undecodable, parsed in a worker thread, and the node answers the next call."""
    flood = b"\x12\x00" * (2 * 1024 * 1024 - 64)
    client = node.client(archive_key.key)
    try:
        with pytest.raises(UsageError, match="undecodable message"):
            client.put_chunks(iter([flood]))
        assert node.status().node_id
    finally:
        client.close()
    assert "level=error" not in node.logs()

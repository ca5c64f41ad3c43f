"""Tree streams: write/iter round trip, truncation and tampering, unsafe paths."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.errors import IntegrityError, UnsafePath
from samizdat.core.tree import TREE_VERSION, check_relative_path, iter_tree, write_message
from samizdat.v1 import records_pb2 as pb

component = st.binary(min_size=1, max_size=20).filter(
    lambda b: b not in (b".", b"..") and b"/" not in b and b"\0" not in b and b"\\" not in b
)
safe_paths = st.lists(component, min_size=1, max_size=5).map(b"/".join)
entries = st.builds(
    lambda path, kind, mode, mtime, size, target, chash, n: pb.TreeEntry(
        path=path,
        kind=kind,
        mode=mode,
        mtime_ns=mtime,
        size=size,
        symlink_target=target,
        content_hash=chash,
        chunks=[pb.ChunkRef(id=bytes([i]) * 32, length=i * 1000) for i in range(n)],
    ),
    safe_paths,
    st.sampled_from([pb.ENTRY_KIND_FILE, pb.ENTRY_KIND_DIRECTORY, pb.ENTRY_KIND_SYMLINK]),
    st.integers(0, 0o7777),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=50),
    st.binary(max_size=32),
    st.integers(0, 4),
)


def serialize(items: list[pb.TreeEntry], count: int | None = None) -> bytes:
    out = io.BytesIO()
    write_message(
        out, pb.TreeHeader(version=TREE_VERSION, entry_count=len(items) if count is None else count)
    )
    for e in items:
        write_message(out, e)
    return out.getvalue()


@given(st.lists(entries, max_size=30))
@settings(max_examples=100, deadline=None)
def test_write_iter_round_trip(items: list[pb.TreeEntry]) -> None:
    assert list(iter_tree(io.BytesIO(serialize(items)))) == items


@given(st.lists(entries, min_size=1, max_size=10), st.data())
@settings(max_examples=100, deadline=None)
def test_truncated_stream_is_an_integrity_error(
    items: list[pb.TreeEntry], data: st.DataObject
) -> None:
    raw = serialize(items)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(IntegrityError):
        list(iter_tree(io.BytesIO(raw[:cut])))


def test_entry_count_mismatch_is_an_integrity_error() -> None:
    items = [pb.TreeEntry(path=b"a", kind=pb.ENTRY_KIND_FILE)]
    with pytest.raises(IntegrityError, match="header says 2"):
        list(iter_tree(io.BytesIO(serialize(items, count=2))))
    # dropping a whole trailing entry is caught by the count, too
    two = [*items, pb.TreeEntry(path=b"b", kind=pb.ENTRY_KIND_FILE)]
    raw = serialize(two)
    one_len = len(serialize(items, count=2))
    with pytest.raises(IntegrityError, match="holds 1 entries"):
        list(iter_tree(io.BytesIO(raw[:one_len])))


def test_bad_header_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="no header"):
        list(iter_tree(io.BytesIO(b"")))
    out = io.BytesIO()
    write_message(out, pb.TreeHeader(version=TREE_VERSION + 1))
    with pytest.raises(IntegrityError, match="unsupported version"):
        list(iter_tree(io.BytesIO(out.getvalue())))
    with pytest.raises(IntegrityError):
        list(iter_tree(io.BytesIO(b"\x05\xff\xff\xff\xff\xff")))


UNSAFE = [
    b"../x",
    b"/abs",
    b"a/../b",
    b"a//b",
    b".",
    b"..",
    b"",
    b"a/",
    b"/",
    b"./a",
    b"a/.",
    b"a\0b",
    b"a\\..\\b",
    b"x/../../etc/passwd",
]


@pytest.mark.parametrize("path", UNSAFE, ids=[repr(p) for p in UNSAFE])
def test_unsafe_paths_are_refused(path: bytes) -> None:
    with pytest.raises(UnsafePath, match="unsafe path"):
        check_relative_path(path)
    raw = serialize(
        [
            pb.TreeEntry(path=b"ok", kind=pb.ENTRY_KIND_DIRECTORY),
            pb.TreeEntry(path=path, kind=pb.ENTRY_KIND_FILE),
        ]
    )
    with pytest.raises(UnsafePath):
        list(iter_tree(io.BytesIO(raw)))


@given(safe_paths)
def test_safe_paths_split_into_their_components(path: bytes) -> None:
    assert b"/".join(check_relative_path(path)) == path


@pytest.mark.parametrize(
    "path",
    ["évidence/日本語/🎥 clip.dat".encode(), b"raw-\xff-name", b"...", b"..a", b"a..", b".hidden"],
)
def test_unusual_but_safe_paths_are_accepted(path: bytes) -> None:
    assert check_relative_path(path)


def test_stream_cut_inside_the_header_is_truncated_not_empty() -> None:
    # Regression: the header was parsed from a short read, so a stream cut inside it
    # parsed as a valid, empty tree (entry_count 0).
    raw = serialize([pb.TreeEntry(path=b"a", kind=pb.ENTRY_KIND_FILE)])
    assert raw[:5] == bytes([4, 8, TREE_VERSION, 0x10, 1])
    with pytest.raises(IntegrityError, match="truncated"):
        list(iter_tree(io.BytesIO(raw[:3])))


@pytest.mark.parametrize(
    "size",
    [bytes([0xFF] * 10 + [0x01]), bytes([0x80] * 10 + [0x00]), bytes([0xFF] * 12)],
    ids=["eleven-bytes", "eleven-bytes-zero", "endless"],
)
def test_overlong_size_varint_is_an_integrity_error(size: bytes) -> None:
    """An entry size longer than any varint (10 bytes) is malformed: IntegrityError, not a
    decoder's own exception escaping (the varint of 11 bytes did, as protobuf's
    DecodeError)."""
    raw = serialize([pb.TreeEntry(path=b"a", kind=pb.ENTRY_KIND_FILE)])
    header_end = 1 + raw[0]
    with pytest.raises(IntegrityError, match="malformed"):
        list(iter_tree(io.BytesIO(raw[:header_end] + size + raw[header_end:])))


@given(st.lists(st.integers(0, (1 << 64) - 1), max_size=20))
def test_sizes_read_as_protobuf_writes_them(values: list[int]) -> None:
    """The tree's own varint reader agrees with protobuf's encoder (1 to 10 bytes)."""
    from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

    from samizdat.core.tree import _read_varint

    stream = io.BufferedReader(io.BytesIO(b"".join(_VarintBytes(v) for v in values)))  # type: ignore[arg-type]
    assert [_read_varint(stream) for _ in values] == values
    assert _read_varint(stream) is None

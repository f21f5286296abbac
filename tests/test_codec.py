"""Entries: round trips, refusal of non-JSON metadata, and detection of every kind of bad bytes."""

from __future__ import annotations

import os
import pickle
import re
import sys

import pytest
import zstandard

from tiercheck.reference.codec import (
    FLAG_COMPRESSED,
    HEADER_LEN,
    Codec,
    CorruptEntry,
    InvalidMetadata,
    dump_metadata,
    load_payload,
)

KEY = "ab" * 32 + "." + "cd" * 16


def roundtrip(metadata, level=3, key=KEY):
    codec = Codec(level, 64 << 20)
    blob = codec.encode(key, dump_metadata(metadata), 123.0)
    expires, version, payload = codec.decode(key, blob)
    assert (expires, version) == (123.0, 0)
    return load_payload(payload), blob


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"a": {"b": [1, 2.5, None, True, "ü"]}},
        {"big": 2**100, "neg": -(2**90)},
        {"z": -0.0},
        {"s": "\ud800"},
        {"tiny": 5e-324},
        {"incompressible": os.urandom(4000).hex()},
        {"rep": "x" * 100_000},
    ],
)
def test_roundtrip(metadata):
    got, _ = roundtrip(metadata)
    assert got == metadata and repr(got) == repr(metadata)


@pytest.mark.parametrize("level", range(0, 23))
def test_every_level(level):
    metadata = {"text": "metadata " * 500}
    got, blob = roundtrip(metadata, level)
    assert got == metadata
    assert bool(blob[4] & FLAG_COMPRESSED) == (level > 0)


def test_raw_kept_when_compression_does_not_shrink():
    _, blob = roundtrip({"a": 1})
    assert not blob[4] & FLAG_COMPRESSED


@pytest.mark.parametrize(
    "bad",
    [
        {"n": float("nan")},
        {"i": float("inf")},
        {"t": (1, 2)},
        {"s": {1}},
        {"b": b"x"},
        {1: "k"},
        [1],
        "str",
    ],
)
def test_invalid_metadata_is_a_clear_error(bad):
    with pytest.raises(InvalidMetadata):
        dump_metadata(bad)


def test_too_deep_is_a_clear_error():
    deep: dict = {}
    node = deep
    for _ in range(300):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidMetadata, match="deeper"):
        dump_metadata(deep)


def test_every_bit_flip_is_detected():
    codec = Codec(3, 1 << 20)
    blob = codec.encode(KEY, dump_metadata({"camera": "X100", "iso": 200}), 50.0)
    for i in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(CorruptEntry):
            codec.decode(KEY, bytes(flipped))


def test_every_truncation_is_detected():
    codec = Codec(3, 1 << 20)
    blob = codec.encode(KEY, dump_metadata({"text": "abc" * 100}), 50.0)
    for n in range(len(blob)):
        with pytest.raises(CorruptEntry):
            codec.decode(KEY, blob[:n])


def test_another_keys_entry_is_detected():
    codec = Codec(3, 1 << 20)
    blob = codec.encode(KEY, dump_metadata({"a": 1}), 50.0)
    with pytest.raises(CorruptEntry, match="checksum"):
        codec.decode("ef" * 32 + "." + "cd" * 16, blob)


class _Sentinel:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_is_never_executed(tmp_path):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(_Sentinel(str(sentinel)))
    codec = Codec(3, 1 << 20)
    for blob in (payload, b"TCE1" + payload, payload * 3):
        with pytest.raises(CorruptEntry):
            codec.decode(KEY, blob)
    assert not sentinel.exists()


def test_decompression_bomb_refused_without_allocation():
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (256 << 20))
    codec = Codec(3, 1 << 20)
    forged = codec.encode(KEY, dump_metadata({"a": "b" * 100}), 5.0)
    header = bytearray(forged[:HEADER_LEN])
    header[4] |= FLAG_COMPRESSED
    header[14:22] = (256 << 20).to_bytes(8, "big")  # raw_len claims the bomb's size
    with pytest.raises(CorruptEntry):
        codec.decode(KEY, bytes(header) + bomb)


def test_garbage_and_empty():
    codec = Codec(3, 1 << 20)
    for blob in (b"", b"TCE1", os.urandom(100), b"TCE1" + b"\0" * 60):
        with pytest.raises(CorruptEntry):
            codec.decode(KEY, blob)


def test_oversized_metadata_refused_on_encode():
    codec = Codec(3, 1000)
    with pytest.raises(InvalidMetadata, match="max_entry_bytes"):
        codec.encode(KEY, dump_metadata({"x": "y" * 2000}), 1.0)


def test_serialized_payload_is_right_sized():
    """The memory tier counts len(data): the bytes object must not carry hidden spare capacity."""
    payload = dump_metadata({f"field{i}": "value " * 4 for i in range(80)})
    assert sys.getsizeof(payload.data) <= len(payload.data) + 64


@pytest.mark.parametrize(
    ("bad", "where"),
    [({"a": [1, {"b": float("nan")}]}, "$.a[1].b"), ({"a": {1: 2}}, "$.a"), ({"t": (1,)}, "$.t")],
)
def test_errors_name_the_offending_path(bad, where):
    """The fast validation hands every problem to the full walk, which names where it is."""
    with pytest.raises(InvalidMetadata, match=re.escape(where)):
        dump_metadata(bad)

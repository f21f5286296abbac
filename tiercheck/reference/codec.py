"""Entries as bytes: JSON payload (never pickle), optional zstd, absolute expiry, key-bound checksum.

Layout of a stored entry (all tiers below memory store exactly these bytes):

    magic "TCE3" | flags u8 | reserved u8 | expires_at f64 | raw_len u64 | version u64 | checksum 16B | body

`version` orders writes of one key across instances (versions.py); every tier copies it with the bytes.

`checksum = xxh3_128(key | header-without-checksum | body)`: binding the key in means an entry copied
over another entry's slot fails verification, not only a flipped bit. The checksum guards against
damage, not forgery (a tier's writer is trusted): a 128-bit non-cryptographic hash does that at a
fourteenth of blake3's cost for an entry of a few KB (0.18 against 2.5 us), on every hit below memory
and every put. "TCE2" entries (blake3) read as not an entry: a miss, then replaced.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from typing import Any, NamedTuple

import orjson
import xxhash
import zstandard

MAGIC = b"TCE3"
_HEADER = struct.Struct(">4sBBdQQ")
_CHECKSUM_LEN = 16
HEADER_LEN = _HEADER.size + _CHECKSUM_LEN
_SIGNED = _HEADER.size  # the bytes before the checksum
_VERSION, _VERSION_AT = struct.Struct(">Q"), _SIGNED - 8  # the header's last field
_xxh128, _loads, _isfinite = xxhash.xxh3_128_digest, orjson.loads, math.isfinite
_frame_size = zstandard.frame_content_size
_new_tuple = tuple.__new__  # builds a NamedTuple without its __new__, which is Python code (~0.3 us per call)

FLAG_COMPRESSED = 0x01
FLAG_STDLIB_JSON = 0x02  # payload needs the stdlib decoder (integers beyond 64 bits)
_UNKNOWN_FLAGS = ~(FLAG_COMPRESSED | FLAG_STDLIB_JSON)
_MAX_DEPTH = 200  # orjson refuses deeper documents; we refuse them up front with a clear error


class InvalidMetadata(ValueError):
    """Metadata is not a JSON-compatible dict as the contract defines it."""


class CorruptEntry(ValueError):
    """Stored bytes that are not a valid entry for this key: treat as a miss and remove."""


class Payload(NamedTuple):
    """Serialized metadata as the memory tier keeps it: bytes, so callers never alias cache state.
    A tuple: every lower-tier hit and every put builds one (a frozen dataclass costs ~1 us more)."""

    data: bytes
    flags: int  # only FLAG_STDLIB_JSON matters here

    def load(self) -> dict[str, Any]:
        """A fresh dict; undecodable JSON, or anything but an object, is corruption (CorruptEntry), never data."""
        data, flags = self  # unpacked: a NamedTuple's field by name is a slow attribute look-up
        try:
            value = _loads(data) if not flags & FLAG_STDLIB_JSON else json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise CorruptEntry(f"payload is not valid JSON: {exc}") from exc
        if type(value) is not dict:  # both decoders return exact dicts: a subclass cannot occur
            raise CorruptEntry("payload is not a JSON object")
        return value


def dump_metadata(metadata: Any) -> Payload:
    """Validate and serialize; raise InvalidMetadata with the path of the offending value."""
    if not isinstance(metadata, dict):
        raise InvalidMetadata(f"metadata must be a dict, got {type(metadata).__name__}")
    if not _validate(metadata):
        try:
            # orjson's result can carry ~14x its length in spare capacity; the memory tier keeps it for
            # the entry's life and counts only len(): a right-sized copy keeps max_memory_bytes honest.
            return Payload(memoryview(orjson.dumps(metadata)).tobytes(), 0)
        except orjson.JSONEncodeError:  # e.g. lone surrogates, which orjson refuses: the stdlib escapes them
            pass
    try:
        text = json.dumps(metadata, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidMetadata(f"metadata is not JSON-compatible: {exc}") from exc
    return Payload(text.encode("ascii"), FLAG_STDLIB_JSON)


class _Unusual(Exception):
    """The fast walk met something it does not judge itself (an error, a subclass): ask the full walk."""


def _validate(root: dict) -> bool:
    """True when the document holds an integer orjson cannot carry; InvalidMetadata when it is not JSON."""
    try:
        return _validate_fast(root)
    except _Unusual:
        return _validate_explained(root)


def _validate_fast(root: dict) -> bool:
    """The common case, without building a path string per value (16x cheaper than the full walk)."""
    big_int = False
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        container, depth = stack.pop()
        if depth >= _MAX_DEPTH:
            raise _Unusual
        values: Any  # dict values or a list
        if type(container) is dict:
            for k in container:
                if type(k) is not str:
                    raise _Unusual
            values = container.values()
        elif type(container) is list:
            values = container
        else:
            raise _Unusual
        for value in values:
            kind = type(value)
            if kind is str or kind is bool or value is None:
                continue
            if kind is int:
                if not -(2**63) <= value < 2**64:
                    big_int = True
            elif kind is float:
                if not math.isfinite(value):
                    raise _Unusual
            elif kind is dict or kind is list:
                stack.append((value, depth + 1))
            else:
                raise _Unusual
    return big_int


def _validate_explained(root: dict) -> bool:
    """Walk the document with paths; return True when it holds an integer orjson cannot carry."""
    big_int = False
    stack: list[tuple[Any, str, int]] = [(root, "$", 0)]
    while stack:
        value, where, depth = stack.pop()
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if not -(2**63) <= value < 2**64:
                big_int = True
            continue
        if kind is float:
            if not math.isfinite(value):
                raise InvalidMetadata(f"{where}: {value!r} is not JSON-compatible (NaN and infinities are not)")
            continue
        if depth >= _MAX_DEPTH:
            raise InvalidMetadata(f"{where}: nested deeper than {_MAX_DEPTH} levels")
        if isinstance(value, dict):
            for k, v in value.items():
                if type(k) is not str:
                    raise InvalidMetadata(f"{where}: key {k!r} is not a string")
                stack.append((v, f"{where}.{k}", depth + 1))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, str | int | float):  # subclasses: stored as the base type
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidMetadata(f"{where}: {value!r} is not JSON-compatible")
            if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
                big_int = True
        else:
            raise InvalidMetadata(f"{where}: {type(value).__name__} is not JSON-compatible")
    return big_int


class Codec:
    """Turns payloads into checked entries and back; one per cache, safe to share between threads."""

    def __init__(self, compression_level: int, max_entry_bytes: int) -> None:
        self.max_entry_bytes = max_entry_bytes
        self.level = compression_level
        self._local = threading.local()  # zstd contexts are not thread-safe: one pair per thread

    def set_level(self, level: int) -> None:
        self.level = level

    def _compressor(self) -> zstandard.ZstdCompressor | None:
        if self.level <= 0:
            return None
        local = self._local
        if getattr(local, "level", None) != self.level:
            local.compressor, local.level = zstandard.ZstdCompressor(level=self.level), self.level
        return local.compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        try:  # one attribute read per hit; hasattr + getattr on a thread-local cost twice that
            return self._local.decompressor
        except AttributeError:
            self._local.decompressor = zstandard.ZstdDecompressor()
            return self._local.decompressor

    def encode(self, key: str, payload: Payload, expires_at: float, version: int = 0) -> bytes:
        raw = payload.data
        if len(raw) > self.max_entry_bytes:
            raise InvalidMetadata(
                f"metadata serializes to {len(raw)} bytes, above max_entry_bytes={self.max_entry_bytes}"
            )
        flags = payload.flags
        body = raw
        compressor = self._compressor()
        if compressor is not None:
            packed = compressor.compress(raw)
            if len(packed) < len(raw):  # keep raw when compression does not shrink
                body, flags = packed, flags | FLAG_COMPRESSED
        header = _HEADER.pack(MAGIC, flags, 0, expires_at, len(raw), version)
        checksum = _xxh128(key.encode() + header + body)
        return header + checksum + body

    def decode(self, key: str, blob: bytes) -> tuple[float, int, Payload]:
        """Verify and unpack to (expires_at, version, payload); raise CorruptEntry for anything that is not
        exactly what encode wrote. Every hit below memory runs this: the header checks of `peek`, then one hash."""
        expires_at, flags, raw_len, version = self.peek(blob)
        if type(blob) is not bytes:
            blob = bytes(blob)  # a bytearray or memoryview (peek refuses anything else): the payload is bytes
        body = blob[HEADER_LEN:]
        if _xxh128(key.encode() + blob[:_SIGNED] + body) != blob[_SIGNED:HEADER_LEN]:
            raise CorruptEntry("checksum mismatch")
        if raw_len > self.max_entry_bytes:
            raise CorruptEntry(f"entry claims {raw_len} bytes, above max_entry_bytes={self.max_entry_bytes}")
        if flags & FLAG_COMPRESSED:
            try:
                if _frame_size(body) != raw_len:
                    raise CorruptEntry("compressed frame does not declare the recorded size")
                try:  # _decompressor(), inlined: every hit below memory
                    decompressor = self._local.decompressor
                except AttributeError:
                    decompressor = self._decompressor()
                raw = decompressor.decompress(body)  # the frame's declared size, checked above, bounds it
            except zstandard.ZstdError as exc:
                raise CorruptEntry(f"zstd: {exc}") from exc
        else:
            raw = body
        if len(raw) != raw_len:
            raise CorruptEntry("length mismatch")
        return expires_at, version, _new_tuple(Payload, (raw, flags & FLAG_STDLIB_JSON))

    @staticmethod
    def peek(blob: bytes) -> tuple[float, int, int, int]:
        """(expires_at, flags, raw_len, version) from the header, without verifying the body."""
        if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) < HEADER_LEN:  # noqa: UP038 (a tuple is faster)
            raise CorruptEntry("too short for an entry")
        magic, flags, reserved, expires_at, raw_len, version = _HEADER.unpack_from(blob)
        if magic != MAGIC or reserved != 0 or flags & _UNKNOWN_FLAGS or not _isfinite(expires_at):
            raise CorruptEntry("not a tiercheck entry")
        return expires_at, flags, raw_len, version


def blob_version(blob: bytes) -> int | None:
    """The version in an entry's header, unverified (None: not an entry); for a tier's own fence."""
    if len(blob) < HEADER_LEN or blob[:4] != MAGIC:
        return None
    version: int = _VERSION.unpack_from(blob, _VERSION_AT)[0]  # that field alone: every hit below memory reads it
    return version


def load_payload(payload: Payload) -> dict[str, Any]:
    """Decode a verified payload (`Payload.load`); undecodable JSON is corruption, never data."""
    return payload.load()

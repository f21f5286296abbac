"""Keys and entry bytes: what every tier stores, and the only place bytes from a tier are decoded.

An entry is the same byte string in Redis, on disk and in SQLite, so promotion copies bytes:

    b"J" + body                  (uncompressed)      body = sha256-hex + b"\\n" + json
    b"Z" + zstd(body)            (compressed)

The checksum covers the entry's key and its JSON, so a bit flip, a truncation or another entry's
bytes all fail it. JSON only (never pickle); decompression and parsing are bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
from dataclasses import dataclass

import zstandard

MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""Nothing larger is decoded, compressed or not: a planted bomb stops here."""

MAX_DEPTH = 200
"""Deeper metadata is refused at put, deeper JSON is refused at get."""

_CHUNK = 1 << 20


def content_digest(file_path: str) -> str | None:
    """blake2b of every byte of the file, or None when it cannot be read (a miss, or a put of False)."""
    digest = hashlib.blake2b(digest_size=32)
    try:
        with open(file_path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (OSError, ValueError, TypeError):  # missing, unreadable, NUL in the path
        return None
    return digest.hexdigest()


def tier_digest(tier: str) -> str:
    """Any tier string (separators, case variants, lone surrogates) becomes 32 hex characters."""
    return hashlib.blake2b(tier.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Key:
    content: str  # 64 hex
    tier: str  # 32 hex

    def __str__(self) -> str:  # fixed widths: unambiguous
        return f"{self.content}.{self.tier}"


@dataclass(frozen=True)
class Entry:
    metadata_json: str  # the caller gets json.loads of this: a fresh dict every time
    expires: float
    stamp: str  # unique per put: tells one put's copies from another's


def is_json_compatible(value: object) -> bool:
    """The contract's metadata: str keys; str, int, finite float, bool, None, list, dict; bounded depth."""
    if not isinstance(value, dict):
        return False
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and not isinstance(item, str | int):  # bool is an int
            return False
    return True


def _checksum(key: Key, raw: bytes) -> bytes:
    return hashlib.sha256(b"independent-v1\0" + str(key).encode() + b"\0" + raw).hexdigest().encode()


def encode(key: Key, entry: Entry, level: int) -> bytes:
    head = json.dumps({"x": entry.expires, "s": entry.stamp})[:-1]  # '{"x": .., "s": ..' then the metadata
    raw = f'{head}, "m": {entry.metadata_json}}}'.encode()
    body = _checksum(key, raw) + b"\n" + raw
    if level > 0:
        packed = zstandard.ZstdCompressor(level=min(level, 22)).compress(body)
        if len(packed) < len(body):
            return b"Z" + packed
    return b"J" + body


def decode(key: Key, data: bytes) -> Entry | None:
    """The entry, or None for anything that is not exactly what encode() wrote for this key."""
    if not isinstance(data, bytes) or not data or len(data) > MAX_ENTRY_BYTES:
        return None
    kind, rest = data[:1], data[1:]
    if kind == b"Z":
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(rest))
            body = reader.read(MAX_ENTRY_BYTES + 1)
        except zstandard.ZstdError:
            return None
        if len(body) > MAX_ENTRY_BYTES:
            return None
    elif kind == b"J":
        body = rest
    else:
        return None
    checksum, sep, raw = body.partition(b"\n")
    if not sep or not hmac.compare_digest(checksum, _checksum(key, raw)):
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("m"), dict) or not isinstance(doc.get("s"), str):
        return None
    expires = doc.get("x")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return None
    return Entry(json.dumps(doc["m"]), float(expires), doc["s"])


def expiry_of(key: Key, data: bytes) -> float | None:
    """For cleanup: the entry's expiry, or None when it does not decode (then it is removed too)."""
    entry = decode(key, data)
    return None if entry is None else entry.expires

"""Key derivation: full-content hashing, tier encoding, and the racy-safe stat memo."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from tiercheck.reference import keys
from tiercheck.reference.keys import ContentHasher, UnreadableFile, tier_variant


def write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_same_content_same_id_different_content_different_id(tmp_path):
    h = ContentHasher()
    a = write(tmp_path / "a", b"x" * 5000)
    b = write(tmp_path / "b", b"x" * 5000)
    c = write(tmp_path / "c", b"x" * 2500 + b"y" + b"x" * 2499)
    assert h.content_id(a) == h.content_id(b) != h.content_id(c)


def test_large_files_differing_outside_sampled_regions(tmp_path):
    """Files > 1 MiB that agree on first, middle and last 4 KiB must still differ (no sampling)."""
    size = (3 << 20) + 17
    ids = set()
    for i, offset in enumerate([10_000, (size // 2) + 10_000, size - 10_000]):
        path = tmp_path / f"f{i}"
        with open(path, "wb") as f:
            f.truncate(size)
            f.seek(offset)
            f.write(b"\x01")
        ids.add(ContentHasher().content_id(str(path)))
    assert len(ids) == 3


@pytest.mark.parametrize(
    "pair",
    [
        ("premium", "Premium"),
        ("prem", "premium"),
        ("a:b", "a/b"),
        ("", " "),
        ("\x00", ""),
        ("ü", "u"),
        ("\ud800", "\ud801"),
    ],
)
def test_tier_variants_distinct(pair):
    assert tier_variant(pair[0]) != tier_variant(pair[1])
    assert all(set(tier_variant(t)) <= set("0123456789abcdef") for t in pair)


def test_tier_must_be_str():
    with pytest.raises(TypeError, match="tier must be a str"):
        tier_variant(123)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["missing", "dir", "nul"])
def test_unreadable_paths(tmp_path, bad):
    path = {"missing": str(tmp_path / "nope"), "dir": str(tmp_path), "nul": str(tmp_path / "a\0b")}[bad]
    with pytest.raises(UnreadableFile):
        ContentHasher().content_id(path)


def counting_hasher(monkeypatch, **kwargs) -> tuple[ContentHasher, list[str]]:
    calls: list[str] = []
    real = keys._hash_file
    monkeypatch.setattr(keys, "_hash_file", lambda p, s: calls.append(p) or real(p, s))
    return ContentHasher(**kwargs), calls


def test_memo_skips_rereading_an_old_unchanged_file(tmp_path, monkeypatch):
    h, calls = counting_hasher(monkeypatch, racy_window_seconds=0)
    path = write(tmp_path / "a", b"data")
    first = h.content_id(path)
    assert h.content_id(path) == first and len(calls) == 1


def test_memo_not_trusted_for_a_freshly_modified_file(tmp_path, monkeypatch):
    h, calls = counting_hasher(monkeypatch)  # default 2 s racy window
    path = write(tmp_path / "a", b"data")
    h.content_id(path)
    h.content_id(path)
    assert len(calls) == 2


@pytest.mark.parametrize("restore_mtime", [False, True])
def test_same_size_rewrite_detected(tmp_path, restore_mtime):
    h = ContentHasher()
    path = write(tmp_path / "a", b"AAAA")
    old = h.content_id(path)
    before = os.stat(path)
    with open(path, "r+b") as f:
        f.write(b"BBBB")
    if restore_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert h.content_id(path) != old


def test_racily_clean_entry_is_rehashed_even_when_stat_looks_identical(tmp_path, monkeypatch):
    """A rewrite in the same timestamp tick leaves size, mtime AND ctime unchanged on coarse
    filesystems: simulate that by freezing os.stat's answer. Only the racy check can save us."""
    path = write(tmp_path / "a", b"AAAA")
    frozen = os.stat(path)
    h = ContentHasher()
    with mock.patch.object(keys.os, "stat", return_value=frozen):
        old = h.content_id(path)
        (tmp_path / "a").write_bytes(b"BBBB")  # same size, same (frozen) stat
        assert h.content_id(path) != old


def test_memo_trusted_once_file_is_older_than_the_window(tmp_path, monkeypatch):
    path = write(tmp_path / "a", b"AAAA")
    frozen = os.stat(path)
    h, calls = counting_hasher(monkeypatch, racy_window_seconds=2.0)
    with (
        mock.patch.object(keys.os, "stat", return_value=frozen),
        mock.patch.object(keys.time, "time_ns", return_value=max(frozen.st_mtime_ns, frozen.st_ctime_ns) + 3 * 10**9),
    ):
        h.content_id(path)
        h.content_id(path)
    assert len(calls) == 1


def test_file_changing_while_hashed_is_reported(tmp_path, monkeypatch):
    path = write(tmp_path / "a", b"AAAA")
    sizes = iter(range(100, 10_000))
    real_stat = os.stat

    def shifting_stat(p, *a, **k):
        st = real_stat(p, *a, **k)
        return os.stat_result(
            (
                st.st_mode,
                st.st_ino,
                st.st_dev,
                st.st_nlink,
                st.st_uid,
                st.st_gid,
                next(sizes),
                st.st_atime,
                st.st_mtime,
                st.st_ctime,
            )
        )

    monkeypatch.setattr(keys.os, "stat", shifting_stat)
    with pytest.raises(UnreadableFile, match="kept changing"):
        ContentHasher().content_id(path)

"""Hypothesis strategies for metadata, file contents, tier strings and paths (SPEC section 3)."""

from __future__ import annotations

import random

from hypothesis import strategies as st

# --- metadata: JSON-compatible dicts as the contract defines them -------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: big ints beyond 64 bits included
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)
metadata = st.dictionaries(st.text(max_size=16), json_values, max_size=8)
"""Small nested metadata: the bulk of every machine's puts."""


@st.composite
def large_metadata(draw: st.DrawFn) -> dict:
    """Large documents, very compressible or incompressible (random hex), up to ~2 MB."""
    size = draw(st.sampled_from([10_000, 200_000, 2_000_000]))
    kind = draw(st.sampled_from(["compressible", "incompressible"]))
    seed = draw(st.integers(0, 2**32 - 1))
    if kind == "compressible":
        return {"kind": kind, "text": "metadata " * (size // 9), "n": seed}
    rng = random.Random(seed)
    return {"kind": kind, "blob": rng.randbytes(size // 2).hex()}


any_metadata = metadata | large_metadata()

# --- tier strings ------------------------------------------------------------------------------

TIER_NAMES = [
    "premium",
    "free",
    "starter",
    "super",
    "Premium",
    "PREMIUM",
    "prem",
    "premium ",
    " premium",
    "premium:free",
    "premium/free",
    "a.b",
    "",
    "\x00",
    "\n",
    "ü",
    "\ud800",
    "../../etc",
    "x" * 300,
]
tiers = st.sampled_from(TIER_NAMES) | st.text(max_size=20)

# --- file contents -----------------------------------------------------------------------------


def _content_pool() -> list[bytes]:
    """A fixed pool so that different files often share content and same-size variants abound."""
    rng = random.Random(20261124)
    noise = rng.randbytes(3000)
    pool = [b"", b"a", b"b", b"ab", b"ba", b"a" * 100, b"b" * 100, noise, noise[:-1] + bytes([noise[-1] ^ 1])]
    middle = bytearray(noise)
    middle[1500] ^= 0x80
    pool.append(bytes(middle))
    return pool


CONTENTS = _content_pool()
contents = st.sampled_from(CONTENTS)

# --- paths ---------------------------------------------------------------------------------------

FILE_NAMES = ["a.jpg", "b c.png", "ünï.tif", "quote'\"$.mp4", "new\nline.raw", "-dash", "日本語.heic", "x" * 200]
file_names = st.sampled_from(FILE_NAMES)

REWRITE_MODES = ["other_size", "same_size", "same_size_utime", "same_tick_replace"]
rewrite_modes = st.sampled_from(REWRITE_MODES)

# --- small pools for the state machines: few keys, so gets meet puts, yet adversarial --------------

machine_names = st.sampled_from(["a.jpg", "b c.png", "new\nline.raw"])
machine_tiers = st.sampled_from(["premium", "Premium", "premium:free", "free"])


class Labelled(bytes):
    """File content that prints as a short label, so a counterexample's steps stay readable."""

    label: str

    def __new__(cls, data: bytes, label: str) -> Labelled:
        obj = super().__new__(cls, data)
        obj.label = label
        return obj

    def __repr__(self) -> str:
        return self.label

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis prints steps with IPython's pretty
        printer.text(self.label)


machine_contents = st.sampled_from(
    [
        Labelled(b"a", "b'a'"),
        Labelled(b"b", "b'b'"),
        Labelled(b"a" * 100, "b'a'*100"),
        Labelled(b"b" * 100, "b'b'*100"),
        Labelled(CONTENTS[7], "NOISE_3000"),
        Labelled(CONTENTS[8], "NOISE_3000_LAST_BIT_FLIPPED"),
    ]
)

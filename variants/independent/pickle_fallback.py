"""E4 bug: bytes that are not a JSON entry are tried as a pickle (a 'compatibility' fallback)."""

import pickle

from examples.independent import IndependentCache
from examples.independent.codec import Entry, decode


class PickleFallback(IndependentCache):
    @staticmethod
    def decode(key, data: bytes):
        entry = decode(key, data)
        if entry is None and data[:1] == b"\x80":
            try:
                value = pickle.loads(data)  # noqa: S301 - the bug this variant carries
            except Exception:
                return None
            return Entry('{"unpickled": true}', float("inf"), "pickle") if value is not None else None
        return entry


def factory(env):
    return PickleFallback(env)

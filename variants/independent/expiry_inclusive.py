"""P9 bug: an entry is still served at exactly put time + TTL (`>` where the contract says `>=`)."""

from examples.independent import IndependentCache


class ExpiryInclusive(IndependentCache):
    @staticmethod
    def expired(entry, now: float) -> bool:
        return now > entry.expires


def factory(env):
    return ExpiryInclusive(env)

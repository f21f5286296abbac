"""P5 bug: the breaker still skips a failed store, but the error of the failing call reaches the caller."""

from examples.independent import IndependentCache


class TierErrorsEscape(IndependentCache):
    def attempt(self, store, action):
        if not self.usable(store):
            return False, None
        if store is self.redis and not self.redis_known:
            self.handshake()
        return True, action(store, self.state.epoch(store.name))


def factory(env):
    return TierErrorsEscape(env)

"""E1 bug: a failing store is skipped and retried, but keeps its epoch: a removal it missed comes back."""

import time

from examples.independent import IndependentCache
from examples.independent.cache import RETRY_AFTER


class FailedRemovalForgotten(IndependentCache):
    def failed(self, store, exc) -> None:
        self.open_until[store.name] = time.monotonic() + RETRY_AFTER
        if store is self.redis:
            self.redis_known = False


def factory(env):
    return FailedRemovalForgotten(env)

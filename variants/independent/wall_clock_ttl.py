"""P9 bug: TTL decisions use the wall clock instead of the injected env.clock."""

import time

from examples.independent import IndependentCache


class WallClockTtl(IndependentCache):
    def __init__(self, env) -> None:
        super().__init__(env)
        self.clock = time.time


def factory(env):
    return WallClockTtl(env)

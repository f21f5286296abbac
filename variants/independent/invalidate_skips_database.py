"""P3 bug: invalidate removes the entry from memory, Redis and disk, but forgets the database tier."""

from examples.independent import IndependentCache


class InvalidateSkipsDatabase(IndependentCache):
    def invalidate(self, file_path: str, tier: str | None = None) -> bool:
        with self.lock:
            every = self.stores
            self.stores = [s for s in every if s is not self.database]
            try:
                return super().invalidate(file_path, tier)
            finally:
                self.stores = every


def factory(env):
    return InvalidateSkipsDatabase(env)

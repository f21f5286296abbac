"""Bug: the memory tier keeps the caller's dict object itself and hands that same object out.

`self._memory_cache[key] = metadata` with no copy (as in the original): a caller that mutates the
dict it passed to put, or the dict a get returned, silently changes what every later get returns.
Expected to be caught by P1 (what a caller does to its dicts never changes later gets).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class AliasingCache(MetadataCache):
    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self._objects = {}  # key -> the very dict the caller passed

    def put(self, file_path, metadata, tier="premium", extraction_time_ms=0):
        stored = super().put(file_path, metadata, tier, extraction_time_ms)
        key = self._key(file_path, tier)
        if stored and key is not None:
            self._objects[key] = metadata  # BUG: no copy
        return stored

    def get(self, file_path, tier="premium"):
        value = super().get(file_path, tier)
        key = self._key(file_path, tier)
        if value is not None and key in self._objects and self.memory.peek(key, self.config.clock()):
            return self._objects[key]  # BUG: the shared object, not a fresh one
        return value


def factory(env):
    return build(AliasingCache, env)

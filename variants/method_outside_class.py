"""Bug: a method lost its indentation and fell out of its class (MetaExtract's structural bug).

`_remember_put` was meant as a method of AuditedCache; dedented, it became a module-level function
that still takes `self`, and `self._remember_put(...)` in put() no longer resolves — the variant
keeps working only because the call is guarded. Expected to be caught by P11 (static check: no
module-level function whose first parameter is self; every self.name used exists).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class AuditedCache(MetadataCache):
    def put(self, file_path, metadata, tier="premium", extraction_time_ms=0):
        stored = super().put(file_path, metadata, tier, extraction_time_ms)
        if hasattr(self, "_remember_put"):
            self._remember_put(file_path, stored)
        return stored


def _remember_put(self, file_path, stored):  # BUG: belongs inside AuditedCache
    self._last_put = (file_path, stored)


def factory(env):
    return build(AuditedCache, env)
